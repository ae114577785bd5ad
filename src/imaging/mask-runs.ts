/**
 * A binary mask as run lengths, small enough to store with a prediction (a 256x256 lung mask is a
 * few hundred numbers): runs alternate 0,1,0,... in row-major order, starting with a run of 0s
 * (which may be empty). The web viewer draws the stored mask from these runs.
 */
export function encodeRuns(mask: ArrayLike<number>): number[] {
  const runs: number[] = [];
  let v = 0;
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    const b = mask[i] ? 1 : 0;
    if (b === v) {
      n++;
    } else {
      runs.push(n);
      v = b;
      n = 1;
    }
  }
  runs.push(n);
  return runs;
}

export function decodeRuns(runs: readonly number[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let o = 0;
  let v = 0;
  for (const r of runs) {
    if (v) out.fill(1, o, Math.min(o + r, length));
    o += r;
    v ^= 1;
  }
  return out;
}
