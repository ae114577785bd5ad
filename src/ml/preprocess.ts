import { cleanLungMask, thresholdMask, type BinaryMask } from '../imaging/components.js';
import { lungBox, lungCrop } from '../imaging/lung-crop.js';
import { resizeArea } from '../imaging/resize.js';
import { toGray, type GrayImage, type SampledImage } from '../imaging/types.js';

/**
 * The pixel steps between a windowed image and each network, in one place so that training,
 * `evaluate` and the ONNX pipeline (src/inference/engine.ts) feed the networks the same way:
 * area-resize to the segmenter's square input; threshold its output at 0.5 and keep the two
 * largest components with holes filled; crop the lung box (with lung-crop's margin) from the
 * full-resolution image and resize it to the classifier's input.
 */
export function segmenterInput(image: SampledImage, size: number): GrayImage {
  return image.width === size && image.height === size ? toGray(image) : resizeArea(image, size, size);
}

export function cleanMask(probabilities: ArrayLike<number>, size: number, threshold = 0.5): BinaryMask {
  return cleanLungMask(thresholdMask(probabilities, size, size, threshold));
}

/** A ground-truth mask (any size, values in [0,1]) on the segmenter's grid, binarised at 0.5. */
export function maskTarget(mask: GrayImage, size: number): Float32Array {
  const small = mask.width === size && mask.height === size ? mask : resizeArea(mask, size, size);
  const out = new Float32Array(size * size);
  for (let i = 0; i < out.length; i++) out[i] = small.data[i] >= 0.5 ? 1 : 0;
  return out;
}

/** The classifier's input: the lung box of `mask` cut from the full image, resized to size x size. */
export function classifierInput(image: GrayImage, mask: BinaryMask, size: number, margin?: number): GrayImage {
  return lungCrop(image, lungBox(mask, image.width, image.height, margin), size);
}

export function binaryFromGray(mask: GrayImage): BinaryMask {
  const data = new Uint8Array(mask.width * mask.height);
  for (let i = 0; i < data.length; i++) data[i] = mask.data[i] >= 0.5 ? 1 : 0;
  return { width: mask.width, height: mask.height, data };
}
