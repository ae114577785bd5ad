import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { CxrError } from '../errors.js';
import type { OnnxInfo } from './onnx/model-version.js';
import type { ProbabilityCalibration } from './probability-calibration.js';

/** A model version is a folder `models/<name>/<version>/` described by this file. */
export const MANIFEST_FILE = 'manifest.json';

export type ModelName = 'segmenter' | 'classifier';

export interface ThresholdInfo {
  /** a study is positive when its probability is >= value */
  value: number;
  targetRecall: number;
  validationSensitivity: number;
  validationSpecificity: number | null;
  /** set by `calibrate`: how the probabilities the threshold was picked on were produced */
  calibratedOn?: { views: number; scorer: string; subset: string; n: number; split: string; at: string };
}

export interface TrainingInfo {
  dataDir: string;
  /** datasetHash of the training folder (labels, images, masks) */
  dataHash: string;
  /** number of images in the dataset folder used for training */
  dataSize: number;
  /** the exact training configuration */
  config: Record<string, unknown>;
  epochs: number;
  /** images per split, plus where the split list was written */
  split: { train: number; validation: number; test: number; seed?: number; file?: string };
  /** the epoch whose weights were kept (best validation metric) */
  bestEpoch?: number;
  /** where the classifier's lung crops came from: 'ground truth' masks or a segmenter version */
  maskSource?: string;
  backend?: string;
  runId?: string;
  /** gradient worker threads besides the main one (data-parallel training) */
  workers?: number;
  /** the model version whose weights the run started from (fine-tuning), when not random */
  initFrom?: string;
  /** a pool of dataset folders: each set's name, images, sampling weight and split counts */
  datasets?: { name: string; images: number; weight: number; train: number; validation: number; test: number }[];
}

/**
 * The probability calibration the engine applies to the served (TTA-mean) probability before
 * the threshold: p' = sigmoid(a * logit(p) + b), fitted on `fittedOn` by `calibrate`.
 */
export interface CalibrationInfo extends ProbabilityCalibration {
  fittedOn: { views: number; subset: string; n: number; split: string; at: string };
  /** expected calibration error (10 bins) on the fitting set before and after */
  eceBefore: number;
  eceAfter: number;
}

export type MetricValues = Record<string, number | null | Record<string, number>>;

export interface ModelManifest {
  name: string;
  version: string;
  /** e.g. 'unet' or 'densenet121-se', with the builder options in architectureConfig */
  architecture: string;
  architectureConfig: Record<string, unknown>;
  /** square input side in pixels */
  inputSize: number;
  createdAt: string;
  training: TrainingInfo;
  metrics: {
    validation: MetricValues;
    test: MetricValues;
    /** a pool: each set's figures on its own rows, at the same (pooled) threshold */
    sets?: Record<string, { validation: MetricValues; test: MetricValues }>;
  };
  /** classifier decision threshold; null for the segmenter (its masks are cut at 0.5) */
  threshold: ThresholdInfo | null;
  /** classifier: probability calibration applied before the threshold (absent: none; the threshold is then on raw probabilities) */
  calibration?: CalibrationInfo;
  /** sha256 (hex) of every file in the version folder except manifest.json, keyed by relative path */
  files: Record<string, string>;
  /** the exported graph, once `export-onnx` has written model.onnx */
  onnx?: OnnxInfo;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return hash.digest('hex');
}

/** Relative paths ('/'-separated, sorted) of every regular file under dir except the manifest. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) {
        const rel = relative(dir, p).split(sep).join('/');
        if (rel !== MANIFEST_FILE && !rel.includes('.tmp-')) out.push(rel);
      }
    }
  }
  await walk(dir);
  return out.sort();
}

export async function hashFiles(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const rel of await listFiles(dir)) files[rel] = await sha256File(join(dir, rel));
  return files;
}

function fail(path: string, why: string): never {
  throw new CxrError('E_MODEL_INVALID', `${path}: ${why}`);
}

function validate(raw: unknown, path: string): ModelManifest {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, 'not a JSON object');
  const m = raw as Record<string, unknown>;
  for (const key of ['name', 'version', 'architecture', 'createdAt'] as const) {
    if (typeof m[key] !== 'string' || (m[key] as string).length === 0) fail(path, `'${key}' must be a non-empty string`);
  }
  if (typeof m.inputSize !== 'number' || !Number.isInteger(m.inputSize) || m.inputSize < 1) fail(path, "'inputSize' must be a positive integer");
  if (m.files == null || typeof m.files !== 'object') fail(path, "'files' must map file names to sha256");
  for (const [f, h] of Object.entries(m.files as Record<string, unknown>)) {
    if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) fail(path, `files['${f}'] is not a sha256 hex digest`);
  }
  if (m.threshold != null) {
    const t = m.threshold as Record<string, unknown>;
    if (typeof t.value !== 'number' || typeof t.targetRecall !== 'number') fail(path, "'threshold' needs numeric value and targetRecall");
  }
  if (m.calibration != null) {
    const c = m.calibration as Record<string, unknown>;
    if (typeof c.a !== 'number' || typeof c.b !== 'number' || !Number.isFinite(c.a) || !Number.isFinite(c.b) || !((c.a as number) > 0)) {
      fail(path, "'calibration' needs finite numbers a > 0 and b");
    }
  }
  if (m.training == null || typeof m.training !== 'object') fail(path, "'training' is missing");
  if (m.metrics == null || typeof m.metrics !== 'object') fail(path, "'metrics' is missing");
  return raw as ModelManifest;
}

export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new CxrError('E_MODEL_MISSING', `no ${MANIFEST_FILE} in ${dir}`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    fail(path, `not valid JSON (${(e as Error).message})`);
  }
  return validate(raw, path);
}

/**
 * Writes manifest.json with `files` recomputed from what is in the folder now, so the hashes
 * always describe the bytes on disk. Returns the manifest as written.
 */
