/**
 * Decides whether the pixel module describes something we decode (one grayscale frame of
 * 1/8/16/32-bit integers) and refuses the rest with the code that says why, before any
 * pixel buffer is allocated.
 */
import { CxrError } from '../errors.js';
import type { DicomMetadata } from './types.js';

export interface PixelFormat {
  rows: number;
  columns: number;
  bitsAllocated: 1 | 8 | 16 | 32;
  bitsStored: number;
  highBit: number;
  signed: boolean;
  monochrome1: boolean;
}

/** 8192 x 8192: larger than any detector, small enough to decode in memory. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

export function checkPixelFormat(meta: DicomMetadata, hasIntegerPixelData: boolean, maxPixels = DEFAULT_MAX_PIXELS): PixelFormat {
  if (!meta.hasPixelData) throw new CxrError('E_NO_PIXEL_DATA', 'the file has no Pixel Data (7FE0,0010)');
  if (!hasIntegerPixelData) throw new CxrError('E_BAD_PIXEL_FORMAT', 'float pixel data (7FE0,0008/0009) is not a radiograph format');
  const pi = meta.photometricInterpretation;
  if (meta.samplesPerPixel !== 1 || (pi !== 'MONOCHROME1' && pi !== 'MONOCHROME2'))
    throw new CxrError(
      'E_NOT_GRAYSCALE',
      `photometric interpretation ${pi || '(none)'} with ${meta.samplesPerPixel} samples per pixel: a single grayscale channel is required`,
    );
  if (meta.numberOfFrames !== 1) throw new CxrError('E_MULTI_FRAME', `the file holds ${meta.numberOfFrames} frames; a single frame is required`);
  const { rows, columns, bitsAllocated, bitsStored, highBit, pixelRepresentation } = meta;
  if (rows < 1 || columns < 1) throw new CxrError('E_BAD_PIXEL_FORMAT', `image size ${columns}x${rows} is empty or missing`);
  if (rows * columns > maxPixels) throw new CxrError('E_TOO_LARGE', `image size ${columns}x${rows} exceeds the ${maxPixels}-pixel limit`);
  if (bitsAllocated !== 1 && bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32)
    throw new CxrError('E_BAD_PIXEL_FORMAT', `BitsAllocated ${bitsAllocated} is not 1, 8, 16 or 32`);
  if (bitsStored < 1 || bitsStored > bitsAllocated)
    throw new CxrError('E_BAD_PIXEL_FORMAT', `BitsStored ${bitsStored} does not fit BitsAllocated ${bitsAllocated}`);
  if (highBit < bitsStored - 1 || highBit >= bitsAllocated)
    throw new CxrError('E_BAD_PIXEL_FORMAT', `HighBit ${highBit} is outside ${bitsStored - 1}..${bitsAllocated - 1}`);
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1)
    throw new CxrError('E_BAD_PIXEL_FORMAT', `PixelRepresentation ${pixelRepresentation} is not 0 or 1`);
  return {
    rows,
    columns,
    bitsAllocated,
    bitsStored,
    highBit,
    signed: pixelRepresentation === 1,
    monochrome1: pi === 'MONOCHROME1',
  };
}
