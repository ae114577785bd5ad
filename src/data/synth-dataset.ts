/**
 * Writes a synthetic dataset folder: images/<name>.dcm, masks/<name>.png (0/255 at native
 * size) and labels.csv, one study at a time (only one image is ever in memory), each row
 * appended after its files are on disk, so an interrupted run leaves a consistent dataset.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { siblingModule, workerBoot } from '../worker-boot.js';
import { CxrError } from '../errors.js';
import { csvLine } from './csv.js';
import { encodeMaskPng } from './mask-png.js';
import { checkOptions, generateStudy, LABEL_COLUMNS, type LabelRow, type SynthOptions } from './phantom/study.js';

export interface SynthDatasetOptions extends SynthOptions {
  out: string;
  count: number;
  seed: number;
  /** replace an existing dataset in `out` */
  force?: boolean;
  /** worker threads generating in parallel (default 1: in this thread); output is identical */
  jobs?: number;
  /** called after each study is written */
  onProgress?: (done: number, total: number, row: LabelRow) => void;
}

export interface SynthSummary {
  dir: string;
  count: number;
  normal: number;
  pneumonia: number;
  patients: number;
  seconds: number;
}

export async function writeSynthDataset(opts: SynthDatasetOptions): Promise<SynthSummary> {
  const dir = resolve(opts.out);
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new CxrError('E_BAD_ARGUMENT', `count must be a positive integer, got ${opts.count}`);
  if (!Number.isInteger(opts.seed)) throw new CxrError('E_BAD_ARGUMENT', `seed must be an integer, got ${opts.seed}`);
  checkOptions(opts);
  await prepareFolder(dir, opts.force ?? false);
  await mkdir(join(dir, 'images'), { recursive: true });
  await mkdir(join(dir, 'masks'), { recursive: true });
  const csv = createWriteStream(join(dir, 'labels.csv'));
  const t0 = Date.now();
  let pneumonia = 0;
  const patients = new Set<string>();
  const jobs = opts.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new CxrError('E_BAD_ARGUMENT', `jobs must be an integer in 1..64, got ${jobs}`);
  const source = jobs > 1 ? workerSource(opts, jobs) : localSource(opts);
  try {
    await write(csv, `${csvLine(LABEL_COLUMNS as string[])}\n`);
    for (let i = 0; i < opts.count; i++) {
      const st = await source.get(i);
      await writeFile(join(dir, st.row.file), st.dicom);
      await writeFile(join(dir, st.row.mask), st.png);
      await write(csv, `${csvLine(LABEL_COLUMNS.map((c) => st.row[c]))}\n`);
      if (st.row.label === 'pneumonia') pneumonia++;
      patients.add(st.row.patient_id);
      opts.onProgress?.(i + 1, opts.count, st.row);
    }
  } finally {
    await source.close();
    await new Promise<void>((res, rej) => csv.end((e?: Error | null) => (e ? rej(e) : res())));
  }
  return { dir, count: opts.count, normal: opts.count - pneumonia, pneumonia, patients: patients.size, seconds: (Date.now() - t0) / 1000 };
}

interface Made {
  dicom: Uint8Array;
  png: Uint8Array;
  row: LabelRow;
}

interface StudySource {
  /** study i; called with i = 0, 1, 2, ... in order */
  get(i: number): Promise<Made>;
  close(): Promise<void>;
}

function localSource(opts: SynthDatasetOptions): StudySource {
  return {
    async get(i) {
      const st = generateStudy(opts.seed, i, opts);
      return { dicom: st.dicom, png: await encodeMaskPng(st.mask, st.width, st.height), row: st.row };
    },
    async close() {},
  };
}

/**
 * A pool of worker threads, each generating whole studies. Studies are requested a few
 * ahead of the writer and handed back in index order, so memory stays at a handful of
 * images and the output is the same as with one thread.
 */
function workerSource(opts: SynthDatasetOptions, jobs: number): StudySource {
  const ahead = jobs * 2;
  const pending = new Map<number, { resolve: (m: Made) => void; reject: (e: Error) => void; promise: Promise<Made> }>();
  let next = 0;
  const { onProgress: _p, ...plain } = opts;
  void _p;
  const bootstrap = workerBoot(siblingModule(import.meta.url, 'synth-worker'));
  const workers = Array.from({ length: jobs }, () => new Worker(bootstrap, { eval: true, workerData: { seed: opts.seed, opts: plain } }));
  const fail = (e: Error): void => {
    for (const p of pending.values()) p.reject(e);
  };
  for (const w of workers) {
    w.on('message', (m: { index: number; dicom?: Uint8Array; png?: Uint8Array; row?: LabelRow; error?: { message: string; code?: string } }) => {
      const p = pending.get(m.index);
      if (!p) return;
      if (m.error) p.reject(m.error.code ? new CxrError(m.error.code as never, m.error.message) : new Error(m.error.message));
      else p.resolve({ dicom: m.dicom!, png: m.png!, row: m.row! });
    });
    w.on('error', fail);
  }
  const request = (i: number): void => {
    if (i >= opts.count || pending.has(i)) return;
    let resolve!: (m: Made) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<Made>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined);
    pending.set(i, { resolve, reject, promise });
    workers[i % jobs].postMessage({ index: i });
  };
  return {
    async get(i) {
      while (next <= i + ahead && next < opts.count) request(next++);
      const made = await pending.get(i)!.promise;
      pending.delete(i);
      return made;
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

function write(s: WriteStream, text: string): Promise<void> {
  return new Promise((res, rej) => s.write(text, (e) => (e ? rej(e) : res())));
}

async function prepareFolder(dir: string, force: boolean): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CxrError('E_BAD_ARGUMENT', `cannot use ${dir} as the output folder: ${(e as Error).message}`);
  }
  if (entries.length === 0) return;
  const ours = entries.every((e) => ['images', 'masks', 'labels.csv'].includes(e) || e.endsWith('.png'));
  if (!force) throw new CxrError('E_BAD_ARGUMENT', `${dir} is not empty; choose an empty folder or pass --force to replace a synthetic dataset there`);
  if (!ours) throw new CxrError('E_BAD_ARGUMENT', `${dir} holds files other than a synthetic dataset; refusing to replace it`);
  await rm(join(dir, 'images'), { recursive: true, force: true });
  await rm(join(dir, 'masks'), { recursive: true, force: true });
  await rm(join(dir, 'labels.csv'), { force: true });
}
