/**
 * Named, fixed changes of a film that another site's acquisition makes: another look-up
 * curve, more or less contrast, a softer detector, heavier compression, a noisier exposure,
 * a rotated patient, a wider or tighter field, a low-resolution export. `robustness` scores
 * the same films once as they are and once per shift, so what each costs at the shipped
 * threshold is measured rather than guessed. Each shift is one deterministic parameter set
 * (no sampling) of the training augmentation's own operations (`augmentPair`), at or just
 * past the edge of training's ranges (DEFAULT_AUGMENT), plus a down-and-up resampling that
 * augmentation does not do.
 */
import { CxrError } from '../errors.js';
import { resizeArea, resizeBilinear } from '../imaging/resize.js';
import type { GrayImage } from '../imaging/types.js';
import { augmentPair, NO_AUGMENT, type AugmentParams } from './augment.js';

export interface AcquisitionShift {
  name: string;
  /** what at another site makes a film look like this */
  emulates: string;
  /** augmentation parameters that differ from none; blurSigma is per 1,024 pixels of width */
  params: Partial<AugmentParams>;
  /** area-downsample by this factor and resample back up (1 or absent: none) */
  downsample?: number;
}

export const ACQUISITION_SHIFTS: readonly AcquisitionShift[] = [
  { name: 'gamma-0.7', emulates: 'a lighter look-up curve (mid-tones brighter)', params: { gamma: 0.7 } },
  { name: 'gamma-1.4', emulates: 'a darker look-up curve (mid-tones darker)', params: { gamma: 1.4 } },
  { name: 'contrast-0.75', emulates: 'flatter processing (less contrast)', params: { contrast: 0.75 } },
  { name: 'contrast-1.3', emulates: 'harder processing (more contrast)', params: { contrast: 1.3 } },
  { name: 'brighter-0.08', emulates: 'a brighter rendering (+8% of the range)', params: { brightness: 0.08 } },
  { name: 'darker-0.08', emulates: 'a darker rendering (-8% of the range)', params: { brightness: -0.08 } },
  { name: 'blur-3', emulates: 'a softer detector (Gaussian blur, sigma 3 px per 1,024 px of width)', params: { blurSigma: 3 } },
  { name: 'jpeg-heavy', emulates: 'heavy JPEG compression (8x8 blocking, half way to block means)', params: { blurSigma: 1, blockMix: 0.5 } },
  { name: 'noise-0.03', emulates: 'a noisier, lower-dose exposure (Gaussian noise, sd 3% of the range)', params: { noiseStd: 0.03, noiseSeed: 20261205 } },
  { name: 'rotate-10', emulates: 'a patient rotated by 10 degrees', params: { angleDeg: 10 } },
  { name: 'zoom-0.85', emulates: 'a wider field (neck and abdomen in view, chest 15% smaller)', params: { scale: 0.85 } },
  { name: 'collimate-0.85', emulates: 'tighter collimation with the aspect changed (15% cut from the sides)', params: { cropX: 0.075, cropW: 0.85 } },
  { name: 'downsample-4', emulates: 'a low-resolution export (a quarter of the pixels each way, scaled back up)', params: {}, downsample: 4 },
];

export function shiftNames(): string[] {
  return ACQUISITION_SHIFTS.map((s) => s.name);
}

/** `all`, or a comma-separated list of shift names (each once). */
export function parseShifts(list: string): AcquisitionShift[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new CxrError('E_BAD_ARGUMENT', '--shifts names no shift');
  if (names.length === 1 && names[0] === 'all') return [...ACQUISITION_SHIFTS];
  const out: AcquisitionShift[] = [];
  for (const n of names) {
    const s = ACQUISITION_SHIFTS.find((x) => x.name === n);
    if (!s) throw new CxrError('E_BAD_ARGUMENT', `unknown shift '${n}' (use all, or some of ${shiftNames().join(', ')})`);
    if (out.includes(s)) throw new CxrError('E_BAD_ARGUMENT', `shift '${n}' is named twice`);
    out.push(s);
  }
  return out;
}

/**
 * The film as `shift` changes it, at its own size. Blur is scaled to the film's width so that
 * a 224-pixel public copy and a 2,048-pixel original are softened alike relative to the chest.
 */
export function applyShift(image: GrayImage, shift: AcquisitionShift): GrayImage {
  let img = image;
  const f = shift.downsample ?? 1;
  if (f > 1) {
    const w = Math.max(1, Math.round(image.width / f));
    const h = Math.max(1, Math.round(image.height / f));
    img = resizeBilinear(resizeArea(image, w, h), image.width, image.height);
  }
  const p: AugmentParams = { ...NO_AUGMENT, ...shift.params };
  if (p.blurSigma > 0) p.blurSigma = (p.blurSigma * image.width) / 1024;
  const changes = Object.keys(shift.params).length > 0;
  return changes ? augmentPair(img, null, p).image : img;
}
