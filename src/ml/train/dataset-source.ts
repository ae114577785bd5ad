import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseWindowPolicy, type WindowPolicy } from '../../dicom/index.js';
import { CxrError } from '../../errors.js';
import { createBatchSource, type BatchOptions } from '../../data/batches.js';
import { readItemImage, readItemMask, type DatasetItem } from '../../data/dataset.js';
import { datasetName, itemSource, loadDatasets, type DatasetSpec, type LoadedSource } from '../../data/multi-dataset.js';
import { hashItems } from '../../data/hash.js';
import { readSplit, readSplitFile, splitBySet, writeSplit, type DatasetSplit } from '../../data/split.js';
import type { MaskLike } from '../../imaging/lung-crop.js';
import type { GrayImage } from '../../imaging/types.js';
import type { EvalItem } from '../evaluate.js';
import { readManifest } from '../model-store/index.js';
import { loadModel } from '../model-io.js';
import { lungMask, segmenterInput } from '../../imaging/pixel-contract.js';
import type { TrainConfig } from './config.js';
import { shuffledIndices } from './rng.js';
import type { ProgressStream } from './progress.js';
import type { TrainData, Task } from './types.js';

/** How a run reads its dataset; saved in the run's config.json so --resume reads the same. */
export interface DataOptions {
  /** the dataset folder (the first one of a pool) */
  dataDir: string;
  /**
   * several dataset folders trained on as one pool, each split by patient on its own and
   * drawn with its weight (see multi-dataset.ts); absent: dataDir alone
   */
  datasets?: DatasetSpec[];
  maxImages?: number;
  /** train/validation/test fractions (default 70/10/20) */
  split?: [number, number, number];
  /** classifier: segmenter version folder whose masks give the crops where the dataset has none */
  segmenterDir?: string;
  /** DICOM window policy name (default auto) */
  window?: string;
  augment: boolean;
  /**
   * Train images drawn per epoch (weighted, see `sourceWeights`); default: one pass over the
   * train split (for a pool: as many draws as the train split has images, by the set weights).
   */
  epochImages?: number;
  /**
   * Share of each source in the drawn epochs (normalised over the sources present); an item's
   * source is its labels.csv `source` column ('' without one). Sources not named get weight 1.
   * Only used with epochImages. A pool's default: its sets' weights.
   */
  sourceWeights?: Record<string, number>;
  /** files of labels.csv left out (`train --skip-bad`: rows validate-dataset found unusable) */
  exclude?: string[];
  /** reuse this split CSV (file,patient_id,label,split) instead of drawing one */
  splitFile?: string;
}

export { itemSource };

/**
 * Per-item sampling weights so that each source's total share of an epoch is its weight over
 * the sum of the weights of the sources present, however many images it has.
 */
export function sourceSamplingWeights(items: readonly DatasetItem[], weights: Record<string, number> = {}): number[] {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(itemSource(i), (counts.get(itemSource(i)) ?? 0) + 1);
  return items.map((i) => {
    const s = itemSource(i);
    return (weights[s] ?? 1) / counts.get(s)!;
  });
}

export interface PreparedTrainData {
  data: TrainData;
  info: {
    dataDir: string;
    dataHash: string;
    dataSize: number;
    split: { train: number; validation: number; test: number; seed: number; file: string };
    maskSource?: string;
    /** a pool's sets: folder name, images, sampling weight, and split counts */
    datasets?: (Omit<LoadedSource, 'dir'> & { train: number; validation: number; test: number })[];
  };
}

/** Caps of the preprocessed-sample caches: the train split is reread every epoch. */
const TRAIN_CACHE_BYTES = 1536 * 1024 * 1024;
const EVAL_CACHE_BYTES = 512 * 1024 * 1024;

/** At most `max` items, whole patients at a time (so a cap never splits a patient), in a seeded patient order. */
export function capItems(items: readonly DatasetItem[], max: number | undefined, seed: number): DatasetItem[] {
  if (max == null || items.length <= max) return items.slice();
  const patients = [...new Set(items.map((i) => i.patientId))].sort();
  const order = shuffledIndices(patients.length, seed, 0).map((k) => patients[k]);
  const keep = new Set<string>();
  let n = 0;
  const perPatient = new Map<string, number>();
  for (const i of items) perPatient.set(i.patientId, (perPatient.get(i.patientId) ?? 0) + 1);
  for (const p of order) {
    const k = perPatient.get(p)!;
    // whole patients only, never past the cap (a patient larger than the cap is skipped)
    if (n + k > max) continue;
    keep.add(p);
    n += k;
    if (n === max) break;
  }
  return items.filter((i) => keep.has(i.patientId));
}

