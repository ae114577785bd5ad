/**
 * Which synthetic patient a study index belongs to. Patients hold 1-4 studies each (as real
 * archives do: follow-ups), decided by a cheap integer hash of (seed, patient) so any index
 * maps to its patient without generating the studies before it.
 */
export interface StudySlot {
  patient: number;
  /** 0 for the patient's first study */
  visit: number;
  visits: number;
}

/** 32-bit integer hash (Wang/Jenkins mix) of two integers. */
function mix(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export function visitsOf(seed: number, patient: number): number {
  const r = mix(seed | 0, patient) / 4294967296;
  return r < 0.55 ? 1 : r < 0.8 ? 2 : r < 0.92 ? 3 : 4;
}

/** Walks patients from the start; a PatientMap caches the walk for sequential use. */
export class PatientMap {
  private readonly seed: number;
  private starts: number[] = [0];

  constructor(seed: number) {
    this.seed = seed;
  }

  slot(index: number): StudySlot {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`study index must be a non-negative integer, got ${index}`);
    while (this.starts[this.starts.length - 1] <= index) {
      const p = this.starts.length - 1;
      this.starts.push(this.starts[p] + visitsOf(this.seed, p));
    }
    // Binary search for the patient whose range holds index.
    let lo = 0;
    let hi = this.starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    const visits = this.starts[lo + 1] - this.starts[lo];
    return { patient: lo, visit: index - this.starts[lo], visits };
  }
}
