import { rotateScaleShift, warpAffine } from '../imaging/affine.js';
import type { GrayImage } from '../imaging/types.js';

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
