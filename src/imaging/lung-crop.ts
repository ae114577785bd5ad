/**
 * The classifier's view of a chest film: the bounding box of the lung mask, grown by a
 * margin, cut from the full-resolution image and resized to the classifier's square input.
 * Training (src/data batches, src/ml) and serving (src/inference) both crop through these two
 * functions, so the network sees the same framing in both.
 */
import { clampRegion, resizeArea } from './resize.js';
import type { GrayImage, SampledImage } from './types.js';

/** Pixel rectangle [x0, x1) x [y0, y1) in the image's coordinates. */
export interface LungBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Margin added on every side, as a fraction of the mask box's width (left/right) or height (top/bottom). */
export const DEFAULT_LUNG_MARGIN = 0.05;

/** Any mask raster: a pixel is inside when its value is >= 0.5 (so 0/1, 0/255 and probabilities all work). */
export interface MaskLike {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

/**
 * Bounding box of the mask's inside pixels, grown by `margin` x its size per side, mapped to
 * an image of `width` x `height` (the mask may be on a smaller grid, e.g. the segmenter's
 * 256x256 output), outward-rounded and clamped to the image. Null when the mask is empty.
 */
export function lungBox(mask: MaskLike, width: number, height: number, margin = DEFAULT_LUNG_MARGIN): LungBox | null {
  const { width: mw, height: mh, data } = mask;
  let mx0 = mw;
  let my0 = mh;
  let mx1 = -1;
  let my1 = -1;
  for (let y = 0; y < mh; y++) {
    const row = y * mw;
    for (let x = 0; x < mw; x++) {
      if (data[row + x] >= 0.5) {
        if (x < mx0) mx0 = x;
        if (x > mx1) mx1 = x;
        if (y < my0) my0 = y;
        if (y > my1) my1 = y;
      }
    }
  }
  if (mx1 < 0) return null;
  const bw = mx1 + 1 - mx0;
  const bh = my1 + 1 - my0;
  const sx = width / mw;
  const sy = height / mh;
  // Snap products that are integers up to float noise (e.g. 0.1*3) before rounding outward.
  const snap = (v: number): number => (Math.abs(v - Math.round(v)) < 1e-9 ? Math.round(v) : v);
  return {
    x0: Math.max(0, Math.floor(snap((mx0 - margin * bw) * sx))),
    y0: Math.max(0, Math.floor(snap((my0 - margin * bh) * sy))),
    x1: Math.min(width, Math.ceil(snap((mx1 + 1 + margin * bw) * sx))),
    y1: Math.min(height, Math.ceil(snap((my1 + 1 + margin * bh) * sy))),
  };
}

/**
 * The box cut from the image (the whole image when the box is null, e.g. no lungs found)
 * and resized to size x size: area-averaged when shrinking, bilinear when growing. The
 * aspect ratio is not kept; the classifier is trained on the same squeeze.
 */
export function lungCrop(image: SampledImage, box: LungBox | null, size: number): GrayImage {
  // the box is read in place, clamped and rounded outward as crop() does
  return box ? resizeArea(image, size, size, clampRegion(box, image.width, image.height)) : resizeArea(image, size, size);
}
