/**
 * Lazy mini-batches over a dataset: images are read, windowed, resized (and cropped to the
 * lungs for the classifier) only when their batch is due, with the next batch prepared while
 * the current one is used, and an optional byte-capped cache of the preprocessed (not yet
 * augmented) samples. Training can therefore run over datasets far larger than memory.
 *
 * - segmenter: the whole image area-resized to size x size, with its mask (required) as the
 *   target; augmentation moves both together.
 * - classifier: the lung box of the mask (the dataset's, or `maskFor`'s, e.g. a segmenter's
 *   prediction) cut from the full-resolution image and resized to size x size (lung-crop.ts);
 *   the target is the label (pneumonia = 1).
 *
 * `createBatchSource` has the shape of the training loop's BatchSource
 * ({ size, batches(epoch, batchSize) }), deterministic for its seed and the epoch.
 */
import { CxrError } from '../errors.js';
import type { MaskLike } from '../imaging/lung-crop.js';
import { classifierCrop, DEFAULT_LUNG_MARGIN, segmenterInput } from '../imaging/pixel-contract.js';
import { resizeArea } from '../imaging/resize.js';
import type { GrayImage } from '../imaging/types.js';
import type { WindowPolicy } from '../dicom/index.js';
import { augmentPair, sampleAugment, type AugmentRanges } from './augment.js';
import { readSample, type DatasetItem } from './dataset.js';
import { rngFor, type Rng } from './rng.js';

export type BatchTask = 'segmenter' | 'classifier';

export interface BatchOptions {
  task: BatchTask;
  /** side of the square network input (256 for the segmenter, 224 for the classifier) */
  size: number;
  /** reorder every epoch (training); default false (evaluation order) */
  shuffle?: boolean;
  /** seed for the order and the augmentation */
  seed?: number;
  /** augmentation ranges, or false/undefined for none */
  augment?: Partial<AugmentRanges> | false;
  window?: WindowPolicy;
  /** classifier: the lung mask for an item that has none (e.g. a segmenter prediction) */
  maskFor?: (item: DatasetItem, image: GrayImage) => Promise<MaskLike | null>;
  /** classifier: lung-box margin (default lung-crop's) */
  lungMargin?: number;
  /** cap of the preprocessed-sample cache in bytes; 0 disables it; default 256 MiB */
  cacheBytes?: number;
  /** drop a last batch smaller than batchSize */
  dropLast?: boolean;
  /**
   * Training: instead of one pass over every item, each epoch draws `perEpoch` items with
   * probability proportional to `weights` (one per item), e.g. so that a small dataset is
   * not drowned out by a large one. See `weightedEpochOrder`.
   */
  sample?: { perEpoch: number; weights: readonly number[] };
}

export interface DataBatch {
  /** n * size * size values in [0,1], NHWC with one channel */
  x: Float32Array;
  /** classifier: n labels; segmenter: n * size * size mask values (0/1) */
  y: Float32Array;
  n: number;
  ids: string[];
  /** the items in batch order */
  items: DatasetItem[];
  /** classifier: whether each crop came from a mask (false: the whole image, no lungs found) */
  cropped?: boolean[];
}

interface Prepared {
  image: GrayImage;
  mask: GrayImage | null;
  cropped: boolean;
}

/** One item preprocessed for the task, before augmentation. */
export async function prepareItem(item: DatasetItem, opts: BatchOptions): Promise<Prepared> {
  const { image, mask } = await readSample(item, { window: opts.window });
  const size = opts.size;
  if (opts.task === 'segmenter') {
    if (!mask) throw new CxrError('E_BAD_DATASET', `labels.csv line ${item.row}: '${item.file}' has no lung mask, which segmenter training needs`);
    const small = resizeArea(mask, size, size);
    const d = small.data;
    for (let k = 0; k < d.length; k++) d[k] = d[k] >= 0.5 ? 1 : 0;
    return { image: segmenterInput(image, size), mask: small, cropped: false };
  }
  const m: MaskLike | null = mask ?? (opts.maskFor ? await opts.maskFor(item, image) : null);
  const { crop, box } = classifierCrop(image, m, size, opts.lungMargin ?? DEFAULT_LUNG_MARGIN);
  return { image: crop, mask: null, cropped: box !== null };
}

class SampleCache {
  private map = new Map<number, Prepared>();
  private bytes = 0;
  constructor(private readonly cap: number) {}