/** A mask provider that runs a segmenter version over the windowed image (classifier crops). */
export async function segmenterMasks(dir: string): Promise<{ maskFor: NonNullable<BatchOptions['maskFor']>; label: string }> {
  const manifest = await readManifest(dir);
  if (manifest.name !== 'segmenter') throw new CxrError('E_BAD_ARGUMENT', `${dir} is a ${manifest.name} version, not a segmenter`);
  const model = await loadModel(dir);
  const size = manifest.inputSize;
  return {
    label: `segmenter ${manifest.version}`,
    async maskFor(_item: DatasetItem, image: GrayImage): Promise<MaskLike | null> {
      const input = segmenterInput(image, size);
      const out = tf.tidy(() => model.predict(tf.tensor4d(input.data, [1, size, size, 1])) as tf.Tensor);
      const prob = (await out.data()) as Float32Array;
      out.dispose();
      return lungMask(prob, size);
    },
  };
}

/**
 * Loads the dataset folder, caps it, splits it by patient (or rereads the run's split when
 * resuming), hashes it, and returns lazy batch sources for train (shuffled, augmented),
 * validation and test.
 */
export async function prepareTrainData(task: Task, config: TrainConfig, opts: DataOptions, runDir: string, log: ProgressStream): Promise<PreparedTrainData> {
  const window: WindowPolicy = parseWindowPolicy(opts.window);
  const excluded = new Set(opts.exclude ?? []);
  const pool = await loadDatasets(opts.datasets ?? [{ dir: opts.dataDir }], {
    requireMasks: task === 'segmenter',
    // rows left out on purpose may be unreadable; any other problem still stops the run
    ...(excluded.size > 0
      ? {
          onRowProblem: (p) => {
            if (!excluded.has(p.file)) throw new CxrError('E_BAD_DATASET', `labels.csv line ${p.line}: ${p.message}`);
          },
        }
      : {}),
  });
  const pooled = pool.sources.length > 1;
  const items = capItems(
    pool.items.filter((i) => !excluded.has(i.file)),
    opts.maxImages,
    config.seed,
  );
  let split: DatasetSplit;
  if (existsSync(join(runDir, 'split.csv'))) {
    split = await readSplit(runDir);
  } else if (opts.splitFile) {
    split = await readSplitFile(opts.splitFile);
    const inSplit = new Set(split.assignments.map((a) => a.file));
    const unassigned = items.filter((i) => !inSplit.has(i.file)).length;
    // the split's files must be in the folder (pick() below says which is not); extra images are left out
    log.write(`split: reusing ${opts.splitFile}${unassigned > 0 ? ` (${unassigned} images of the folder are not in it and are left out)` : ''}\n`);
    await writeSplit(runDir, split);
  } else {
    split = splitBySet(
      items.map((i) => ({ file: i.file, patientId: i.patientId, label: i.label, ...(pooled ? { dataset: itemSource(i) } : {}) })),
      { seed: config.seed, fractions: opts.split },
    );
    await writeSplit(runDir, split);
  }
  const byFile = new Map(items.map((i) => [i.file, i]));
  const pick = (files: string[]): DatasetItem[] =>
    files.map((f) => {
      const it = byFile.get(f);
      if (!it) throw new CxrError('E_BAD_DATASET', `the run's split lists '${f}', which is not in ${opts.dataDir} (or not within --max-images)`);
      return it;
    });
  const train = pick(split.train);
  const validation = pick(split.validation);
  const test = pick(split.test);
  if (validation.length === 0) throw new CxrError('E_BAD_DATASET', 'the validation split is empty: use more images or a larger validation share');

  let maskFor: BatchOptions['maskFor'];
  let maskSource = task === 'segmenter' ? 'ground truth' : undefined;
  if (task === 'classifier') {
    const unmasked = items.filter((i) => i.mask === null).length;
    if (unmasked > 0) {
      if (!opts.segmenterDir) {
        throw new CxrError('E_BAD_ARGUMENT', `${unmasked} of ${items.length} images have no lung mask: give --segmenter DIR so its masks give the lung crops`);
      }
      const seg = await segmenterMasks(opts.segmenterDir);
      maskFor = seg.maskFor;
      maskSource = unmasked === items.length ? seg.label : `ground truth, else ${seg.label}`;
    } else maskSource = 'ground truth';
  }
  const base: BatchOptions = { task, size: config.inputSize, window, maskFor };
  const hash = await hashItems(items);
  const c = split.counts;
  const sourceWeights = opts.sourceWeights ?? (pooled ? Object.fromEntries(pool.sources.map((s) => [s.name, s.weight])) : undefined);
  const epochImages = opts.epochImages ?? (pooled ? train.length : undefined);
  const perSet = pool.sources.map((s) => ({
    name: s.name,
    images: s.images,
    weight: s.weight,
    train: train.filter((i) => itemSource(i) === s.name).length,
    validation: validation.filter((i) => itemSource(i) === s.name).length,
    test: test.filter((i) => itemSource(i) === s.name).length,
  }));
  if (pooled) {
    for (const s of perSet) {
      log.write(`set ${s.name}: ${s.images} images, train ${s.train} / validation ${s.validation} / test ${s.test}, weight ${s.weight}\n`);
    }
  }
  log.write(
    `data: ${items.length} images (${pool.items.length} in ${pooled ? `${pool.sources.length} folders` : 'folder'}), train ${c.train.images} / validation ${c.validation.images} / test ${c.test.images} ` +
      `images by patient; pneumonia ${c.train.pneumonia}/${c.validation.pneumonia}/${c.test.pneumonia}; masks: ${maskSource ?? 'n/a'}\n`,
  );
  return {
    data: {
      train: createBatchSource(train, {
        ...base,
        shuffle: true,
        seed: config.seed,
        augment: opts.augment ? {} : false,
        cacheBytes: TRAIN_CACHE_BYTES,
        ...(epochImages ? { sample: { perEpoch: epochImages, weights: sourceSamplingWeights(train, sourceWeights) } } : {}),
      }),
      validation: createBatchSource(validation, { ...base, cacheBytes: EVAL_CACHE_BYTES }),
      test: createBatchSource(test, { ...base, cacheBytes: 0 }),
      trainLabels: train.map((i) => i.target),
      validationGroups: validation.map(itemSource),
      testGroups: test.map(itemSource),
    },
    info: {
      dataDir: opts.dataDir,
      dataHash: hash.sha256,
      dataSize: items.length,
      split: { train: train.length, validation: validation.length, test: test.length, seed: split.seed, file: 'split.csv' },
      ...(maskSource ? { maskSource } : {}),
      ...(pooled ? { datasets: perSet } : {}),
    },
  };
}

/**
 * Every image of one or several dataset folders as evaluation items (lazy: pixels are read
 * when scored). With several folders, or `pooled` (a pool's split file names images as
 * `<folder name>/<file>`), ids carry the folder name as training's pool does.
 */
export async function loadEvalItems(
  dataDirs: string | readonly string[],
  opts: { maxImages?: number; window?: string; seed?: number; pooled?: boolean } = {},
): Promise<EvalItem[]> {
  const window = parseWindowPolicy(opts.window);
  const dirs = typeof dataDirs === 'string' ? [dataDirs] : dataDirs;
  const pool = await loadDatasets(dirs.map((dir) => ({ dir })));
  const named =
    opts.pooled && dirs.length === 1
      ? pool.items.map((i) => ({ ...i, file: `${datasetName(dirs[0])}/${i.file}`, fields: { ...i.fields, source: datasetName(dirs[0]) } }))
      : pool.items;
  const items = capItems(named, opts.maxImages, opts.seed ?? 1);
  return items.map((item) => ({
    id: item.file,
    source: itemSource(item),
    label: item.target,
    image: () => readItemImage(item, { window }),
    ...(item.mask ? { mask: () => readItemMask(item) } : {}),
  }));
}
