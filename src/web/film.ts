/**
 * Pixel math of the viewer, pure so it is tested with exact values: the film arrives as 16-bit
 * codes spanning the modality range [min, max]; a window (centre, width in modality units,
 * PS3.3 C.11.2.1.2.1 LINEAR) maps it to 8-bit grey, inverted for MONOCHROME1.
 */
export interface Film {
  width: number;
  height: number;
  codes: Uint16Array;
  /** modality values of code 0 and code 65535 */
  min: number;
  max: number;
  invert: boolean;
}

export interface Window {
  center: number;
  width: number;
}

/** The 65,536-entry table from code to grey for one window: the per-pixel loop is then one lookup. */
export function windowTable(f: Pick<Film, 'min' | 'max' | 'invert'>, w: Window): Uint8Array {
  const lut = new Uint8Array(65536);
  const step = (f.max - f.min) / 65535;
  const c = w.center - 0.5;
  const span = Math.max(w.width - 1, 1e-6);
  const lo = c - span / 2;
  const hi = c + span / 2;
  for (let code = 0; code < 65536; code++) {
    const x = f.min + code * step;
    const y = x <= lo ? 0 : x > hi ? 1 : (x - c) / span + 0.5;
    const g = Math.round(255 * y);
    lut[code] = f.invert ? 255 - g : g;
  }
  return lut;
}

/**
 * Writes the windowed film into RGBA pixels (an ImageData's buffer): one 32-bit store per pixel
 * from a table of opaque grey words (byte order of the platform, little-endian in every browser
 * this runs in), four times fewer writes than byte by byte on a 2048x2048 film.
 */
export function paint(f: Film, lut: Uint8Array, rgba: Uint8ClampedArray): void {
  const n = f.width * f.height;
  const grey = new Uint32Array(256);
  for (let g = 0; g < 256; g++) grey[g] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;
  const word = new Uint32Array(65536);
  for (let code = 0; code < 65536; code++) word[code] = grey[lut[code]];
  const out = new Uint32Array(rgba.buffer, rgba.byteOffset, n);
  const codes = f.codes;
  for (let i = 0; i < n; i++) out[i] = word[codes[i]];
}

/** Dragging changes level with vertical motion and width with horizontal, scaled to the film's range. */
export function dragWindow(start: Window, dx: number, dy: number, range: number): Window {
  const k = range / 1000;
  return { center: start.center - dy * k, width: Math.max(1, start.width + dx * k) };
}

/** Presets in the film's own units: its stored window, the full range, and two contrast variants of it. */
export function presets(f: Pick<Film, 'min' | 'max'>, stored: Window | null): { name: string; window: Window }[] {
  const full: Window = { center: (f.min + f.max) / 2, width: Math.max(1, f.max - f.min) };
  const base = stored ?? full;
  return [
    { name: 'Default', window: base },
    { name: 'Full range', window: full },
    { name: 'Soft', window: { center: base.center, width: base.width * 1.6 } },
    { name: 'Sharp', window: { center: base.center, width: Math.max(1, base.width * 0.6) } },
  ];
}

/** The outline of a binary mask: set pixels with an unset 4-neighbour (or on the border). */
export function outline(mask: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!mask[i]) continue;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width]) out[i] = 1;
    }
  }
  return out;
}

/** A colour for a heat value in [0,1]: transparent blue to opaque red, alpha rising with the evidence. */
export function heatColor(v: number): [number, number, number, number] {
  const t = Math.min(1, Math.max(0, v));
  const r = Math.round(255 * Math.min(1, 2 * t));
  const g = Math.round(255 * (t < 0.5 ? 2 * t : 2 - 2 * t));
  const b = Math.round(255 * Math.max(0, 1 - 2 * t));
  return [r, g, b, Math.round(255 * t)];
}