  get(k: number): Prepared | undefined {
    const v = this.map.get(k);
    if (v) {
      // Refresh recency.
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }

  set(k: number, v: Prepared): void {
    const size = (v.image.data.byteLength ?? 0) + (v.mask?.data.byteLength ?? 0);
    if (size > this.cap) return;
    this.map.set(k, v);
    this.bytes += size;
    for (const [key, old] of this.map) {
      if (this.bytes <= this.cap) break;
      this.map.delete(key);
      this.bytes -= old.image.data.byteLength + (old.mask?.data.byteLength ?? 0);
    }
  }
}

export interface DatasetBatchSource {
  readonly size: number;
  batches(epoch: number, batchSize: number): AsyncGenerator<DataBatch>;
}

export function createBatchSource(items: readonly DatasetItem[], opts: BatchOptions): DatasetBatchSource {
  if (!Number.isInteger(opts.size) || opts.size < 8) throw new CxrError('E_BAD_ARGUMENT', `batch image size must be an integer >= 8, got ${opts.size}`);
  const cache = new SampleCache(opts.cacheBytes ?? 256 * 1024 * 1024);
  const list = items.slice();
  const load = async (k: number): Promise<Prepared> => {
    const hit = cache.get(k);
    if (hit) return hit;
    const p = await prepareItem(list[k], opts);
    cache.set(k, p);
    return p;
  };
  if (opts.sample) {
    const { perEpoch, weights } = opts.sample;
    if (!Number.isInteger(perEpoch) || perEpoch < 1) throw new CxrError('E_BAD_ARGUMENT', `images per epoch must be a positive integer, got ${perEpoch}`);
    if (weights.length !== list.length || weights.some((w) => !(w >= 0)) || !weights.some((w) => w > 0)) {
      throw new CxrError('E_BAD_ARGUMENT', 'sampling weights must be one non-negative number per item, not all zero');
    }
  }
  return {
    size: opts.sample ? opts.sample.perEpoch : list.length,
    batches: (epoch: number, batchSize: number) => batchStream(list, opts, epoch, batchSize, load),
  };
}

/** Batches of one epoch over `items` (a convenience over createBatchSource). */
export function batches(items: readonly DatasetItem[], opts: BatchOptions & { batchSize: number; epoch?: number }): AsyncGenerator<DataBatch> {
  return createBatchSource(items, { ...opts, cacheBytes: opts.cacheBytes ?? 0 }).batches(opts.epoch ?? 0, opts.batchSize);
}

async function* batchStream(
  items: readonly DatasetItem[],
  opts: BatchOptions,
  epoch: number,
  batchSize: number,
  load: (k: number) => Promise<Prepared>,
): AsyncGenerator<DataBatch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new CxrError('E_BAD_ARGUMENT', `batch size must be a positive integer, got ${batchSize}`);
  const seed = opts.seed ?? 1;
  const indices = items.map((_, k) => k);
  const order = opts.sample
    ? weightedEpochOrder(opts.sample.weights, opts.sample.perEpoch, seed, epoch)
    : opts.shuffle
      ? rngFor(['batch-order', seed, epoch]).shuffle(indices)
      : indices;
  const starts: number[] = [];
  for (let s = 0; s < order.length; s += batchSize) {
    if (opts.dropLast && s + batchSize > order.length) break;
    starts.push(s);
  }
  const build = async (b: number): Promise<DataBatch> => {
    const idx = order.slice(starts[b], starts[b] + batchSize);
    const prepared = await Promise.all(idx.map(load));
    return assemble(
      idx.map((k) => items[k]),
      prepared,
      opts,
      rngFor(['augment', seed, epoch, b]),
    );
  };
  // Prepare the next batch while the consumer works on the current one.
  let next: Promise<DataBatch> | null = starts.length > 0 ? build(0) : null;
  for (let b = 0; b < starts.length; b++) {
    const current = await next!;
    next = b + 1 < starts.length ? build(b + 1) : null;
    // A failure in the prefetched batch must not surface as an unhandled rejection if the
    // consumer stops early; it is rethrown when that batch is awaited.
    next?.catch(() => undefined);
    yield current;
  }
}

/**
 * The item indices of one sampled epoch: `count` draws where item k is expected
 * count * w_k / sum(w) times. Systematic (low-variance) sampling over a shuffled order, so
 * every item appears floor or ceil of its expectation (never a lucky streak of one film),
 * then the draws are shuffled. Deterministic for (weights, count, seed, epoch).
 */
export function weightedEpochOrder(weights: readonly number[], count: number, seed: number, epoch: number): number[] {
  const rng = rngFor(['epoch-sample', seed, epoch]);
  const order = rng.shuffle(weights.map((_, k) => k));
  const total = weights.reduce((s, w) => s + w, 0);
  const step = total / count;
  const picks: number[] = [];
  let next = rng.next() * step;
  let cum = 0;
  for (const k of order) {
    cum += weights[k];
    while (next < cum && picks.length < count) {
      picks.push(k);
      next += step;
    }
  }
  // float round-off can leave the last draw just past the end
  const last = order.filter((k) => weights[k] > 0).pop()!;
  while (picks.length < count) picks.push(last);
  return rng.shuffle(picks);
}

function assemble(batchItems: DatasetItem[], prepared: Prepared[], opts: BatchOptions, rng: Rng): DataBatch {
  const size = opts.size;
  const px = size * size;
  const n = prepared.length;
  const x = new Float32Array(n * px);
  const seg = opts.task === 'segmenter';
  const y = new Float32Array(seg ? n * px : n);
  const cropped: boolean[] = [];
  prepared.forEach((p, k) => {
    let image = p.image;
    let mask = p.mask;
    if (opts.augment) {
      const params = sampleAugment(rng, opts.augment);
      ({ image, mask } = augmentPair(image, mask, params));
    }
    x.set(image.data, k * px);
    if (seg) y.set(mask!.data, k * px);
    else y[k] = batchItems[k].target;
    cropped.push(p.cropped);
  });
  return { x, y, n, ids: batchItems.map((i) => i.file), items: batchItems, ...(seg ? {} : { cropped }) };
}
