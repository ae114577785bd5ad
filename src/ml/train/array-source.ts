import { mulberry32, shuffledIndices } from './rng.js';
import type { Batch, BatchSource } from './types.js';

export interface Sample {
  id: string;
  /** size*size values in [0,1] */
  image: Float32Array;
  /** classifier: the label (0/1); segmenter: the size*size mask */
  target: number | Float32Array;
}

export type Augment = (sample: Sample, rand: () => number) => Sample;

export interface ArraySourceOptions {
  /** reorder every epoch (training) or keep the given order (evaluation) */
  shuffle?: boolean;
  seed?: number;
  augment?: Augment;
}

/**
 * A BatchSource over samples already in memory (or loaded on demand through `load`), in
 * a seeded per-epoch order with an optional per-sample augmentation.
 */
export class ArraySource implements BatchSource {
  readonly size: number;

  constructor(
    private readonly count: number,
    private readonly load: (index: number) => Promise<Sample> | Sample,
    private readonly pixels: number,
    private readonly opts: ArraySourceOptions = {},
  ) {
    this.size = count;
  }

  static of(samples: readonly Sample[], opts: ArraySourceOptions = {}): ArraySource {
    const pixels = samples.length > 0 ? samples[0].image.length : 0;
    return new ArraySource(samples.length, (i) => samples[i], pixels, opts);
  }

  async *batches(epoch: number, batchSize: number): AsyncIterable<Batch> {
    const seed = this.opts.seed ?? 0;
    const order = this.opts.shuffle ? shuffledIndices(this.count, seed, epoch) : Array.from({ length: this.count }, (_, i) => i);
    const rand = mulberry32((seed * 2654435761 + epoch * 40503 + 1) >>> 0);
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.slice(start, start + batchSize);
      const n = idx.length;
      const x = new Float32Array(n * this.pixels);
      let y: Float32Array | null = null;
      const ids: string[] = [];
      for (let k = 0; k < n; k++) {
        let s = await this.load(idx[k]);
        if (this.opts.augment) s = this.opts.augment(s, rand);
        if (s.image.length !== this.pixels) throw new RangeError(`sample ${s.id} has ${s.image.length} pixels, expected ${this.pixels}`);
        x.set(s.image, k * this.pixels);
        if (typeof s.target === 'number') {
          y ??= new Float32Array(n);
          y[k] = s.target;
        } else {
          y ??= new Float32Array(n * this.pixels);
          y.set(s.target, k * this.pixels);
        }
        ids.push(s.id);
      }
      yield { x, y: y ?? new Float32Array(0), n, ids };
    }
  }
}
