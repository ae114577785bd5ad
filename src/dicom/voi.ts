/**
 * VOI functions of PS3.3 C.11.2.1.2 and C.11.2.1.3, mapping a modality value to [0,1].
 * `linear` is the DICOM LINEAR window DCMTK and every viewer apply; its off-by-half terms
 * make W=2^n, C=2^(n-1) map 0..2^n-1 exactly onto the output range.
 */
import type { LookupTable } from './types.js';

export function linear(x: number, center: number, width: number): number {
  const c = center - 0.5;
  const w = width - 1;
  if (x <= c - w / 2) return 0;
  if (x > c + w / 2) return 1;
  return (x - c) / w + 0.5;
}

export function linearExact(x: number, center: number, width: number): number {
  if (x <= center - width / 2) return 0;
  if (x > center + width / 2) return 1;
  return (x - center) / width + 0.5;
}

export function sigmoid(x: number, center: number, width: number): number {
  return 1 / (1 + Math.exp((-4 * (x - center)) / width));
}

/** A VOI LUT's output scaled to [0,1] by the entry range its descriptor declares. */
export function voiLut(x: number, lut: LookupTable): number {
  const i = Math.round(x) - lut.firstMapped;
  const n = lut.data.length;
  return lut.data[i <= 0 ? 0 : i >= n ? n - 1 : i] / (2 ** lut.bits - 1);
}

export type VoiMapping = { kind: 'linear' | 'linear-exact' | 'sigmoid'; center: number; width: number } | { kind: 'lut'; lut: LookupTable };

/**
 * Applies a VOI mapping to every value, inverting for MONOCHROME1 in the same pass (the
 * inversion comes after windowing, as a presentation LUT would do it).
 */
export function mapValues(values: Float32Array, mapping: VoiMapping, invert: boolean): Float32Array {
  const n = values.length;
  const out = new Float32Array(n);
  const lo = invert ? 1 : 0;
  const hi = invert ? 0 : 1;
  const sign = invert ? -1 : 1;
  switch (mapping.kind) {
    case 'linear': {
      const c = mapping.center - 0.5;
      const w = mapping.width - 1;
      const left = c - w / 2;
      const right = c + w / 2;
      if (w <= 0) {
        for (let i = 0; i < n; i++) out[i] = values[i] <= left ? lo : hi;
        return out;
      }
      for (let i = 0; i < n; i++) {
        const x = values[i];
        out[i] = x <= left ? lo : x > right ? hi : lo + sign * ((x - c) / w + 0.5);
      }
      return out;
    }
    case 'linear-exact': {
      const { center, width } = mapping;
      for (let i = 0; i < n; i++) out[i] = lo + sign * linearExact(values[i], center, width);
      return out;
    }
    case 'sigmoid': {
      const { center, width } = mapping;
      for (let i = 0; i < n; i++) out[i] = lo + sign * sigmoid(values[i], center, width);
      return out;
    }
    case 'lut': {
      const lut = mapping.lut;
      for (let i = 0; i < n; i++) out[i] = lo + sign * voiLut(values[i], lut);
      return out;
    }
  }
}
