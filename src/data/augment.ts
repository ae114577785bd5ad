/**
 * Training augmentation applied identically to an image and its lung mask: rotation, zoom,
 * shift and an optional horizontal flip (off by default: the heart is on the patient's left,
 * and a flipped chest is not a chest film), then brightness, contrast, gamma and noise on the
 * image only. `augmentPair` is a pure function of (image, mask, params); `sampleAugment`
 * draws params from a seeded source.
 */
import { warpAffine, rotateScaleShift, type Affine } from '../imaging/affine.js';
import { grayImage, type GrayImage } from '../imaging/types.js';
import { fillNormal, Rng } from './rng.js';

export interface AugmentParams {
  /** degrees, counter-clockwise on screen */
  angleDeg: number;
  /** >1 zooms in */
  scale: number;
  /** shift as a fraction of the width / height */
  shiftX: number;
  shiftY: number;
  flip: boolean;
  /** added after contrast, in [0,1] units */
  brightness: number;
  /** multiplies the distance from 0.5 */
  contrast: number;
  /** y = x^gamma before contrast */
  gamma: number;
  /** standard deviation of added Gaussian noise */
  noiseStd: number;
  /** seed of the noise field */
  noiseSeed: number;
}

export const NO_AUGMENT: AugmentParams = {
  angleDeg: 0,
  scale: 1,
  shiftX: 0,
  shiftY: 0,
  flip: false,
  brightness: 0,
  contrast: 1,
  gamma: 1,
  noiseStd: 0,
  noiseSeed: 0,
};

export interface AugmentRanges {
  maxRotationDeg: number;
  minScale: number;
  maxScale: number;
  maxShift: number;
  maxBrightness: number;
  minContrast: number;
  maxContrast: number;
  minGamma: number;
  maxGamma: number;
  maxNoise: number;
  /** probability of a horizontal flip; 0 by default */
  flipProbability: number;
}

export const DEFAULT_AUGMENT: AugmentRanges = {
  maxRotationDeg: 8,
  minScale: 0.9,
  maxScale: 1.1,
  maxShift: 0.05,
  maxBrightness: 0.08,
  minContrast: 0.8,
  maxContrast: 1.2,
  minGamma: 0.8,
  maxGamma: 1.25,
  maxNoise: 0.02,
  flipProbability: 0,
};

/** Draws augmentation parameters; `source` is an Rng or any uniform [0,1) function. */
export function sampleAugment(source: Rng | (() => number), ranges: Partial<AugmentRanges> = {}): AugmentParams {
  const r = { ...DEFAULT_AUGMENT, ...ranges };
  const u = source instanceof Rng ? () => source.next() : source;
  const between = (lo: number, hi: number): number => lo + (hi - lo) * u();
  // Log-uniform for the multiplicative ones, so zooming in and out are equally likely.
  const logBetween = (lo: number, hi: number): number => Math.exp(between(Math.log(lo), Math.log(hi)));
  return {
    angleDeg: between(-r.maxRotationDeg, r.maxRotationDeg),
    scale: logBetween(r.minScale, r.maxScale),
    shiftX: between(-r.maxShift, r.maxShift),
    shiftY: between(-r.maxShift, r.maxShift),
    flip: u() < r.flipProbability,
    brightness: between(-r.maxBrightness, r.maxBrightness),
    contrast: logBetween(r.minContrast, r.maxContrast),
    gamma: logBetween(r.minGamma, r.maxGamma),
    noiseStd: between(0, r.maxNoise),
    noiseSeed: Math.floor(u() * 4294967296),
  };
}

/** The output→input map for the geometric part of `p` on a width x height image. */
export function augmentAffine(width: number, height: number, p: AugmentParams): Affine {
  const m = rotateScaleShift(width, height, p.angleDeg, p.scale, p.shiftX * width, p.shiftY * height);
  if (!p.flip) return m;
  // Flip the output: output x reads what unflipped output (width-1-x) would have read.
  const [a, b, c, d, e, f] = m;
  return [-a, b, a * (width - 1) + c, -d, e, d * (width - 1) + f];
}

/**
 * Applies `p` to the image and (geometry only) to the mask. Pixels brought in from outside
 * the image are 0 (black, as past a collimator edge); the mask is re-binarised at 0.5 after
 * bilinear resampling, so image and mask move together to within half a pixel.
 */
export function augmentPair(image: GrayImage, mask: GrayImage | null, p: AugmentParams): { image: GrayImage; mask: GrayImage | null } {
  if (mask && (mask.width !== image.width || mask.height !== image.height))
    throw new RangeError(`mask ${mask.width}x${mask.height} does not match image ${image.width}x${image.height}`);
  const identityGeometry = p.angleDeg === 0 && p.scale === 1 && p.shiftX === 0 && p.shiftY === 0 && !p.flip;
  const m = augmentAffine(image.width, image.height, p);
  const img = identityGeometry ? grayImage(image.width, image.height, Float32Array.from(image.data)) : warpAffine(image, m, { fill: 0 });
  let outMask: GrayImage | null = null;
  if (mask) {
    outMask = identityGeometry ? grayImage(mask.width, mask.height, Float32Array.from(mask.data)) : warpAffine(mask, m, { fill: 0 });
    const d = outMask.data;
    for (let k = 0; k < d.length; k++) d[k] = d[k] >= 0.5 ? 1 : 0;
  }
  photometric(img.data, p);
  return { image: img, mask: outMask };
}

function photometric(d: Float32Array, p: AugmentParams): void {
  const photo = p.gamma !== 1 || p.contrast !== 1 || p.brightness !== 0;
  if (photo) {
    for (let k = 0; k < d.length; k++) {
      const x = d[k] <= 0 ? 0 : d[k] >= 1 ? 1 : d[k];
      d[k] = (Math.pow(x, p.gamma) - 0.5) * p.contrast + 0.5 + p.brightness;
    }
  }
  if (p.noiseStd > 0) {
    const noise = new Float32Array(d.length);
    fillNormal(new Rng(p.noiseSeed, 0x9e3779b9, 0x85ebca6b, 0xc2b2ae35), noise);
    for (let k = 0; k < d.length; k++) d[k] += noise[k] * p.noiseStd;
  }
  if (photo || p.noiseStd > 0) for (let k = 0; k < d.length; k++) d[k] = d[k] < 0 ? 0 : d[k] > 1 ? 1 : d[k];
}
