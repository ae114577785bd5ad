import { lookupAll } from '../dicom/word-table.js';

/** A single-channel float image, row-major; values are usually in [0,1]. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array;
}

export function grayImage(width: number, height: number, data?: Float32Array): GrayImage {
  if (data && data.length !== width * height) {
    throw new RangeError(`image data has ${data.length} values, expected ${width}x${height}`);
  }
  return { width, height, data: data ?? new Float32Array(width * height) };
}

/**
 * A gray image kept as small integer codes and the value of each code (pixel i is
 * values[codes[i]]): a DICOM frame of 8- or 16-bit words with its window folded into the
 * table. Resizing and cropping read it in place; toGray() makes the float copy.
 */
export interface IndexedImage {
  width: number;
  height: number;
  codes: Uint8Array | Uint16Array;
  values: Float32Array;
}

export type SampledImage = GrayImage | IndexedImage;

export function isIndexed(img: SampledImage): img is IndexedImage {
  return (img as IndexedImage).codes !== undefined;
}

/** The float image; an indexed one is looked up once into a new array. */
export function toGray(img: SampledImage): GrayImage {
  if (!isIndexed(img)) return img;
  return { width: img.width, height: img.height, data: lookupAll(img.codes, img.width * img.height, img.values) };
}