export async function writeManifest(dir: string, manifest: Omit<ModelManifest, 'files'>): Promise<ModelManifest> {
  // through JSON so the returned object equals what readManifest gives back (no undefined fields)
  const full = JSON.parse(JSON.stringify({ ...manifest, files: await hashFiles(dir) })) as ModelManifest;
  validate(full, join(dir, MANIFEST_FILE));
  const path = join(dir, MANIFEST_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(full, null, 2)}\n`);
  await rename(tmp, path);
  return full;
}

/** Re-hashes every file after files were added or replaced (e.g. model.onnx by export-onnx). */
export async function refreshFileHashes(dir: string): Promise<ModelManifest> {
  const { files: _old, ...rest } = await readManifest(dir);
  return writeManifest(dir, rest);
}

export interface ManifestCheck {
  ok: boolean;
  /** listed files whose bytes no longer match */
  modified: string[];
  /** listed files that are gone */
  missing: string[];
  /** files in the folder the manifest does not list */
  unlisted: string[];
}

export async function verifyManifest(dir: string): Promise<ManifestCheck> {
  const manifest = await readManifest(dir);
  const present = new Set(await listFiles(dir));
  const check: ManifestCheck = { ok: true, modified: [], missing: [], unlisted: [] };
  for (const [rel, expected] of Object.entries(manifest.files)) {
    if (!present.has(rel)) check.missing.push(rel);
    else if ((await sha256File(join(dir, rel))) !== expected) check.modified.push(rel);
  }
  for (const rel of present) if (!(rel in manifest.files)) check.unlisted.push(rel);
  check.ok = check.modified.length === 0 && check.missing.length === 0 && check.unlisted.length === 0;
  return check;
}

/** verifyManifest that throws E_MODEL_INVALID naming what differs. */
export async function assertManifest(dir: string): Promise<ModelManifest> {
  const check = await verifyManifest(dir);
  if (!check.ok) {
    const parts = [
      check.modified.length ? `modified: ${check.modified.join(', ')}` : '',
      check.missing.length ? `missing: ${check.missing.join(', ')}` : '',
      check.unlisted.length ? `not in manifest: ${check.unlisted.join(', ')}` : '',
    ].filter(Boolean);
    throw new CxrError('E_MODEL_INVALID', `${dir}: files do not match ${MANIFEST_FILE} (${parts.join('; ')})`);
  }
  return readManifest(dir);
}

/**
 * Finds a model version folder. `root` may be a version folder itself (it holds
 * manifest.json), or a models folder holding `<name>/<version>/`; then `version` picks one,
 * or the newest by createdAt (ties by version name) is taken.
 */
export async function resolveModelVersion(root: string, name: ModelName, version?: string): Promise<string> {
  if (existsSync(join(root, MANIFEST_FILE))) return root;
  const base = join(root, name);
  if (version) {
    const dir = join(base, version);
    if (!existsSync(join(dir, MANIFEST_FILE))) throw new CxrError('E_MODEL_MISSING', `no ${name} version '${version}' in ${root}`);
    return dir;
  }
  if (!existsSync(base) || !(await stat(base)).isDirectory()) throw new CxrError('E_MODEL_MISSING', `no ${name} models in ${root}`);
  const candidates: { dir: string; createdAt: string; version: string }[] = [];
  for (const entry of await readdir(base, { withFileTypes: true })) {
    const dir = join(base, entry.name);
    // a version may be a symlink to a folder elsewhere (deployments often link the shipped ones)
    if (!(entry.isDirectory() || entry.isSymbolicLink()) || !existsSync(join(dir, MANIFEST_FILE))) continue;
    const m = await readManifest(dir);
    candidates.push({ dir, createdAt: m.createdAt, version: m.version });
  }
  if (candidates.length === 0) throw new CxrError('E_MODEL_MISSING', `no ${name} version with a ${MANIFEST_FILE} in ${base}`);
  candidates.sort((a, b) => (a.createdAt === b.createdAt ? a.version.localeCompare(b.version) : a.createdAt.localeCompare(b.createdAt)));
  return candidates[candidates.length - 1].dir;
}

/** A sortable version name from a date: 2025-01-31T12:34:56Z → v20250131-123456. */
export function versionFromDate(d: Date): string {
  const iso = d.toISOString();
  return `v${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
}
