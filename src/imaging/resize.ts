import { grayImage, isIndexed, toGray, type GrayImage, type SampledImage } from './types.js';

/**
 * Bilinear resize with half-pixel centres (align_corners=false), the convention of
 * PyTorch's F.interpolate and tf.image.resizeBilinear(halfPixelCenters): models trained
 * on one and served on the other see the same pixels.
 */
export function resizeBilinear(src: GrayImage, width: number, height: number): GrayImage {
  const { width: sw, height: sh, data: s } = src;
  const out = grayImage(width, height);
  const d = out.data;
  const sx = sw / width;
  const sy = sh / height;
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), sw - 1);
    const x0 = Math.floor(fx);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, sw - 1);
    fxs[x] = fx - x0;
  }
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = fy - y0;
    const r0 = y0 * sw;
    const r1 = y1 * sw;
    const o = y * width;
    for (let x = 0; x < width; x++) {
      const a = s[r0 + x0s[x]];
      const b = s[r0 + x1s[x]];
      const c = s[r1 + x0s[x]];
      const e = s[r1 + x1s[x]];
      const wx = fxs[x];
      const top = a + (b - a) * wx;
      const bottom = c + (e - c) * wx;
      d[o + x] = top + (bottom - top) * wy;
    }
  }
  return out;
}

