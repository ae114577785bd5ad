/**
 * The pixel contract: every step between a windowed film and the two networks, in the one
 * order that training (src/data/batches.ts and the segmenter masks of ml/train), evaluation
 * (ml/evaluate.ts through the engine) and the served engine (src/inference/engine.ts) all
 * call, so a model is fed at serving time exactly what it was trained on:
 *
 *   window (dicom/: the `auto` policy; PNG/JPEG taken as display values)
 *   -> segmenterInput: area-resize the whole film to the segmenter's square input
 *   -> lungMask: cut the segmenter's output at 0.5, keep the two largest components, fill holes
 *   -> classifierCrop: the lung box (with margin) cut from the full-resolution film and
 *      resized to the classifier's square input (the whole film when no lung was found),
 *      then, for a version that carries an intensity reference, quantile-matched to it
 *      (intensity-match.ts)
 *   -> ttaViews / ttaBatch: the test-time views of the crop (identity first)
 *
 * It lives in imaging/, below data/, ml/ and inference/, so each of them can call it.
 */
import { rotateScaleShift, warpAffine } from './affine.js';
import { cleanLungMask, thresholdMask, type BinaryMask } from './components.js';
import { DEFAULT_LUNG_MARGIN, lungBox, lungCrop, type LungBox, type MaskLike } from './lung-crop.js';
import { matchCrop, type IntensityMatch } from './intensity-match.js';
import { resizeArea } from './resize.js';
import { toGray, type GrayImage, type SampledImage } from './types.js';

export { DEFAULT_LUNG_MARGIN };

/** The segmenter's input: the whole windowed film area-resized to size x size. */
export function segmenterInput(image: SampledImage, size: number): GrayImage {
  return image.width === size && image.height === size ? toGray(image) : resizeArea(image, size, size);
}

/** The lung mask from the segmenter's probabilities: cut at `threshold`, two largest components, holes filled. */
export function lungMask(probabilities: ArrayLike<number>, size: number, threshold = 0.5): BinaryMask {
  return cleanLungMask(thresholdMask(probabilities, size, size, threshold));
}

/**
 * The classifier's input: the lung box of `mask` (any grid; null or empty: no box) cut from
 * the full-resolution film and resized to size x size, with the box it used; quantile-matched
 * to `intensity` when the version has a reference (null or absent: the crop as cut), by the
 * crop's own ranks or its film's.
 */
export function classifierCrop(
  image: SampledImage,
  mask: MaskLike | null,
  size: number,
  margin = DEFAULT_LUNG_MARGIN,
  intensity: IntensityMatch | null = null,
): { crop: GrayImage; box: LungBox | null } {
  const box = mask ? lungBox(mask, image.width, image.height, margin) : null;
  const crop = lungCrop(image, box, size);
  return { crop: intensity ? matchCrop(crop, image, intensity) : crop, box };
}

export interface TtaView {
  angleDeg: number;
  scale: number;
}

const ANGLES = [5, -5, 0];

/**
 * The test-time views: the identity, then rotations of +5, -5, 0 degrees cycling with
 * scales 1.05 / 0.95 alternating (tta_views in shared/bench/reference_pipeline.py).
 */
export function ttaViews(n: number): TtaView[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`TTA view count must be a positive integer, got ${n}`);
  const views: TtaView[] = [{ angleDeg: 0, scale: 1 }];
  for (let i = 1; i < n; i++) views.push({ angleDeg: ANGLES[(i - 1) % 3], scale: i % 2 ? 1.05 : 0.95 });
  return views;
}

/**
 * Writes every view of `img` into one [N,1,H,W] batch (the layout the classifier graph
 * takes), bilinear with zero fill like grid_sample's defaults.
 */
export function ttaBatch(img: GrayImage, views: TtaView[]): Float32Array {
  const size = img.width * img.height;
  const batch = new Float32Array(views.length * size);
  views.forEach((v, i) => {
    const data = v.angleDeg === 0 && v.scale === 1 ? img.data : warpAffine(img, rotateScaleShift(img.width, img.height, v.angleDeg, v.scale)).data;
    batch.set(data, i * size);
  });
  return batch;
}
