import { grayImage, type GrayImage } from './types.js';

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

/**
 * Area-average (box filter) resize for shrinking: each output pixel is the mean of the
 * source area it covers, with fractional edge weights. Shrinking a 2048-pixel radiograph
 * to 256 by bilinear sampling alone aliases ribs and noise; averaging does not.
 * Falls back to bilinear along an axis that grows.
 */
export function resizeArea(src: GrayImage, width: number, height: number): GrayImage {
  if (width > src.width || height > src.height) return resizeBilinear(src, width, height);
  const { width: sw, height: sh, data: s } = src;
  // Separable: first shrink rows (x), then columns (y).
  const xw = axisWeights(sw, width);
  const tmp = new Float32Array(width * sh);
  for (let y = 0; y < sh; y++) {
    const row = y * sw;
    for (let x = 0; x < width; x++) {
      const { start, weights, norm } = xw[x];
      let acc = 0;
      for (let k = 0; k < weights.length; k++) acc += s[row + start + k] * weights[k];
      tmp[y * width + x] = acc / norm;
    }
  }
  const yw = axisWeights(sh, height);
  const out = grayImage(width, height);
  const d = out.data;
  for (let y = 0; y < height; y++) {
    const { start, weights, norm } = yw[y];
    const o = y * width;
    for (let k = 0; k < weights.length; k++) {
      const w = weights[k] / norm;
      const r = (start + k) * width;
      for (let x = 0; x < width; x++) d[o + x] += tmp[r + x] * w;
    }
  }
  return out;
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
  const cx0 = Math.max(0, Math.floor(x0));
  const cy0 = Math.max(0, Math.floor(y0));
  const cx1 = Math.min(src.width, Math.ceil(x1));
  const cy1 = Math.min(src.height, Math.ceil(y1));
  if (cx1 <= cx0 || cy1 <= cy0) throw new RangeError(`empty crop ${x0},${y0}-${x1},${y1}`);
  const w = cx1 - cx0;
  const out = grayImage(w, cy1 - cy0);
  for (let y = cy0; y < cy1; y++) {
    out.data.set(src.data.subarray(y * src.width + cx0, y * src.width + cx1), (y - cy0) * w);
  }
  return out;
}