/** Integer pixel rectangle [x0, x1) x [y0, y1) inside an image. */
export interface PixelRegion {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A rectangle rounded outward to whole pixels and clamped to a width x height image; empty is a RangeError. */
export function clampRegion(r: PixelRegion, width: number, height: number): PixelRegion {
  const out = {
    x0: Math.max(0, Math.floor(r.x0)),
    y0: Math.max(0, Math.floor(r.y0)),
    x1: Math.min(width, Math.ceil(r.x1)),
    y1: Math.min(height, Math.ceil(r.y1)),
  };
  if (out.x1 <= out.x0 || out.y1 <= out.y0) throw new RangeError(`empty crop ${r.x0},${r.y0}-${r.x1},${r.y1}`);
  return out;
}

/**
 * Area-average (box filter) resize for shrinking: each output pixel is the mean of the
 * source area it covers, with fractional edge weights. Shrinking a 2048-pixel radiograph
 * to 256 by bilinear sampling alone aliases ribs and noise; averaging does not.
 * Falls back to bilinear along an axis that grows.
 *
 * With `region` only that rectangle of the source is resized, read in place: the lung crop
 * of a 2048-pixel film costs no copy of the crop.
 */
export function resizeArea(src: SampledImage, width: number, height: number, region?: PixelRegion): GrayImage {
  const r = region ?? { x0: 0, y0: 0, x1: src.width, y1: src.height };
  if (!(r.x0 >= 0 && r.y0 >= 0 && r.x1 <= src.width && r.y1 <= src.height && r.x1 > r.x0 && r.y1 > r.y0)) {
    throw new RangeError(`region ${r.x0},${r.y0}-${r.x1},${r.y1} is not inside the ${src.width}x${src.height} image`);
  }
  const rw = r.x1 - r.x0;
  const rh = r.y1 - r.y0;
  if (width > rw || height > rh) {
    const gray = toGray(src);
    return resizeBilinear(region ? crop(gray, r.x0, r.y0, r.x1, r.y1) : gray, width, height);
  }
  // Separable, rows first: each output row is the weighted sum of the source rows it covers
  // (contiguous reads, every source pixel touched about once), then that one row is shrunk
  // along x. A single row of scratch instead of a (width x source height) intermediate.
  const xw = axisWeights(rw, width);
  const yw = axisWeights(rh, height);
  const row = new Float64Array(rw);
  const out = grayImage(width, height);
  const d = out.data;
  for (let y = 0; y < height; y++) {
    const { start, weights, norm } = yw[y];
    row.fill(0);
    const first = (r.y0 + start) * src.width + r.x0;
    if (isIndexed(src)) {
      if (src.codes instanceof Uint16Array) addRowsIndexed16(row, src.codes, src.values, first, src.width, weights, norm);
      else addRowsIndexed8(row, src.codes, src.values, first, src.width, weights, norm);
    } else {
      addRows(row, src.data, first, src.width, weights, norm);
    }
    const o = y * width;
    for (let x = 0; x < width; x++) {
      const a = xw[x];
      let acc = 0;
      for (let k = 0; k < a.weights.length; k++) acc += row[a.start + k] * a.weights[k];
      d[o + x] = acc / a.norm;
    }
  }
  return out;
}

// row[x] += sum_k s[first + k*stride + x] * weights[k] / norm, four source rows per pass
// over the scratch row (a quarter of its loads and stores). One copy per pixel type, so each
// loop stays monomorphic; the indexed ones look every code up as they read it.
function addRows(row: Float64Array, s: Float32Array, first: number, stride: number, weights: Float64Array, norm: number): void {
  const n = row.length;
  let k = 0;
  for (; k + 4 <= weights.length; k += 4) {
    const w0 = weights[k] / norm;
    const w1 = weights[k + 1] / norm;
    const w2 = weights[k + 2] / norm;
    const w3 = weights[k + 3] / norm;
    const b0 = first + k * stride;
    const b1 = b0 + stride;
    const b2 = b1 + stride;
    const b3 = b2 + stride;
    for (let x = 0; x < n; x++) row[x] += s[b0 + x] * w0 + s[b1 + x] * w1 + s[b2 + x] * w2 + s[b3 + x] * w3;
  }
  for (; k < weights.length; k++) {
    const w = weights[k] / norm;
    const b = first + k * stride;
    for (let x = 0; x < n; x++) row[x] += s[b + x] * w;
  }
}

function addRowsIndexed16(row: Float64Array, c: Uint16Array, v: Float32Array, first: number, stride: number, weights: Float64Array, norm: number): void {
  const n = row.length;
  let k = 0;
  for (; k + 4 <= weights.length; k += 4) {
    const w0 = weights[k] / norm;
    const w1 = weights[k + 1] / norm;
    const w2 = weights[k + 2] / norm;
    const w3 = weights[k + 3] / norm;
    const b0 = first + k * stride;
    const b1 = b0 + stride;
    const b2 = b1 + stride;
    const b3 = b2 + stride;
    for (let x = 0; x < n; x++) row[x] += v[c[b0 + x]] * w0 + v[c[b1 + x]] * w1 + v[c[b2 + x]] * w2 + v[c[b3 + x]] * w3;
  }
  for (; k < weights.length; k++) {
    const w = weights[k] / norm;
    const b = first + k * stride;
    for (let x = 0; x < n; x++) row[x] += v[c[b + x]] * w;
  }
}

function addRowsIndexed8(row: Float64Array, c: Uint8Array, v: Float32Array, first: number, stride: number, weights: Float64Array, norm: number): void {
  const n = row.length;
  for (let k = 0; k < weights.length; k++) {
    const w = weights[k] / norm;
    const b = first + k * stride;
    for (let x = 0; x < n; x++) row[x] += v[c[b + x]] * w;
  }
}

interface AxisWeights {
  start: number;
  weights: Float64Array;
  norm: number;
}

function axisWeights(srcLen: number, dstLen: number): AxisWeights[] {
  const scale = srcLen / dstLen;
  const result: AxisWeights[] = [];
  for (let i = 0; i < dstLen; i++) {
    const lo = i * scale;
    const hi = Math.min((i + 1) * scale, srcLen);
    const start = Math.floor(lo);
    const end = Math.ceil(hi);
    const weights = new Float64Array(end - start);
    let norm = 0;
    for (let k = start; k < end; k++) {
      const w = Math.min(hi, k + 1) - Math.max(lo, k);
      weights[k - start] = w;
      norm += w;
    }
    result.push({ start, weights, norm });
  }
  return result;
}

/** Copies the rectangle [x0,x1) x [y0,y1), clamped to the image. */
export function crop(src: GrayImage, x0: number, y0: number, x1: number, y1: number): GrayImage {
  const { x0: cx0, y0: cy0, x1: cx1, y1: cy1 } = clampRegion({ x0, y0, x1, y1 }, src.width, src.height);
  const w = cx1 - cx0;
  const out = grayImage(w, cy1 - cy0);
  for (let y = cy0; y < cy1; y++) {
    out.data.set(src.data.subarray(y * src.width + cx0, y * src.width + cx1), (y - cy0) * w);
  }
  return out;
}
