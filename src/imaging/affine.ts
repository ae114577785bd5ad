import { grayImage, type GrayImage } from './types.js';

/**
 * A 2x3 affine matrix [a, b, c, d, e, f] mapping an OUTPUT pixel centre (x, y) to the
 * INPUT position (a*x + b*y + c, d*x + e*y + f). Mapping backwards means every output
 * pixel gets exactly one sample, with no holes.
 */
export type Affine = [number, number, number, number, number, number];

export const IDENTITY: Affine = [1, 0, 0, 0, 1, 0];

/**
 * Inverse map for "rotate by angleDeg (counter-clockwise on screen), scale by `scale`, then
 * shift by (tx, ty) pixels" about the image centre, for an output of the same size.
 */
export function rotateScaleShift(width: number, height: number, angleDeg: number, scale: number, tx = 0, ty = 0): Affine {
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const t = (angleDeg * Math.PI) / 180;
  // Forward: p' = S R (p - c) + c + t, with screen y pointing down, so a positive angle
  // turns the image counter-clockwise as seen. Inverse: p = R^-1 S^-1 (p' - c - t) + c.
  const cos = Math.cos(t) / scale;
  const sin = Math.sin(t) / scale;
  const a = cos;
  const b = -sin;
  const d = sin;
  const e = cos;
  const ox = cx + tx;
  const oy = cy + ty;
  return [a, b, cx - a * ox - b * oy, d, e, cy - d * ox - e * oy];
}

export interface WarpOptions {
  width?: number;
  height?: number;
  /** value for samples that fall outside the source */
  fill?: number;
  interpolation?: 'bilinear' | 'nearest';
}

export function warpAffine(src: GrayImage, m: Affine, opts: WarpOptions = {}): GrayImage {
  const width = opts.width ?? src.width;
  const height = opts.height ?? src.height;
  const fill = opts.fill ?? 0;
  const nearest = opts.interpolation === 'nearest';
  const { width: sw, height: sh, data: s } = src;
  const out = grayImage(width, height);
  const d = out.data;
  const [a, b, c, dd, e, f] = m;
  for (let y = 0; y < height; y++) {
    let sx = b * y + c;
    let sy = e * y + f;
    for (let x = 0; x < width; x++, sx += a, sy += dd) {
      let v: number;
      if (nearest) {
        const ix = Math.round(sx);
        const iy = Math.round(sy);
        v = ix >= 0 && iy >= 0 && ix < sw && iy < sh ? s[iy * sw + ix] : fill;
      } else {
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        const p00 = sample(s, sw, sh, x0, y0, fill);
        const p10 = sample(s, sw, sh, x0 + 1, y0, fill);
        const p01 = sample(s, sw, sh, x0, y0 + 1, fill);
        const p11 = sample(s, sw, sh, x0 + 1, y0 + 1, fill);
        const top = p00 + (p10 - p00) * fx;
        const bottom = p01 + (p11 - p01) * fx;
        v = top + (bottom - top) * fy;
      }
      d[y * width + x] = v;
    }
  }
  return out;
}

function sample(s: Float32Array, w: number, h: number, x: number, y: number, fill: number): number {
  return x >= 0 && y >= 0 && x < w && y < h ? s[y * w + x] : fill;
}
