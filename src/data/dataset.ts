/**
 * Dataset folders: `labels.csv` (at least `file,label,patient_id`; label `normal|pneumonia`;
 * `file` relative to the folder) plus the images it names (DICOM, PNG or JPEG) and optional
 * lung masks, either named by a `mask` column or found as `masks/<image stem>.png`. The
 * NIH subset (`file,label,patient_id,original_size,source_sha1`) and `cxr-triage synth`
 * output both load as they are. Anything wrong is a CxrError E_BAD_DATASET naming the row.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, extname, isAbsolute, join, relative, resolve } from 'node:path';
import sharp from 'sharp';
import { readWindowed, type WindowPolicy } from '../dicom/index.js';
import { CxrError, isCxrError } from '../errors.js';
import { decodeDisplayImage } from '../imaging/png.js';
import { grayImage, type GrayImage } from '../imaging/types.js';
import { parseCsv } from './csv.js';

export type Label = 'normal' | 'pneumonia';
export const LABELS: readonly Label[] = ['normal', 'pneumonia'];
export type ImageKind = 'dicom' | 'png' | 'jpeg';

export interface DatasetItem {
  /** line of labels.csv this item comes from (the header is line 1) */
  row: number;
  /** the image path as written in labels.csv, relative to the dataset folder */
  file: string;
  /** absolute path of the image */
  path: string;
  label: Label;
  /** 1 for pneumonia, 0 for normal */
  target: 0 | 1;
  patientId: string;
  /** absolute path of the lung mask, when the dataset has one for this image */
  mask: string | null;
  kind: ImageKind;
  /** every column of the row, by header name */
  fields: Record<string, string>;
}

export interface Dataset {
  dir: string;
  columns: string[];
  items: DatasetItem[];
  /** items that have a mask */
  masked: number;
  /** what was accepted only after normalising it (e.g. a label 'Pneumonia ' read as pneumonia) */
  warnings: string[];
}

/** A row of labels.csv that cannot be used, by line (the header is line 1). */
export interface RowProblem {
  line: number;
  file: string;
  message: string;
}

export interface LoadOptions {
  /** every item must have a mask (segmenter training) */
  requireMasks?: boolean;
  /**
   * Compare mask sizes with image sizes while loading, where that is cheap: PNG/JPEG headers,
   * or `width`/`height` columns for DICOM. Default true. Sizes are checked again whenever a
   * sample is read.
   */
  checkMaskSizes?: boolean;
  /**
   * Called for each unusable row, which is then left out, instead of failing on the first one
   * (`validate-dataset` lists them all; `train --skip-bad` trains without them).
   */
  onRowProblem?: (p: RowProblem) => void;
}

const REQUIRED = ['file', 'label', 'patient_id'] as const;

function bad(msg: string): CxrError {
  return new CxrError('E_BAD_DATASET', msg);
}

