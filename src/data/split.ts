/**
 * Patient-grouped, label-stratified train/validation/test splits. All images of a patient
 * land in one split (a model must never be tested on a patient it trained on); patients are
 * stratified by their label (pneumonia if any of their studies is), and within each stratum
 * assigned greedily to the split furthest below its share of images, in a seeded random
 * order. Same items and seed, same split.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CxrError } from '../errors.js';
import { csvLine, parseCsv } from './csv.js';
import type { Label } from './dataset.js';
import { rngFor } from './rng.js';

export type SplitName = 'train' | 'validation' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'test'];

/** A split name given on the command line; anything else is E_BAD_ARGUMENT naming the option. */
export function parseSplitName(value: string, option = '--subset'): SplitName {
  if (!(SPLIT_NAMES as readonly string[]).includes(value)) {
    throw new CxrError('E_BAD_ARGUMENT', `${option} must be one of ${SPLIT_NAMES.join(', ')}, got '${value}'`);
  }
  return value as SplitName;
}

export interface SplitInput {
  file: string;
  patientId: string;
  label: Label;
  /** the set an image belongs to in a pool of datasets (written as the split's `dataset` column) */
  dataset?: string;
}

export interface SplitCounts {
  images: number;
  patients: number;
  normal: number;
  pneumonia: number;
}

export interface DatasetSplit {
  seed: number;
  /** train, validation, test fractions (sum 1) */
  fractions: [number, number, number];
  /** one entry per image, in input order */
  assignments: { file: string; patientId: string; label: Label; split: SplitName; dataset?: string }[];
  /** file names per split, in input order */
  train: string[];
  validation: string[];
  test: string[];
  counts: Record<SplitName, SplitCounts>;
}

export interface SplitOptions {
  seed?: number;
  /** train, validation, test; normalised to sum 1; default 0.7, 0.1, 0.2 */
  fractions?: [number, number, number];
}

export function normaliseFractions(f: readonly number[]): [number, number, number] {
  if (f.length !== 3 || f.some((v) => !Number.isFinite(v) || v < 0))
    throw new CxrError('E_BAD_ARGUMENT', `split fractions must be three non-negative numbers, got ${f.join('/')}`);
  const sum = f[0] + f[1] + f[2];
  if (!(sum > 0) || f[0] <= 0) throw new CxrError('E_BAD_ARGUMENT', `split fractions need a positive train share, got ${f.join('/')}`);
  return [f[0] / sum, f[1] / sum, f[2] / sum];
}

export function splitByPatient(items: readonly SplitInput[], opts: SplitOptions = {}): DatasetSplit {
  const seed = opts.seed ?? 1;
  const fractions = normaliseFractions(opts.fractions ?? [0.7, 0.1, 0.2]);
  const byPatient = new Map<string, { label: Label; images: number }>();
  for (const it of items) {
    const p = byPatient.get(it.patientId);
    if (p) {
      p.images++;
      if (it.label === 'pneumonia') p.label = 'pneumonia';
    } else byPatient.set(it.patientId, { label: it.label, images: 1 });
  }
  const where = new Map<string, SplitName>();
  for (const stratum of ['normal', 'pneumonia'] as const) {
    // Sorted first so the result does not depend on the order of the input rows.
    const ids = [...byPatient.entries()]
      .filter(([, p]) => p.label === stratum)
      .map(([id]) => id)
      .sort();
    const order = rngFor(['split', seed, stratum]).shuffle(ids);
    const total = order.reduce((n, id) => n + byPatient.get(id)!.images, 0);
    const target = fractions.map((f) => f * total);
    const have = [0, 0, 0];
    for (const id of order) {
      const n = byPatient.get(id)!.images;
      // The split with the largest unmet share of its target (ties go to the earlier split).
      let best = -1;
      let bestGap = -Infinity;
      for (let s = 0; s < 3; s++) {
        if (target[s] <= 0) continue;
        const gap = (target[s] - have[s]) / target[s];
        if (gap > bestGap + 1e-12) {
          bestGap = gap;
          best = s;
        }
      }
      have[best] += n;
      where.set(id, SPLIT_NAMES[best]);
    }
  }
  const assignments = items.map((it) => ({
    file: it.file,
    patientId: it.patientId,
    label: it.label,
    split: where.get(it.patientId)!,
    ...(it.dataset !== undefined ? { dataset: it.dataset } : {}),
  }));
  return fromAssignments(seed, fractions, assignments);
}

