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