export function imageKind(file: string): ImageKind | null {
  const ext = extname(file).toLowerCase();
  if (ext === '.dcm' || ext === '.dicom' || ext === '') return 'dicom';
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  return null;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** A path from the CSV, resolved inside the dataset folder (never outside it). */
function inside(dir: string, rel: string, what: string, line: number): string {
  if (isAbsolute(rel)) throw bad(`labels.csv line ${line}: ${what} '${rel}' must be relative to the dataset folder`);
  const abs = resolve(dir, rel);
  const back = relative(dir, abs);
  if (back === '' || back.startsWith('..') || isAbsolute(back)) throw bad(`labels.csv line ${line}: ${what} '${rel}' points outside the dataset folder`);
  return abs;
}

export async function loadDataset(dir: string, opts: LoadOptions = {}): Promise<Dataset> {
  const root = resolve(dir);
  const csvPath = join(root, 'labels.csv');
  let text: string;
  try {
    text = await readFile(csvPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(code === 'ENOENT' ? `${root} has no labels.csv` : `cannot read ${csvPath}: ${(e as Error).message}`);
  }
  const table = parseCsv(text, 'labels.csv');
  const columns = table.header;
  for (const c of REQUIRED) if (!columns.includes(c)) throw bad(`labels.csv has no '${c}' column (columns: ${columns.join(', ')})`);
  const col = (name: string): number => columns.indexOf(name);
  const iFile = col('file');
  const iLabel = col('label');
  const iPatient = col('patient_id');
  const iMask = col('mask');
  const masksDir = join(root, 'masks');
  const seen = new Map<string, number>();
  const items: DatasetItem[] = [];
  const normalised = new Map<string, number[]>();
  for (const r of table.rows) {
    try {
      const item = await readRow(r);
      if (item) items.push(item);
    } catch (e) {
      if (!opts.onRowProblem || !isCxrError(e)) throw e;
      opts.onRowProblem({ line: r.line, file: r.fields[iFile] ?? '', message: e.message.replace(/^labels\.csv line \d+: /, '') });
    }
  }
  async function readRow(r: { line: number; fields: string[] }): Promise<DatasetItem> {
    const at = `labels.csv line ${r.line}`;
    const file = r.fields[iFile];
    if (file === '') throw bad(`${at}: empty file name`);
    const path = inside(root, file, 'file', r.line);
    const prev = seen.get(path);
    if (prev !== undefined) throw bad(`${at}: '${file}' is listed twice (also line ${prev})`);
    seen.set(path, r.line);
    const raw = r.fields[iLabel];
    // exact names; other case or surrounding spaces are read with a warning, anything else refused
    const labelText = raw.trim().toLowerCase();
    if (!(LABELS as readonly string[]).includes(labelText)) throw bad(`${at}: unknown label '${raw}' (expected normal or pneumonia)`);
    if (labelText !== raw) normalised.set(raw, [...(normalised.get(raw) ?? []), r.line]);
    const label = labelText as Label;
    const patientId = r.fields[iPatient];
    if (patientId === '') throw bad(`${at}: empty patient_id`);
    const kind = imageKind(file);
    if (kind === null) throw bad(`${at}: '${file}' is not a DICOM, PNG or JPEG file name`);
    if (!(await isFile(path))) throw bad(`${at}: image '${file}' does not exist`);
    let mask: string | null = null;
    if (iMask >= 0 && r.fields[iMask] !== '') {
      mask = inside(root, r.fields[iMask], 'mask', r.line);
      if (!(await isFile(mask))) throw bad(`${at}: mask '${r.fields[iMask]}' does not exist`);
    } else if (iMask < 0) {
      const guess = join(masksDir, `${basename(file, extname(file))}.png`);
      if (await isFile(guess)) mask = guess;
    }
    if (opts.requireMasks && mask === null) throw bad(`${at}: '${file}' has no lung mask (masks/ or a mask column is required)`);
    const fields: Record<string, string> = {};
    columns.forEach((c, k) => (fields[c] = r.fields[k]));
    return { row: r.line, file, path, label, target: label === 'pneumonia' ? 1 : 0, patientId, mask, kind, fields };
  }
  if (items.length === 0 && !opts.onRowProblem) throw bad(`labels.csv in ${root} lists no images`);
  let kept = items;
  if (opts.checkMaskSizes ?? true) {
    kept = [];
    for (const item of items) {
      try {
        if (item.mask) {
          const m = await pngSize(item.mask, item);
          const img = await cheapImageSize(item);
          if (img && (img.width !== m.width || img.height !== m.height)) throw maskSizeError(item, img, m);
        }
        kept.push(item);
      } catch (e) {
        if (!opts.onRowProblem || !isCxrError(e)) throw e;
        opts.onRowProblem({ line: item.row, file: item.file, message: e.message.replace(/^labels\.csv line \d+: /, '') });
      }
    }
  }
  const warnings = [...normalised].map(([raw, lines]) => {
    const shown = lines.slice(0, 5).join(', ') + (lines.length > 5 ? `, … (${lines.length} rows)` : '');
    return `labels.csv: label '${raw}' read as '${raw.trim().toLowerCase()}' (line${lines.length > 1 ? 's' : ''} ${shown}); write the exact name to silence this`;
  });
  return { dir: root, columns, items: kept, masked: kept.filter((i) => i.mask !== null).length, warnings };
}

function maskSizeError(item: DatasetItem, img: { width: number; height: number }, m: { width: number; height: number }): CxrError {
  return bad(`labels.csv line ${item.row}: mask of '${item.file}' is ${m.width}x${m.height} but the image is ${img.width}x${img.height}`);
}

async function pngSize(path: string, item: DatasetItem): Promise<{ width: number; height: number }> {
  try {
    const meta = await sharp(path).metadata();
    if (!meta.width || !meta.height) throw new Error('no size in header');
    return { width: meta.width, height: meta.height };
  } catch (e) {
    throw bad(`labels.csv line ${item.row}: mask of '${item.file}' is not a readable image (${(e as Error).message})`);
  }
}

async function cheapImageSize(item: DatasetItem): Promise<{ width: number; height: number } | null> {
  if (item.kind !== 'dicom') {
    try {
      const meta = await sharp(item.path).metadata();
      return meta.width && meta.height ? { width: meta.width, height: meta.height } : null;
    } catch (e) {
      throw bad(`labels.csv line ${item.row}: '${item.file}' is not a readable ${item.kind.toUpperCase()} image (${(e as Error).message})`);
    }
  }
  const w = Number(item.fields.width);
  const h = Number(item.fields.height);
  return Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0 ? { width: w, height: h } : null;
}

export interface ReadOptions {
  /** window policy for DICOM images (default auto, DESIGN "Window policy") */
  window?: WindowPolicy;
}

/** The item's image as display values in [0,1]: DICOM windowed, PNG/JPEG scaled. */
export async function readItemImage(item: DatasetItem, opts: ReadOptions = {}): Promise<GrayImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(item.path);
  } catch (e) {
    throw bad(`labels.csv line ${item.row}: cannot read '${item.file}' (${(e as Error).message})`);
  }
  try {
    if (item.kind === 'dicom') {
      const w = await readWindowed(bytes, { window: opts.window ?? { kind: 'auto' } });
      return grayImage(w.width, w.height, w.data);
    }
    return await decodeDisplayImage(bytes, item.file);
  } catch (e) {
    if (isCxrError(e)) throw bad(`labels.csv line ${item.row}: '${item.file}' cannot be read: ${e.code} ${e.message}`);
    throw e;
  }
}

