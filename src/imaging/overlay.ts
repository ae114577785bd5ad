/**
 * Reviewer overlays on a windowed radiograph: the lung mask's outline, and a class
 * activation heatmap. Output is interleaved 8-bit RGB (encodeRgbPng writes it).
 */
import type { GrayImage } from './types.js';

export interface RgbImage {
  width: number;
  height: number;
  /** r,g,b per pixel, row-major */
  data: Uint8Array;
}

export type Rgb = [number, number, number];

function sameSize(a: GrayImage, b: GrayImage, what: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`${what} is ${b.width}x${b.height}, the image ${a.width}x${a.height}`);
  }
}

function gray8(v: number): number {
  const g = Math.round(255 * v);
  return g < 0 ? 0 : g > 255 ? 255 : g;
}

/**
 * Pixels of the mask (value >= 0.5) within `radius` (Chebyshev) of a background pixel or
 * the image edge: the mask minus its erosion by a (2r+1)^2 square, done as two separable
 * running-minimum passes. 1 on the outline, 0 elsewhere.
 */
export function maskOutline(mask: GrayImage, radius = 1): Uint8Array {
  const { width: w, height: h } = mask;
  const on = new Uint8Array(w * h);
  for (let i = 0; i < on.length; i++) on[i] = mask.data[i] >= 0.5 ? 1 : 0;
  // distance to the nearest background pixel along rows, capped at radius+1
  const rowEroded = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let ok = 1;
      for (let k = -radius; k <= radius && ok; k++) {
        const xx = x + k;
        if (xx < 0 || xx >= w || !on[y * w + xx]) ok = 0;
      }
      rowEroded[y * w + x] = ok;
    }
  }
  const outline = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!on[i]) continue;
      let ok = 1;
      for (let k = -radius; k <= radius && ok; k++) {
        const yy = y + k;
        if (yy < 0 || yy >= h || !rowEroded[yy * w + x]) ok = 0;
      }
      outline[i] = ok ? 0 : 1;
    }
  }
  return outline;
}

export interface MaskOverlayOptions {
  color?: Rgb;
  /** outline half-width in pixels (default: 1 per 256 pixels of the shorter side) */
  radius?: number;
  /** tint of the mask interior, 0..1 (default 0.12) */
  fill?: number;
}

/** The radiograph in grey with the mask outlined (and faintly tinted) in `color`. */
export function maskOverlay(img: GrayImage, mask: GrayImage, opts: MaskOverlayOptions = {}): RgbImage {
  sameSize(img, mask, 'mask');
  const color = opts.color ?? [0, 230, 64];
  const radius = opts.radius ?? Math.max(1, Math.round(Math.min(img.width, img.height) / 256));
  const fill = opts.fill ?? 0.12;
  const outline = maskOutline(mask, radius);
  const out = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < outline.length; i++) {
    const g = gray8(img.data[i]);
    const a = outline[i] ? 1 : mask.data[i] >= 0.5 ? fill : 0;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(g * (1 - a) + color[c] * a);
  }
  return { width: img.width, height: img.height, data: out };
}

/** The 'jet' colour map: blue (0) through cyan, yellow, to red (1). */
export function jet(t: number): Rgb {
  const v = t < 0 ? 0 : t > 1 ? 1 : t;
  const ch = (x: number) => Math.round(255 * Math.min(Math.max(1.5 - Math.abs(4 * v - x), 0), 1));
  return [ch(3), ch(2), ch(1)];
}

export interface HeatmapOverlayOptions {
  /** opacity at heat 1 (default 0.55) */
  alpha?: number;
  /** heat below this leaves the radiograph untouched (default 0.1) */
  floor?: number;
}

/**
 * Blends a [0,1] heatmap over the radiograph in the jet colours. Opacity grows with the
 * heat, so regions without evidence keep the plain image a reader needs to see.
 */
export function heatmapOverlay(img: GrayImage, heat: GrayImage, opts: HeatmapOverlayOptions = {}): RgbImage {
  sameSize(img, heat, 'heatmap');
  const alpha = opts.alpha ?? 0.55;
  const floor = opts.floor ?? 0.1;
  const lut: Rgb[] = Array.from({ length: 256 }, (_, i) => jet(i / 255));
  const out = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.data.length; i++) {
    const g = gray8(img.data[i]);
    const h = heat.data[i];
    const a = h > floor ? alpha * Math.min((h - floor) / (1 - floor), 1) : 0;
    const col = lut[gray8(h)];
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(g * (1 - a) + col[c] * a);
  }
  return { width: img.width, height: img.height, data: out };
}
