/**
 * Stored pixel words → modality values in one pass: take the BitsStored field ending at
 * HighBit, sign-extend it when PixelRepresentation is 1, then apply the modality LUT
 * (RescaleSlope/Intercept, or a Modality LUT Sequence when the file has one).
 */
import type { LookupTable } from './types.js';
import type { Words } from './words.js';

export type ModalityTransform = { kind: 'rescale'; slope: number; intercept: number } | { kind: 'lut'; lut: LookupTable };

export interface StoredLayout {
  bitsStored: number;
  /** bit position of the lowest stored bit (HighBit - BitsStored + 1); 0 for codec output */
  shift: number;
  signed: boolean;
}

/** One stored value as the standard defines it (the loop below inlines the same arithmetic). */
export function storedValue(word: number, layout: StoredLayout): number {
  const { bitsStored, shift, signed } = layout;
  const w = word >>> shift;
  if (signed) {
    const s = 32 - bitsStored;
    return (w << s) >> s;
  }
  return bitsStored >= 32 ? w >>> 0 : w & (2 ** bitsStored - 1);
}

export function toModality(words: Words, n: number, layout: StoredLayout, transform: ModalityTransform): Float32Array {
  const out = new Float32Array(n);
  const { bitsStored, shift, signed } = layout;
  if (transform.kind === 'lut') {
    const { data, firstMapped } = transform.lut;
    const last = data.length - 1;
    for (let i = 0; i < n; i++) {
      const idx = storedValue(words[i], layout) - firstMapped;
      out[i] = data[idx <= 0 ? 0 : idx >= last ? last : idx];
    }
    return out;
  }
  const { slope, intercept } = transform;
  if (signed) {
    const s = 32 - bitsStored;
    for (let i = 0; i < n; i++) out[i] = (((words[i] >>> shift) << s) >> s) * slope + intercept;
  } else if (bitsStored >= 32) {
    for (let i = 0; i < n; i++) out[i] = (words[i] >>> shift) * slope + intercept;
  } else {
    const mask = 2 ** bitsStored - 1;
    for (let i = 0; i < n; i++) out[i] = ((words[i] >>> shift) & mask) * slope + intercept;
  }
  return out;
}
