import { gaussianBlurInPlace, smoothBlurInPlace } from '../../imaging/blur.js';
import { fillPolygons } from '../../imaging/polygon-fill.js';
import { resizeBilinear } from '../../imaging/resize.js';
import { grayImage } from '../../imaging/types.js';
import type { Rng } from '../rng.js';

/**
 * A float raster addressed in "frame units": the detector frame is 1 unit tall and
 * `aspect` units wide, with (0,0) at its top-left corner. The canvas may extend past the
 * detector by a margin (so a small acquisition rotation never reveals an unrendered
 * corner). Anatomy is described in frame units and drawn here at the working resolution.
 */
export class Canvas {
  readonly width: number;
  readonly height: number;
  /** pixels per frame unit */
  readonly scale: number;
  /** frame coordinates of the canvas' top-left corner */
  readonly x0: number;
  readonly y0: number;

  constructor(width: number, height: number, scale: number, x0: number, y0: number) {
    this.width = width;
    this.height = height;
    this.scale = scale;
    this.x0 = x0;
    this.y0 = y0;
  }

  buffer(): Float32Array {
    return new Float32Array(this.width * this.height);
  }

  /** pixel-space x of a frame x (pixel centres at half-integers) */
  px(x: number): number {
    return (x - this.x0) * this.scale;
  }
  py(y: number): number {
    return (y - this.y0) * this.scale;
  }
  /** frame x of pixel column i's centre */
  fx(i: number): number {
    return this.x0 + (i + 0.5) / this.scale;
  }
  fy(j: number): number {
    return this.y0 + (j + 0.5) / this.scale;
  }

  /** A polygon given in frame units, converted to this canvas' pixel units. */
  toPixels(poly: ArrayLike<number>): Float64Array {
    const out = new Float64Array(poly.length);
    for (let k = 0; k < poly.length; k += 2) {
      out[k] = this.px(poly[k]);
      out[k + 1] = this.py(poly[k + 1]);
    }
    return out;
  }
}

export type Profile = 'tube' | 'cortex' | 'flat' | 'gauss';

function profileValue(p: Profile, r: number): number {
  switch (p) {
    case 'tube':
      return Math.sqrt(1 - r * r);
    case 'cortex': {
      // Projection of a hollow bone: a dense shell over a lighter marrow cavity, so rib
      // and clavicle margins look brighter than their middles as on real films.
      const outer = Math.sqrt(1 - r * r);
      const ri = 0.75;
      const inner = r < ri ? Math.sqrt(ri * ri - r * r) : 0;
      return outer - 0.55 * inner;
    }
    case 'gauss':
      return Math.exp(-4.5 * r * r);
    default:
      return 1;
  }
}

export interface StrokeStyle {
  /** full width in frame units at each vertex, or one value for all */
  width: number | ArrayLike<number>;
  /** amplitude at each vertex, or one value */
  amp: number | ArrayLike<number>;
  profile: Profile;
  /** 'add' sums overlaps; 'max' keeps the strongest (for wires drawn over themselves) */
  mode?: 'add' | 'max';
}

/**
 * Draws a polyline (flat frame-unit coordinates) as a stroke with a cross-section profile.
 * Within one polyline the segments (capsules) combine by maximum, so bends have neither gaps
 * nor doubled joints; the finished stroke is then added to `buf` ('add') or merged by
 * maximum ('max', for wires drawn over themselves).
 */
