import type { GrayImage } from './types.js';

/**
 * The boundary of a binary mask: pixels inside (value >= threshold) with at least one
 * 4-neighbour outside or on the image border. 1 on the outline, 0 elsewhere.
 */
export function maskOutline(mask: GrayImage, threshold = 0.5): Uint8Array {
  const { width: w, height: h, data } = mask;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const k = y * w + x;
      if (data[k] < threshold) continue;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) out[k] = 1;
      else if (data[k - 1] < threshold || data[k + 1] < threshold || data[k - w] < threshold || data[k + w] < threshold) out[k] = 1;
    }
  }
  return out;
}
