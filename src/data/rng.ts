import { createHash } from 'node:crypto';

/**
 * A seeded pseudo-random generator (sfc32). Everything random in the data layer draws from
 * one of these, never from Math.random, so a seed reproduces a dataset byte for byte.
 * Streams are derived from named seed parts (`rngFor([seed, 'study', 7])`), which lets any
 * single study be regenerated without replaying the ones before it.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(a: number, b: number, c: number, d: number) {
    this.a = a >>> 0;
    this.b = b >>> 0;
    this.c = c >>> 0;
    this.d = d >>> 0 || 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** uniform in [0,1) */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** integer in [lo, hi] inclusive */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  normal(mean = 0, sd = 1): number {
    // Box-Muller; u1 kept away from 0 so log stays finite.
    const u1 = (this.nextU32() + 1) / 4294967297;
    const u2 = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** normal clipped to [lo, hi] by resampling a few times, then clamping */
  truncNormal(mean: number, sd: number, lo: number, hi: number): number {
    for (let i = 0; i < 8; i++) {
      const v = this.normal(mean, sd);
      if (v >= lo && v <= hi) return v;
    }
    return Math.min(hi, Math.max(lo, mean));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** picks a key with probability proportional to its weight */
  weighted<K extends string>(weights: Record<K, number>): K {
    const keys = Object.keys(weights) as K[];
    let total = 0;
    for (const k of keys) total += weights[k];
    let r = this.next() * total;
    for (const k of keys) {
      r -= weights[k];
      if (r < 0) return k;
    }
    return keys[keys.length - 1];
  }

  /** Fisher-Yates shuffle of a copy */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }

  /** an independent child stream, e.g. one per anatomical part, so adding draws to one part does not shift the others */
  fork(name: string | number): Rng {
    return new Rng(this.nextU32() ^ hashString(String(name)), this.nextU32(), this.nextU32(), this.nextU32());
  }
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** A generator seeded from a list of parts (SHA-256 of their JSON), e.g. [seed, 'patient', 12]. */
export function rngFor(parts: readonly (string | number)[]): Rng {
  const h = createHash('sha256')
    .update(JSON.stringify(parts.map(String)))
    .digest();
  return new Rng(h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12));
}

/**
 * Fills `out` with standard normal deviates fast: per-pixel detector noise on a 3000x3000
 * image needs 9 million draws, and Box-Muller per pixel costs more than the rest of the
 * render. A table of 4096 exact quantiles indexed by 12 random bits, plus the sum of two
 * such draws, is smooth enough for noise that is never inspected one pixel at a time.
 */
export function fillNormal(rng: Rng, out: Float32Array): void {
  const table = normalTable();
  for (let i = 0; i < out.length; i++) {
    const r = rng.nextU32();
    out[i] = (table[r & 4095] + table[(r >>> 12) & 4095]) * Math.SQRT1_2;
  }
}

let cachedTable: Float32Array | null = null;
function normalTable(): Float32Array {
  if (cachedTable) return cachedTable;
  const t = new Float32Array(4096);
  for (let i = 0; i < 4096; i++) t[i] = inverseNormal((i + 0.5) / 4096);
  cachedTable = t;
  return t;
}

/** Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9). */
export function inverseNormal(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const TILE = 1 << 18; // 262144 normal deviates, 1 MiB
let tile: Float32Array | null = null;

/**
 * Adds `sigma(v) * N(0,1)` noise to every value, for full-resolution detector noise on images
 * of up to 9 million pixels. Drawing a fresh normal deviate per pixel dominated the time of
 * large phantoms, so deviates come from one fixed table of 262144 exact draws, read from a
 * random start (from `rng`) for every row: rows never line up, and the noise is a
 * deterministic function of the seed. `gain(v)` scales sigma by the local value.
 */
export function addTableNoise(values: Float32Array, width: number, rng: Rng, sigma: number, gain: (v: number) => number): void {
  if (!tile) {
    tile = new Float32Array(TILE);
    fillNormal(new Rng(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), tile);
  }
  const t = tile;
  const height = Math.floor(values.length / width);
  for (let y = 0; y < height; y++) {
    let p = rng.nextU32() % (TILE - width);
    const o = y * width;
    for (let x = 0; x < width; x++, p++) {
      const v = values[o + x];
      values[o + x] = v + t[p] * sigma * gain(v);
    }
  }
}

/** mulberry32: a small, fast, seedable PRNG for shuffles, augmentation draws and test noise. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