/** The split's file lists and counts from its per-image assignments. */
export function fromAssignments(seed: number, fractions: [number, number, number], assignments: DatasetSplit['assignments']): DatasetSplit {
  const counts = {} as Record<SplitName, SplitCounts>;
  for (const name of SPLIT_NAMES) {
    const mine = assignments.filter((a) => a.split === name);
    const pneumonia = mine.filter((a) => a.label === 'pneumonia').length;
    counts[name] = { images: mine.length, patients: new Set(mine.map((a) => a.patientId)).size, normal: mine.length - pneumonia, pneumonia };
  }
  const files = (name: SplitName): string[] => assignments.filter((a) => a.split === name).map((a) => a.file);
  return { seed, fractions, assignments, train: files('train'), validation: files('validation'), test: files('test'), counts };
}

/**
 * A pool of datasets split set by set: each set's patients are split (and stratified) on
 * their own, so every set keeps its own train/validation/test shares and can be reported
 * apart. One set (no `dataset` on the items) is splitByPatient.
 */
export function splitBySet(items: readonly SplitInput[], opts: SplitOptions = {}): DatasetSplit {
  const sets = [...new Set(items.map((i) => i.dataset ?? ''))];
  if (sets.length <= 1) return splitByPatient(items, opts);
  const where = new Map<string, SplitName>();
  for (const set of sets) {
    const part = splitByPatient(
      items.filter((i) => (i.dataset ?? '') === set),
      opts,
    );
    for (const a of part.assignments) where.set(a.file, a.split);
  }
  const assignments = items.map((it) => ({ file: it.file, patientId: it.patientId, label: it.label, split: where.get(it.file)!, dataset: it.dataset ?? '' }));
  return fromAssignments(opts.seed ?? 1, normaliseFractions(opts.fractions ?? [0.7, 0.1, 0.2]), assignments);
}

/** Writes `split.json` (the whole split) and `split.csv` (file,patient_id,label,split[,dataset]) into `dir`. */
export async function writeSplit(dir: string, split: DatasetSplit): Promise<{ json: string; csv: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'split.json');
  const csv = join(dir, 'split.csv');
  const { seed, fractions, counts, assignments } = split;
  await writeFile(json, `${JSON.stringify({ seed, fractions, counts, train: split.train, validation: split.validation, test: split.test }, null, 2)}\n`);
  const pooled = assignments.some((a) => a.dataset !== undefined);
  const lines = [
    csvLine(['file', 'patient_id', 'label', 'split', ...(pooled ? ['dataset'] : [])]),
    ...assignments.map((a) => csvLine([a.file, a.patientId, a.label, a.split, ...(pooled ? [a.dataset ?? ''] : [])])),
  ];
  await writeFile(csv, `${lines.join('\n')}\n`);
  return { json, csv };
}

/** Reads a split written by writeSplit (its CSV), e.g. to resume a run on the same images. */
export async function readSplit(dir: string, seed = 0, fractions: [number, number, number] = [0.7, 0.1, 0.2]): Promise<DatasetSplit> {
  return readSplitFile(join(dir, 'split.csv'), seed, fractions);
}

/** readSplit of a split CSV by path; the split.json beside it, when there, gives seed and fractions. */
export async function readSplitFile(path: string, seed = 0, fractions: [number, number, number] = [0.7, 0.1, 0.2]): Promise<DatasetSplit> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CxrError('E_NOT_FOUND', `cannot read ${path}: ${(e as Error).message}`);
  }
  let meta: { seed?: number; fractions?: [number, number, number] } = {};
  try {
    meta = JSON.parse(await readFile(join(dirname(path), 'split.json'), 'utf8')) as typeof meta;
  } catch {
    // split.json is optional for reading; the CSV is the record.
  }
  const t = parseCsv(text, 'split.csv');
  const idx = (c: string): number => {
    const k = t.header.indexOf(c);
    if (k < 0) throw new CxrError('E_BAD_DATASET', `split.csv has no '${c}' column`);
    return k;
  };
  const [iF, iP, iL, iS] = [idx('file'), idx('patient_id'), idx('label'), idx('split')];
  // a pool's split names each image's set; a one-set split has no such column
  const iD = t.header.indexOf('dataset');
  const assignments = t.rows.map((r) => {
    const split = r.fields[iS] as SplitName;
    const label = r.fields[iL] as Label;
    if (!SPLIT_NAMES.includes(split)) throw new CxrError('E_BAD_DATASET', `split.csv line ${r.line}: unknown split '${r.fields[iS]}'`);
    if (label !== 'normal' && label !== 'pneumonia') throw new CxrError('E_BAD_DATASET', `split.csv line ${r.line}: unknown label '${r.fields[iL]}'`);
    return { file: r.fields[iF], patientId: r.fields[iP], label, split, ...(iD >= 0 ? { dataset: r.fields[iD] } : {}) };
  });
  return fromAssignments(meta.seed ?? seed, meta.fractions ?? fractions, assignments);
}