export function strokePolyline(buf: Float32Array, c: Canvas, pts: ArrayLike<number>, style: StrokeStyle): void {
  const n = Math.floor(pts.length / 2);
  if (n < 2) return;
  const widthAt = (k: number): number => (typeof style.width === 'number' ? style.width : style.width[k]);
  const ampAt = (k: number): number => (typeof style.amp === 'number' ? style.amp : style.amp[k]);
  // Bounding box of the whole stroke, for a private scratch raster.
  let maxR = 0.5;
  let bx0 = Infinity;
  let by0 = Infinity;
  let bx1 = -Infinity;
  let by1 = -Infinity;
  for (let k = 0; k < n; k++) {
    maxR = Math.max(maxR, (widthAt(k) * c.scale) / 2);
    const x = c.px(pts[2 * k]);
    const y = c.py(pts[2 * k + 1]);
    bx0 = Math.min(bx0, x);
    bx1 = Math.max(bx1, x);
    by0 = Math.min(by0, y);
    by1 = Math.max(by1, y);
  }
  const i0 = Math.max(0, Math.floor(bx0 - maxR - 1));
  const i1 = Math.min(c.width - 1, Math.ceil(bx1 + maxR + 1));
  const j0 = Math.max(0, Math.floor(by0 - maxR - 1));
  const j1 = Math.min(c.height - 1, Math.ceil(by1 + maxR + 1));
  if (i1 < i0 || j1 < j0) return;
  const sw = i1 - i0 + 1;
  const sh = j1 - j0 + 1;
  const scratch = new Float32Array(sw * sh);
  // Signed amplitudes (negative = air) combine by the largest magnitude.
  for (let k = 0; k + 1 < n; k++) {
    const ax = c.px(pts[2 * k]);
    const ay = c.py(pts[2 * k + 1]);
    const bx = c.px(pts[2 * k + 2]);
    const by = c.py(pts[2 * k + 3]);
    const ra = (widthAt(k) * c.scale) / 2;
    const rb = (widthAt(k + 1) * c.scale) / 2;
    const aa = ampAt(k);
    const ab = ampAt(k + 1);
    const rMax = Math.max(ra, rb, 0.7);
    const si0 = Math.max(i0, Math.floor(Math.min(ax, bx) - rMax - 1));
    const si1 = Math.min(i1, Math.ceil(Math.max(ax, bx) + rMax + 1));
    const sj0 = Math.max(j0, Math.floor(Math.min(ay, by) - rMax - 1));
    const sj1 = Math.min(j1, Math.ceil(Math.max(ay, by) + rMax + 1));
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy;
    for (let j = sj0; j <= sj1; j++) {
      const py = j + 0.5;
      const row = (j - j0) * sw - i0;
      for (let i = si0; i <= si1; i++) {
        const px = i + 0.5;
        let t = len2 > 1e-12 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const qx = ax + t * dx - px;
        const qy = ay + t * dy - py;
        // Thin strokes (under a pixel) keep their mass instead of vanishing between centres.
        const rr = ra + (rb - ra) * t;
        const r = Math.max(rr, 0.7);
        const d = Math.sqrt(qx * qx + qy * qy);
        if (d >= r) continue;
        const thin = rr < 0.7 ? rr / 0.7 : 1;
        const v = (aa + (ab - aa) * t) * thin * profileValue(style.profile, d / r);
        const idx = row + i;
        if (Math.abs(v) > Math.abs(scratch[idx])) scratch[idx] = v;
      }
    }
  }
  const useMax = style.mode === 'max';
  for (let j = 0; j < sh; j++) {
    const o = (j + j0) * c.width + i0;
    const so = j * sw;
    for (let i = 0; i < sw; i++) {
      const v = scratch[so + i];
      if (v === 0) continue;
      if (useMax) {
        if (v > buf[o + i]) buf[o + i] = v;
      } else buf[o + i] += v;
    }
  }
}

/** Adds `amp` inside a polygon (frame units), with edges blurred by `sigma` frame units. */
export function fillSoft(buf: Float32Array, c: Canvas, poly: ArrayLike<number>, amp: number, sigma: number, weight?: Float32Array): void {
  const region = softRegion(c, poly, sigma);
  if (!region) return;
  const { data, i0, j0, w, h } = region;
  for (let j = 0; j < h; j++) {
    const row = (j0 + j) * c.width + i0;
    for (let i = 0; i < w; i++) {
      const v = data[j * w + i];
      if (v !== 0) buf[row + i] += amp * v * (weight ? weight[row + i] : 1);
    }
  }
}

