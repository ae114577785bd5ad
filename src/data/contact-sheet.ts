/**
 * A contact sheet: windowed images as square tiles in a grid, each with its lung-mask
 * outline drawn in colour (green for normal, orange for pneumonia) and a letter in the
 * corner (N/P), so a person can see at a glance what a model will learn from.
 */
import { maskOutline } from '../imaging/overlay.js';
import { encodeRgbPng } from '../imaging/png.js';
import { resizeArea } from '../imaging/resize.js';
import type { GrayImage } from '../imaging/types.js';
import { textCells } from './phantom/font.js';

export interface SheetTile {
  /** windowed image, values in [0,1] */
  image: GrayImage;
  /** lung mask at the image's size (values >= 0.5 inside), if any */
  mask?: GrayImage | null;
  label?: string | null;
}

export interface SheetOptions {
  tile?: number;
  columns?: number;
}

const COLOURS: Record<string, [number, number, number]> = {
  normal: [40, 220, 90],
  pneumonia: [255, 140, 20],
};

/** Draws the sheet as raw RGB; `contactSheetPng` encodes it. */
export function contactSheetRgb(tiles: readonly SheetTile[], opts: SheetOptions = {}): { rgb: Uint8Array; width: number; height: number } {
  const size = opts.tile ?? 256;
  const cols = Math.max(1, Math.min(opts.columns ?? 4, tiles.length));
  const rows = Math.max(1, Math.ceil(tiles.length / cols));
  const width = cols * size;
  const height = rows * size;
  const rgb = new Uint8Array(width * height * 3);
  tiles.forEach((t, n) => {
    const ox = (n % cols) * size;
    const oy = Math.floor(n / cols) * size;
    const img = resizeArea(t.image, size, size).data;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = Math.round(255 * Math.min(1, Math.max(0, img[y * size + x])));
        const o = ((oy + y) * width + ox + x) * 3;
        rgb[o] = rgb[o + 1] = rgb[o + 2] = v;
      }
    }
    const colour = COLOURS[t.label ?? ''] ?? [60, 160, 255];
    if (t.mask) {
      const outline = maskOutline(resizeArea(t.mask, size, size));
      for (let k = 0; k < outline.length; k++) {
        if (!outline[k]) continue;
        const o = ((oy + Math.floor(k / size)) * width + ox + (k % size)) * 3;
        rgb[o] = colour[0];
        rgb[o + 1] = colour[1];
        rgb[o + 2] = colour[2];
      }
    }
    if (t.label) {
      const letter = t.label === 'pneumonia' ? 'P' : t.label === 'normal' ? 'N' : t.label.slice(0, 1);
      const cell = Math.max(1, Math.round(size / 85));
      for (const [cx, cy] of textCells(letter)) {
        for (let dy = 0; dy < cell; dy++)
          for (let dx = 0; dx < cell; dx++) {
            const o = ((oy + 4 + cy * cell + dy) * width + ox + 4 + cx * cell + dx) * 3;
            rgb[o] = colour[0];
            rgb[o + 1] = colour[1];
            rgb[o + 2] = colour[2];
          }
      }
    }
  });
  return { rgb, width, height };
}

export async function contactSheetPng(tiles: readonly SheetTile[], opts: SheetOptions = {}): Promise<Buffer> {
  const { rgb, width, height } = contactSheetRgb(tiles, opts);
  return encodeRgbPng(rgb, width, height);
}
