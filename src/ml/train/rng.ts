import { mulberry32 } from '../../data/rng.js';

export { mulberry32 };

/** Fisher-Yates shuffle of 0..n-1, deterministic for (seed, epoch). */
export function shuffledIndices(n: number, seed: number, epoch: number): number[] {
  const rand = mulberry32((seed * 1000003 + epoch * 7919 + 17) >>> 0);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}