/** The blurred indicator of a polygon over the whole canvas, in [0,1]. */
export function softMask(c: Canvas, polys: readonly ArrayLike<number>[], sigma: number): Float32Array {
  const mask = fillPolygons(
    c.width,
    c.height,
    polys.map((p) => c.toPixels(p)),
  );
  const out = new Float32Array(mask.length);
  for (let k = 0; k < mask.length; k++) out[k] = mask[k];
  smoothBlurInPlace(out, c.width, c.height, sigma * c.scale);
  return out;
}

interface Region {
  data: Float32Array;
  i0: number;
  j0: number;
  w: number;
  h: number;
}

/** Polygon indicator blurred within its own bounding box (plus 3 sigma), for small shapes. */
function softRegion(c: Canvas, poly: ArrayLike<number>, sigma: number): Region | null {
  const p = c.toPixels(poly);
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let k = 0; k < p.length; k += 2) {
    minX = Math.min(minX, p[k]);
    maxX = Math.max(maxX, p[k]);
    minY = Math.min(minY, p[k + 1]);
    maxY = Math.max(maxY, p[k + 1]);
  }
  const pad = Math.ceil(3 * sigma * c.scale) + 2;
  const i0 = Math.max(0, Math.floor(minX) - pad);
  const j0 = Math.max(0, Math.floor(minY) - pad);
  const i1 = Math.min(c.width, Math.ceil(maxX) + pad);
  const j1 = Math.min(c.height, Math.ceil(maxY) + pad);
  if (i1 <= i0 || j1 <= j0) return null;
  const w = i1 - i0;
  const h = j1 - j0;
  for (let k = 0; k < p.length; k += 2) {
    p[k] -= i0;
    p[k + 1] -= j0;
  }
  const m = fillPolygons(w, h, [p]);
  const data = new Float32Array(w * h);
  for (let k = 0; k < m.length; k++) data[k] = m[k];
  smoothBlurInPlace(data, w, h, sigma * c.scale);
  return { data, i0, j0, w, h };
}

/**
 * Adds an ellipse (centre, radii, rotation in radians; frame units). 'flat' has a soft rim of
 * relative width `soft`; 'tube' is the projection of an ellipsoid (a nodule, a humeral head).
 */
export function addEllipse(
  buf: Float32Array,
  c: Canvas,
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  rot: number,
  amp: number,
  profile: Profile,
  soft = 0.1,
): void {
  const R = Math.max(rx, ry) * (1 + soft) * c.scale + 2;
  const pcx = c.px(cx);
  const pcy = c.py(cy);
  const i0 = Math.max(0, Math.floor(pcx - R));
  const i1 = Math.min(c.width - 1, Math.ceil(pcx + R));
  const j0 = Math.max(0, Math.floor(pcy - R));
  const j1 = Math.min(c.height - 1, Math.ceil(pcy + R));
  const cos = Math.cos(rot);
  const sin = Math.sin(rot);
  const irx = 1 / (rx * c.scale);
  const iry = 1 / (ry * c.scale);
  for (let j = j0; j <= j1; j++) {
    const dy = j + 0.5 - pcy;
    for (let i = i0; i <= i1; i++) {
      const dx = i + 0.5 - pcx;
      const u = (dx * cos + dy * sin) * irx;
      const v = (-dx * sin + dy * cos) * iry;
      const r = Math.sqrt(u * u + v * v);
      let val: number;
      if (profile === 'flat') val = smoothstep(1 + soft, 1 - soft, r);
      else if (r >= 1) continue;
      else val = profileValue(profile, r);
      if (val > 0) buf[j * c.width + i] += amp * val;
    }
  }
}

export function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

/**
 * Smooth random texture in [-1,1] with features about `cell` frame units across: a coarse
 * random grid, upsampled bilinearly and blurred once to hide the grid.
 */
