/** Stored run-length masks drawn at an image's size (the server side of src/imaging/mask-runs.ts). */
import { decodeRuns } from './mask-runs.js';
import { grayImage, type GrayImage } from './types.js';

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
