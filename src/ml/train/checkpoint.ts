import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { CxrError } from '../../errors.js';
import { loadModel, saveModel } from '../model-io.js';
import type { AdamState } from './adam.js';
import type { EpochRecord } from './types.js';

/** Where a run keeps its state: config, per-epoch metrics, last checkpoint and best weights. */
export interface RunPaths {
  dir: string;
  config: string;
  metrics: string;
  checkpoint: string;
  best: string;
}

export function runPaths(dir: string): RunPaths {
  return {
    dir,
    config: join(dir, 'config.json'),
    metrics: join(dir, 'metrics.jsonl'),
    checkpoint: join(dir, 'checkpoint'),
    best: join(dir, 'best'),
  };
}

export interface TrainerState {
  /** epochs completed (the next epoch to run has this index) */
  epochsDone: number;
  /** optimizer steps taken */
  step: number;
  bestMetric: number | null;
  bestEpoch: number | null;
  /** epochs since the best one (early stopping counter) */
  staleEpochs: number;
  stopped: boolean;
  history: EpochRecord[];
}

const STATE = 'state.json';
const OPT_JSON = 'optimizer.json';
const OPT_BIN = 'optimizer.bin';

/**
 * Writes model weights (float32), optimizer moments and trainer state into a fresh folder,
 * then swaps it in, so an interrupted write never leaves a half checkpoint behind.
 */
export async function saveCheckpoint(paths: RunPaths, model: tf.LayersModel, adam: AdamState, state: TrainerState): Promise<void> {
  const tmp = `${paths.checkpoint}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveModel(model, tmp);
  const sizes = adam.m.map((a) => a.length);
  const total = sizes.reduce((s, k) => s + k, 0);
  const bin = new Float32Array(2 * total);
  let at = 0;
  for (const part of [...adam.m, ...adam.v]) {
    bin.set(part, at);
    at += part.length;
  }
  await writeFile(join(tmp, OPT_BIN), new Uint8Array(bin.buffer));
  await writeFile(join(tmp, OPT_JSON), JSON.stringify({ step: adam.step, names: adam.names, sizes }));
  await writeFile(join(tmp, STATE), JSON.stringify(state, null, 1));
  const old = `${paths.checkpoint}.old`;
  await rm(old, { recursive: true, force: true });
  if (existsSync(paths.checkpoint)) await rename(paths.checkpoint, old);
  await rename(tmp, paths.checkpoint);
  await rm(old, { recursive: true, force: true });
}

export interface LoadedCheckpoint {
  model: tf.LayersModel;
  adam: AdamState;
  state: TrainerState;
}

export async function loadCheckpoint(paths: RunPaths): Promise<LoadedCheckpoint> {
  // a crash between the two renames leaves only the .old folder: it is the last good one
  const dir = existsSync(paths.checkpoint) ? paths.checkpoint : `${paths.checkpoint}.old`;
  if (!existsSync(join(dir, STATE))) throw new CxrError('E_NOT_FOUND', `no checkpoint to resume in ${paths.dir}`);
  const state = JSON.parse(await readFile(join(dir, STATE), 'utf8')) as TrainerState;
  const meta = JSON.parse(await readFile(join(dir, OPT_JSON), 'utf8')) as { step: number; names: string[]; sizes: number[] };
  const raw = await readFile(join(dir, OPT_BIN));
  const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const total = meta.sizes.reduce((s, k) => s + k, 0);
  if (all.length !== 2 * total) throw new CxrError('E_MODEL_INVALID', `${dir}: optimizer state has ${all.length} values, expected ${2 * total}`);
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  let at = 0;
  for (const k of meta.sizes) {
    m.push(all.slice(at, at + k));
    at += k;
  }
  for (const k of meta.sizes) {
    v.push(all.slice(at, at + k));
    at += k;
  }
  const model = await loadModel(dir);
  return { model, adam: { step: meta.step, names: meta.names, m, v }, state };
}