/** The item's lung mask as 0/1 values, or null when it has none. */
export async function readItemMask(item: DatasetItem): Promise<GrayImage | null> {
  if (!item.mask) return null;
  let img: GrayImage;
  try {
    img = await decodeDisplayImage(await readFile(item.mask), item.mask);
  } catch (e) {
    throw bad(`labels.csv line ${item.row}: mask of '${item.file}' cannot be read (${(e as Error).message})`);
  }
  const d = img.data;
  for (let k = 0; k < d.length; k++) d[k] = d[k] >= 0.5 ? 1 : 0;
  return img;
}

export interface Sample {
  item: DatasetItem;
  image: GrayImage;
  mask: GrayImage | null;
}

/** Image and mask together, with the mask's size checked against the image. */
export async function readSample(item: DatasetItem, opts: ReadOptions = {}): Promise<Sample> {
  const [image, mask] = await Promise.all([readItemImage(item, opts), readItemMask(item)]);
  if (mask && (mask.width !== image.width || mask.height !== image.height)) throw maskSizeError(item, image, mask);
  return { item, image, mask };
}

/** Counts per label and patients, for logs and manifests. */
export function describeItems(items: readonly DatasetItem[]): { images: number; patients: number; normal: number; pneumonia: number } {
  const patients = new Set(items.map((i) => i.patientId));
  const pneumonia = items.filter((i) => i.label === 'pneumonia').length;
  return { images: items.length, patients: patients.size, normal: items.length - pneumonia, pneumonia };
}
