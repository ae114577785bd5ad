import { resizeBilinear } from '../imaging/resize.js';
import { grayImage, type GrayImage } from '../imaging/types.js';

/**
 * Class activation map (Zhou et al. 2016): with a head logit = b + sum_c w_c * mean_xy f_c,
 * cam(x,y) = sum_c w_c * f_c(x,y) is each location's share of the logit (mean(cam) + b is
 * the logit). The classifier graph computes it as its `cam` output; this is the same math
 * on a [C,h,w] feature block, the definition the graph is checked against.
 */
export function classActivationMap(features: Float32Array, channels: number, h: number, w: number, weights: ArrayLike<number>): Float32Array {
  if (features.length !== channels * h * w) throw new RangeError(`features hold ${features.length} values, expected ${channels}x${h}x${w}`);
  if (weights.length !== channels) throw new RangeError(`${weights.length} weights for ${channels} channels`);
  const cam = new Float32Array(h * w);
  for (let c = 0; c < channels; c++) {
    const k = weights[c];
    const off = c * h * w;
    for (let i = 0; i < h * w; i++) cam[i] += k * features[off + i];
  }
  return cam;
}

/**
 * Scales a CAM to [0,1] for display: only evidence FOR the finding is shown (negative
 * parts clip to 0), and the strongest location is 1. A map with no positive part is all 0.
 */
export function normalizeCam(cam: ArrayLike<number>): Float32Array {
  let max = 0;
  for (let i = 0; i < cam.length; i++) if (cam[i] > max) max = cam[i];
  const out = new Float32Array(cam.length);
  if (max > 0) for (let i = 0; i < cam.length; i++) out[i] = cam[i] > 0 ? cam[i] / max : 0;
  return out;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Places a normalised CAM (side `camW` x `camH`, covering the classifier's crop) over the
 * image: bilinear upsampling to the crop box, zero outside it.
 */
export function camToImage(cam: Float32Array, camW: number, camH: number, box: Box, width: number, height: number): GrayImage {
  const out = grayImage(width, height);
  const bw = box.x1 - box.x0;
  const bh = box.y1 - box.y0;
  if (bw <= 0 || bh <= 0) return out;
  const up = resizeBilinear(grayImage(camW, camH, cam), bw, bh);
  for (let y = 0; y < bh; y++) {
    const ty = box.y0 + y;
    if (ty < 0 || ty >= height) continue;
    for (let x = 0; x < bw; x++) {
      const tx = box.x0 + x;
      if (tx >= 0 && tx < width) out.data[ty * width + tx] = up.data[y * bw + x];
    }
  }
  return out;
}
