/**
 * A binary mask as run lengths, small enough to store with a prediction (a 256x256 lung mask is a
 * few hundred numbers): runs alternate 0,1,0,... in row-major order, starting with a run of 0s
 * (which may be empty). The web viewer draws the stored mask from these runs.
 */
import { grayImage, type GrayImage } from './types.js';

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

/** A stored run-length mask scaled (nearest) to an image's size, as 0/1 floats. */
export function runsToImage(runs: readonly number[], maskWidth: number, maskHeight: number, width: number, height: number): GrayImage {
  const m = decodeRuns(runs, maskWidth * maskHeight);
  const out = grayImage(width, height);
  const xs = new Int32Array(width);
  for (let x = 0; x < width; x++) xs[x] = Math.min(maskWidth - 1, Math.floor(((x + 0.5) * maskWidth) / width));
  for (let y = 0; y < height; y++) {
    const row = Math.min(maskHeight - 1, Math.floor(((y + 0.5) * maskHeight) / height)) * maskWidth;
    for (let x = 0; x < width; x++) out.data[y * width + x] = m[row + xs[x]];
  }
  return out;
}
