import { resizeArea, resizeBilinear } from './resize.js';
import { grayImage, type GrayImage } from './types.js';

/**
 * Approximate Gaussian blur: three box passes per axis (the central limit makes a box^3 a
 * close Gaussian), each O(1) per pixel whatever the radius. Edges clamp. Works in place on
 * a copy; the input is not modified.
 */
export function gaussianBlur(src: GrayImage, sigma: number): GrayImage {
  const out = grayImage(src.width, src.height, Float32Array.from(src.data));
  gaussianBlurInPlace(out.data, out.width, out.height, sigma);
  return out;
}

/** Box radii for three passes whose combined variance matches sigma^2 (Kovesi's method). */
export function boxRadiiForSigma(sigma: number): [number, number, number] {
  if (!(sigma > 0)) return [0, 0, 0];
  const n = 3;
  const wIdeal = Math.sqrt((12 * sigma * sigma) / n + 1);
  let wl = Math.floor(wIdeal);
  if (wl % 2 === 0) wl--;
  const wu = wl + 2;
  const mIdeal = (12 * sigma * sigma - n * wl * wl - 4 * n * wl - 3 * n) / (-4 * wl - 4);
  const m = Math.round(mIdeal);
  const r = (i: number): number => ((i < m ? wl : wu) - 1) / 2;
  return [r(0), r(1), r(2)];
}

export function gaussianBlurInPlace(data: Float32Array, width: number, height: number, sigma: number): void {
  const radii = boxRadiiForSigma(sigma);
  if (radii.every((r) => r === 0)) return;
  const line = new Float32Array(width);
  const tmp = new Float32Array(width);
  const rows = new Float32Array(data.length);
  const acc = new Float64Array(width);
  for (const r of radii) {
    if (r === 0) continue;
    for (let y = 0; y < height; y++) {
      const o = y * width;
      line.set(data.subarray(o, o + width));
      boxLine(line, tmp, width, r);
      data.set(tmp, o);
    }
    boxColumns(data, rows, width, height, r, acc);
  }
}

/** Running-sum box filter of radius r over src[0..n), edges clamped. */
function boxLine(src: Float32Array, dst: Float32Array, n: number, r: number): void {
  const inv = 1 / (2 * r + 1);
  const last = n - 1;
  let acc = 0;
  for (let k = -r; k <= r; k++) acc += src[k < 0 ? 0 : k > last ? last : k];
  // Split into the stretch where both ends of the window are inside the line and the
  // clamped stretches at either end, keeping the clamps out of the hot loop.
  const a = Math.min(n, r + 1);
  const b = Math.max(a, n - r - 1);
  let i = 0;
  for (; i < a; i++) {
    dst[i] = acc * inv;
    acc += src[Math.min(last, i + r + 1)] - src[Math.max(0, i - r)];
  }
  for (; i < b; i++) {
    dst[i] = acc * inv;
    acc += src[i + r + 1] - src[i - r];
  }
  for (; i < n; i++) {
    dst[i] = acc * inv;
    acc += src[Math.min(last, i + r + 1)] - src[Math.max(0, i - r)];
  }
}

/**
 * The same filter down the columns, sweeping whole rows at a time (a running sum per
 * column) so memory is read in order; the result is written back into `data`.
 */
function boxColumns(data: Float32Array, tmp: Float32Array, width: number, height: number, r: number, acc: Float64Array): void {
  const inv = 1 / (2 * r + 1);
  const last = height - 1;
  acc.fill(0);
  for (let k = -r; k <= r; k++) {
    const o = Math.min(last, Math.max(0, k)) * width;
    for (let x = 0; x < width; x++) acc[x] += data[o + x];
  }
  for (let y = 0; y < height; y++) {
    const o = y * width;
    const add = Math.min(last, y + r + 1) * width;
    const sub = Math.max(0, y - r) * width;
    for (let x = 0; x < width; x++) {
      tmp[o + x] = acc[x] * inv;
      acc[x] += data[add + x] - data[sub + x];
    }
  }
  data.set(tmp);
}

/**
 * Gaussian blur for wide kernels on smooth fields: shrink by area averaging, blur there,
 * grow back bilinearly. Much cheaper than a full-resolution blur once sigma is several
 * pixels, and indistinguishable for the slowly varying fields it is used on (soft-tissue
 * depth, lung depth, background trends); not for images whose fine detail matters.
 */
export function smoothBlurInPlace(data: Float32Array, width: number, height: number, sigma: number): void {
  const f = Math.min(8, Math.floor(sigma / 2));
  if (f < 2) {
    gaussianBlurInPlace(data, width, height, sigma);
    return;
  }
  const w = Math.max(1, Math.ceil(width / f));
  const h = Math.max(1, Math.ceil(height / f));
  const small = resizeArea(grayImage(width, height, data), w, h);
  // The area shrink already averaged over f pixels (variance f^2/12 in full-size pixels).
  const rest = Math.sqrt(Math.max(0, sigma * sigma - (f * f) / 12)) / f;
  gaussianBlurInPlace(small.data, w, h, rest);
  data.set(resizeBilinear(small, width, height).data);
}
