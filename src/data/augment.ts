/**
 * Training augmentation applied identically to an image and its lung mask: a crop (each side
 * cut independently, so the aspect ratio changes as it does between sites and in squashed
 * public copies), rotation, zoom, shift and an optional horizontal flip (off by default: the
 * heart is on the patient's left, and a flipped chest is not a chest film), then brightness,
 * contrast, gamma, noise and a JPEG-like softening (Gaussian blur plus a pull towards each
 * 8x8 block's mean, the blocking of a heavily compressed film) on the image only. `augmentPair` is a pure function of (image, mask, params); `sampleAugment`
 * draws params from a seeded source.
 */
import { warpAffine, rotateScaleShift, type Affine } from '../imaging/affine.js';
import { gaussianBlurInPlace } from '../imaging/blur.js';
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
  /** crop box as fractions of the width / height: left, top, width, height (1,1 = no crop) */
  cropX: number;
  cropY: number;
  cropW: number;
  cropH: number;
  /** Gaussian blur sigma in pixels (0 = none) */
  blurSigma: number;
  /** weight of each 8x8 block's mean mixed into its pixels (0 = none) */
  blockMix: number;
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
  cropX: 0,
  cropY: 0,
  cropW: 1,
  cropH: 1,
  blurSigma: 0,
  blockMix: 0,
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
  /** smallest crop side as a fraction of the image side (1 = no crop) */
  minCrop: number;
  maxBlurSigma: number;
  maxBlockMix: number;
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
  minCrop: 0.85,
  maxBlurSigma: 1,
  maxBlockMix: 0.25,
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
    // drawn after the older parameters, so a seed gives those the values it always gave
    ...cropBox(between(r.minCrop, 1), between(r.minCrop, 1), u(), u()),
    blurSigma: between(0, r.maxBlurSigma),
    blockMix: between(0, r.maxBlockMix),
  };
}

function cropBox(w: number, h: number, ux: number, uy: number): Pick<AugmentParams, 'cropX' | 'cropY' | 'cropW' | 'cropH'> {
  return { cropW: w, cropH: h, cropX: (1 - w) * ux, cropY: (1 - h) * uy };
}

/** The output→input map for the geometric part of `p` on a width x height image. */
export function augmentAffine(width: number, height: number, p: AugmentParams): Affine {
  const m = withCrop(rotateScaleShift(width, height, p.angleDeg, p.scale, p.shiftX * width, p.shiftY * height), width, height, p);
  if (!p.flip) return m;
  // Flip the output: output x reads what unflipped output (width-1-x) would have read.
  const [a, b, c, d, e, f] = m;
  return [-a, b, a * (width - 1) + c, -d, e, d * (width - 1) + f];
}

/**
 * The crop comes first: the rest of the geometry works on the cropped picture stretched to
 * the full size, whose pixel centre x sits at cropX*W + (x + 0.5) * cropW - 0.5 in the input.
 */
function withCrop(m: Affine, width: number, height: number, p: AugmentParams): Affine {
  const cw = p.cropW ?? 1;
  const ch = p.cropH ?? 1;
  if (cw === 1 && ch === 1 && !p.cropX && !p.cropY) return m;
  const ox = (p.cropX ?? 0) * width + 0.5 * cw - 0.5;
  const oy = (p.cropY ?? 0) * height + 0.5 * ch - 0.5;
  const [a, b, c, d, e, f] = m;
  return [cw * a, cw * b, cw * c + ox, ch * d, ch * e, ch * f + oy];
}

/**
 * Applies `p` to the image and (geometry only) to the mask. Pixels brought in from outside
 * the image are 0 (black, as past a collimator edge); the mask is re-binarised at 0.5 after
 * bilinear resampling, so image and mask move together to within half a pixel.
 */
export function augmentPair(image: GrayImage, mask: GrayImage | null, p: AugmentParams): { image: GrayImage; mask: GrayImage | null } {
  if (mask && (mask.width !== image.width || mask.height !== image.height))
    throw new RangeError(`mask ${mask.width}x${mask.height} does not match image ${image.width}x${image.height}`);
  const identityGeometry =
    p.angleDeg === 0 && p.scale === 1 && p.shiftX === 0 && p.shiftY === 0 && !p.flip && (p.cropW ?? 1) === 1 && (p.cropH ?? 1) === 1 && !p.cropX && !p.cropY;
  const m = augmentAffine(image.width, image.height, p);
  const img = identityGeometry ? grayImage(image.width, image.height, Float32Array.from(image.data)) : warpAffine(image, m, { fill: 0 });
  let outMask: GrayImage | null = null;
  if (mask) {
    outMask = identityGeometry ? grayImage(mask.width, mask.height, Float32Array.from(mask.data)) : warpAffine(mask, m, { fill: 0 });
    const d = outMask.data;
    for (let k = 0; k < d.length; k++) d[k] = d[k] >= 0.5 ? 1 : 0;
  }
  photometric(img.data, p);
  jpegLike(img.data, img.width, img.height, p);
  return { image: img, mask: outMask };
}

/** Blur, then pull each pixel towards its 8x8 block's mean (blocks cut at the image edge where the size is not a multiple of 8). */
export function jpegLike(d: Float32Array, width: number, height: number, p: Pick<AugmentParams, 'blurSigma' | 'blockMix'>): void {
  if (p.blurSigma > 0) gaussianBlurInPlace(d, width, height, p.blurSigma);
  const q = p.blockMix ?? 0;
  if (!(q > 0)) return;
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      const y1 = Math.min(height, by + 8);
      const x1 = Math.min(width, bx + 8);
      let s = 0;
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) s += d[y * width + x];
      const mean = s / ((y1 - by) * (x1 - bx));
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) d[y * width + x] = (1 - q) * d[y * width + x] + q * mean;
    }
  }
}

function photometric(d: Float32Array, p: AugmentParams): void {
  const photo = p.gamma !== 1 || p.contrast !== 1 || p.brightness !== 0;
  if (photo) {
    for (let k = 0; k < d.length; k++) {
      const x = d[k] <= 0 ? 0 : d[k] >= 1 ? 1 : d[k];
      d[k] = (x ** p.gamma - 0.5) * p.contrast + 0.5 + p.brightness;
    }
  }
  if (p.noiseStd > 0) {
    const noise = new Float32Array(d.length);
    fillNormal(new Rng(p.noiseSeed, 0x9e3779b9, 0x85ebca6b, 0xc2b2ae35), noise);
    for (let k = 0; k < d.length; k++) d[k] += noise[k] * p.noiseStd;
  }
  if (photo || p.noiseStd > 0) for (let k = 0; k < d.length; k++) d[k] = d[k] < 0 ? 0 : d[k] > 1 ? 1 : d[k];
}
