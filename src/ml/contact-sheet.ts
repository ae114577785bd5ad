/**
 * Contact sheets of scored films: each film as a square tile (letterboxed, aspect kept) with
 * the class activation heatmap blended over it and the lung mask's outline on top, a caption
 * under it, tiles in a grid under an optional title. Pure: images in, one RGB image out; the
 * scoring through the served pipeline happens in the caller.
 */
import type { GrayImage } from '../imaging/types.js';
import { heatmapOverlay, maskOutline, type Rgb, type RgbImage } from '../imaging/overlay.js';
import { resizeArea } from '../imaging/resize.js';
import { drawText } from './plots.js';

export interface FilmTile {
  /** the windowed film, [0,1] */
  image: GrayImage;
  /** lung mask at the film's size (>= 0.5 inside) */
  mask: GrayImage;
  /** CAM heatmap at the film's size, [0,1] */
  heatmap: GrayImage;
  /** caption lines under the tile (the 5x7 font: upper case, digits, . - = % ( ) @) */
  caption: string[];
}

export interface SheetOptions {
  /** tile side in pixels (default 160) */
  side?: number;
  columns?: number;
  title?: string;
  outline?: Rgb;
}

const LINE = 10;
const PAD = 4;

/** The film, mask and heatmap scaled to fit side x side (aspect kept), centred on black. */
export function filmTile(t: Pick<FilmTile, 'image' | 'mask' | 'heatmap'>, side: number, outline: Rgb = [0, 230, 64]): RgbImage {
  const scale = side / Math.max(t.image.width, t.image.height);
  const w = Math.max(1, Math.round(t.image.width * scale));
  const h = Math.max(1, Math.round(t.image.height * scale));
  const small = resizeArea(t.image, w, h);
  const heat = resizeArea(t.heatmap, w, h);
  const mask = resizeArea(t.mask, w, h);
  const blended = heatmapOverlay(small, heat);
  const edge = maskOutline(mask, 1);
  const out = new Uint8Array(side * side * 3);
  const ox = Math.floor((side - w) / 2);
  const oy = Math.floor((side - h) / 2);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const o = ((oy + y) * side + ox + x) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = edge[i] ? outline[c] : blended.data[i * 3 + c];
    }
  }
  return { width: side, height: side, data: out };
}

/** Tiles in a grid (row-major), captions under each, on a dark background. */
export function contactSheet(tiles: readonly FilmTile[], opts: SheetOptions = {}): RgbImage {
  const side = opts.side ?? 160;
  const columns = Math.max(1, Math.min(opts.columns ?? 4, tiles.length || 1));
  const lines = Math.max(0, ...tiles.map((t) => t.caption.length));
  const cellW = side + PAD;
  const cellH = side + PAD + lines * LINE;
  const top = opts.title ? LINE + 2 * PAD : PAD;
  const rows = Math.ceil(tiles.length / columns);
  const width = columns * cellW + PAD;
  const height = top + rows * cellH + PAD;
  const data = new Uint8Array(width * height * 3).fill(24);
  const sheet: RgbImage = { width, height, data };
  if (opts.title) drawText(sheet, PAD, PAD, opts.title, [235, 235, 235]);
  tiles.forEach((t, k) => {
    const x0 = PAD + (k % columns) * cellW;
    const y0 = top + Math.floor(k / columns) * cellH;
    const tile = filmTile(t, side, opts.outline);
    for (let y = 0; y < side; y++) data.set(tile.data.subarray(y * side * 3, (y + 1) * side * 3), ((y0 + y) * width + x0) * 3);
    t.caption.forEach((line, j) => drawText(sheet, x0, y0 + side + 3 + j * LINE, line, [235, 235, 235]));
  });
  return sheet;
}