export function valueNoise(rng: Rng, c: Canvas, cell: number): Float32Array {
  const cellPx = Math.max(1, cell * c.scale);
  const gw = Math.max(2, Math.ceil(c.width / cellPx) + 2);
  const gh = Math.max(2, Math.ceil(c.height / cellPx) + 2);
  const g = new Float32Array(gw * gh);
  for (let k = 0; k < g.length; k++) g[k] = rng.next() * 2 - 1;
  // Smoothing the grid (not the full-size field) hides the bilinear creases cheaply.
  gaussianBlurInPlace(g, gw, gh, 0.7);
  const up = resizeBilinear(grayImage(gw, gh, g), Math.round(gw * cellPx), Math.round(gh * cellPx));
  // Crop to the canvas (the grid overhangs by up to two cells).
  const out = new Float32Array(c.width * c.height);
  let s = 0;
  for (let j = 0; j < c.height; j++) {
    const o = j * up.width;
    for (let i = 0; i < c.width; i++) {
      const v = up.data[o + i];
      out[j * c.width + i] = v;
      s += v * v;
    }
  }
  // Smoothing shrinks the spread; restore it to roughly [-1,1].
  const k0 = 0.55 / (Math.sqrt(s / out.length) || 1);
  for (let k = 0; k < out.length; k++) out[k] = Math.max(-1, Math.min(1, out[k] * k0));
  return out;
}

/** Catmull-Rom spline through control points (flat x,y), `per` samples per span. */
export function spline(ctrl: readonly number[], per = 12): number[] {
  const n = ctrl.length / 2;
  const out: number[] = [];
  const P = (k: number): [number, number] => {
    const kk = Math.min(n - 1, Math.max(0, k));
    return [ctrl[2 * kk], ctrl[2 * kk + 1]];
  };
  for (let k = 0; k < n - 1; k++) {
    const [x0, y0] = P(k - 1);
    const [x1, y1] = P(k);
    const [x2, y2] = P(k + 1);
    const [x3, y3] = P(k + 2);
    for (let s = 0; s < per; s++) {
      const t = s / per;
      const t2 = t * t;
      const t3 = t2 * t;
      out.push(
        0.5 * (2 * x1 + (-x0 + x2) * t + (2 * x0 - 5 * x1 + 4 * x2 - x3) * t2 + (-x0 + 3 * x1 - 3 * x2 + x3) * t3),
        0.5 * (2 * y1 + (-y0 + y2) * t + (2 * y0 - 5 * y1 + 4 * y2 - y3) * t2 + (-y0 + 3 * y1 - 3 * y2 + y3) * t3),
      );
    }
  }
  out.push(ctrl[2 * n - 2], ctrl[2 * n - 1]);
  return out;
}

/** Even-odd point-in-polygon test (flat coordinates). */
export function insidePolygon(poly: ArrayLike<number>, x: number, y: number): boolean {
  let inside = false;
  const n = poly.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = poly[2 * i];
    const yi = poly[2 * i + 1];
    const xj = poly[2 * j];
    const yj = poly[2 * j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Adds `amp` over an axis-aligned rectangle (frame units), with partial coverage at its edges. */
export function addRect(buf: Float32Array, c: Canvas, x0: number, y0: number, x1: number, y1: number, amp: number): void {
  const px0 = c.px(x0);
  const px1 = c.px(x1);
  const py0 = c.py(y0);
  const py1 = c.py(y1);
  const i0 = Math.max(0, Math.floor(px0));
  const i1 = Math.min(c.width - 1, Math.ceil(px1) - 1);
  const j0 = Math.max(0, Math.floor(py0));
  const j1 = Math.min(c.height - 1, Math.ceil(py1) - 1);
  for (let j = j0; j <= j1; j++) {
    const cy = Math.min(j + 1, py1) - Math.max(j, py0);
    if (cy <= 0) continue;
    for (let i = i0; i <= i1; i++) {
      const cx = Math.min(i + 1, px1) - Math.max(i, px0);
      if (cx > 0) buf[j * c.width + i] += amp * cx * cy;
    }
  }
}

/** Points on an ellipse (flat x,y), closed. */
export function ellipsePoints(cx: number, cy: number, rx: number, ry: number, n = 24): number[] {
  const out: number[] = [];
  for (let k = 0; k <= n; k++) {
    const t = (k / n) * 2 * Math.PI;
    out.push(cx + rx * Math.cos(t), cy + ry * Math.sin(t));
  }
  return out;
}
