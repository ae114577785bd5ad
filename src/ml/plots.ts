import type { RgbImage } from '../imaging/overlay.js';
import type { CurveBand } from './bootstrap.js';
import type { CurvePoint } from './metrics.js';
import type { CalibrationReport } from './probability-calibration.js';
import { EXTRA_GLYPHS } from './plot-glyphs.js';

/**
 * ROC and precision-recall curves drawn straight into an RGB buffer (no plotting library
 * on the server): axes, a 0.1 grid, the curve, the operating point at the decision
 * threshold, and a title in a 5x7 bitmap font.
 */

type Rgb = [number, number, number];

const GLYPHS: Record<string, string[]> = {
  '0': ['01110', '10001', '10011', '10101', '11001', '10001', '01110'],
  '1': ['00100', '01100', '00100', '00100', '00100', '00100', '01110'],
  '2': ['01110', '10001', '00001', '00010', '00100', '01000', '11111'],
  '3': ['11110', '00001', '00001', '01110', '00001', '00001', '11110'],
  '4': ['00010', '00110', '01010', '10010', '11111', '00010', '00010'],
  '5': ['11111', '10000', '11110', '00001', '00001', '10001', '01110'],
  '6': ['00110', '01000', '10000', '11110', '10001', '10001', '01110'],
  '7': ['11111', '00001', '00010', '00100', '01000', '01000', '01000'],
  '8': ['01110', '10001', '10001', '01110', '10001', '10001', '01110'],
  '9': ['01110', '10001', '10001', '01111', '00001', '00010', '01100'],
  '.': ['00000', '00000', '00000', '00000', '00000', '01100', '01100'],
  '=': ['00000', '00000', '11111', '00000', '11111', '00000', '00000'],
  '-': ['00000', '00000', '00000', '11111', '00000', '00000', '00000'],
  ' ': ['00000', '00000', '00000', '00000', '00000', '00000', '00000'],
  A: ['01110', '10001', '10001', '11111', '10001', '10001', '10001'],
  C: ['01110', '10001', '10000', '10000', '10000', '10001', '01110'],
  D: ['11110', '10001', '10001', '10001', '10001', '10001', '11110'],
  E: ['11111', '10000', '10000', '11110', '10000', '10000', '11111'],
  F: ['11111', '10000', '10000', '11110', '10000', '10000', '10000'],
  H: ['10001', '10001', '10001', '11111', '10001', '10001', '10001'],
  I: ['01110', '00100', '00100', '00100', '00100', '00100', '01110'],
  L: ['10000', '10000', '10000', '10000', '10000', '10000', '11111'],
  N: ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
  O: ['01110', '10001', '10001', '10001', '10001', '10001', '01110'],
  P: ['11110', '10001', '10001', '11110', '10000', '10000', '10000'],
  R: ['11110', '10001', '10001', '11110', '10100', '10010', '10001'],
  S: ['01111', '10000', '10000', '01110', '00001', '00001', '11110'],
  T: ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
  U: ['10001', '10001', '10001', '10001', '10001', '10001', '01110'],
};

class Canvas implements RgbImage {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    data?: Uint8Array,
  ) {
    // a given buffer is drawn into in place (drawText); a new canvas starts white
    this.data = data ?? new Uint8Array(width * height * 3).fill(255);
  }

  set(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    const o = (yi * this.width + xi) * 3;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
  }

  dot(x: number, y: number, c: Rgb, r: number): void {
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r) this.set(x + dx, y + dy, c);
  }

  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)) * 2));
    const r = Math.floor(thickness / 2);
    for (let i = 0; i <= steps; i++) {
      const t = i / steps;
      const x = x0 + (x1 - x0) * t;
      const y = y0 + (y1 - y0) * t;
      if (r === 0) this.set(x, y, c);
      else this.dot(x, y, c, r);
    }
  }

  text(x: number, y: number, s: string, c: Rgb, scale = 2): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = GLYPHS[ch] ?? EXTRA_GLYPHS[ch] ?? GLYPHS[' '];
      for (let gy = 0; gy < 7; gy++) {
        for (let gx = 0; gx < 5; gx++) {
          if (g[gy][gx] !== '1') continue;
          for (let sy = 0; sy < scale; sy++) for (let sx = 0; sx < scale; sx++) this.set(cx + gx * scale + sx, y + gy * scale + sy, c);
        }
      }
      cx += 6 * scale;
    }
  }
}

export interface CurvePlotOptions {
  size?: number;
  title: string;
  xLabel: string;
  yLabel: string;
  /** draw the chance diagonal (ROC) */
  diagonal?: boolean;
  /** the operating point to mark, in [0,1]^2 */
  marker?: { x: number; y: number } | null;
  /** a horizontal no-skill line at this height (PR: the prevalence) */
  noSkill?: number | null;
  /** a shaded band around the curve (bootstrap percentiles) */
  band?: CurveBand | null;
  /** a second title line (n, prevalence, model version) */
  subtitle?: string;
  /** legend text for the marker (e.g. the threshold) */
  markerLabel?: string;
}

/** What a curve plot says about the data it was drawn from. */
export interface PlotContext {
  n: number;
  prevalence: number;
  /** the classifier version, e.g. v20261129-152734 */
  version: string;
  band?: CurveBand | null;
}

const BAND: Rgb = [205, 222, 245];

function subtitleOf(ctx: PlotContext | undefined): string | undefined {
  return ctx ? `N=${ctx.n} PREVALENCE ${ctx.prevalence.toFixed(3)} ${ctx.version}` : undefined;
}

const AXIS: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const CURVE: Rgb = [31, 90, 200];
const MARK: Rgb = [215, 40, 40];
const CHANCE: Rgb = [160, 160, 160];

/** A square plot of the curve through `xy` (each in [0,1]). */
export function plotCurve(xy: readonly { x: number; y: number }[], opts: CurvePlotOptions): RgbImage {
  const size = opts.size ?? 480;
  const c = new Canvas(size, size);
  const left = 56;
  const top = 40;
  const right = size - 20;
  const bottom = size - 50;
  const px = (x: number) => left + x * (right - left);
  const py = (y: number) => bottom - y * (bottom - top);
  for (let i = 0; i <= 10; i++) {
    c.line(px(i / 10), top, px(i / 10), bottom, GRID);
    c.line(left, py(i / 10), right, py(i / 10), GRID);
  }
  if (opts.band) {
    // vertical strokes between the percentiles at each grid point, joined across the gaps
    const b = opts.band;
    for (let i = 0; i + 1 < b.x.length; i++) {
      if (!Number.isFinite(b.lo[i]) || !Number.isFinite(b.hi[i])) continue;
      for (let xp = px(b.x[i]); xp <= px(b.x[i + 1]); xp++) c.line(xp, py(b.lo[i]), xp, py(b.hi[i]), BAND);
    }
  }
  if (opts.diagonal) c.line(px(0), py(0), px(1), py(1), CHANCE);
  if (opts.noSkill != null) c.line(px(0), py(opts.noSkill), px(1), py(opts.noSkill), CHANCE);
  c.line(left, bottom, right, bottom, AXIS, 2);
  c.line(left, top, left, bottom, AXIS, 2);
  for (const v of [0, 0.5, 1]) {
    const label = v === 0.5 ? '0.5' : String(v);
    c.text(px(v) - (label.length * 6) / 2, bottom + 8, label, AXIS, 1);
    c.text(left - 8 - label.length * 6, py(v) - 3, label, AXIS, 1);
  }
  for (let i = 1; i < xy.length; i++) c.line(px(xy[i - 1].x), py(xy[i - 1].y), px(xy[i].x), py(xy[i].y), CURVE, 3);
  if (opts.marker) c.dot(px(opts.marker.x), py(opts.marker.y), MARK, 5);
  c.text(left, 12, opts.title, AXIS, 2);
  if (opts.subtitle) c.text(left + opts.title.length * 12 + 12, 16, opts.subtitle, AXIS, 1);
  // legend, lower right of the plot area
  const legend: [Rgb, string][] = [];
  if (opts.marker && opts.markerLabel) legend.push([MARK, opts.markerLabel]);
  if (opts.band) legend.push([BAND, `BOOTSTRAP 95% BAND (${opts.band.samples})`]);
  if (opts.noSkill != null) legend.push([CHANCE, `NO SKILL ${opts.noSkill.toFixed(3)}`]);
  else if (opts.diagonal) legend.push([CHANCE, 'NO SKILL']);
  legend.forEach(([colour, text], i) => {
    const y = bottom - 14 - (legend.length - 1 - i) * 12;
    const x = right - 8 - text.length * 6 - 14;
    c.dot(x, y + 3, colour, 4);
    c.text(x + 10, y, text, AXIS, 1);
  });
  c.text((left + right) / 2 - opts.xLabel.length * 6, size - 28, opts.xLabel, AXIS, 2);
  // the y label runs along the top of the axis (the font has no rotated glyphs)
  c.text(left + 6, top + 6, opts.yLabel, AXIS, 1);
  return c;
}

/**
 * Reliability diagram: observed pneumonia frequency against mean predicted probability per
 * non-empty bin, with the diagonal a calibrated model would follow; ECE in the title.
 */
export function reliabilityPlot(report: CalibrationReport): RgbImage {
  const pts = report.bins.filter((b) => b.n > 0).map((b) => ({ x: b.meanPredicted!, y: b.observed! }));
  const img = plotCurve(pts, { title: `ECE ${report.ece.toFixed(3)}`, xLabel: 'PREDICTED', yLabel: 'OBSERVED', diagonal: true, marker: null });
  // each bin's point, so a bin alone between empty ones still shows
  const size = img.width;
  const canvas = img as Canvas;
  for (const p of pts) canvas.dot(56 + p.x * (size - 20 - 56), size - 50 - p.y * (size - 50 - 40), CURVE, 4);
  return img;
}

export function rocPlot(points: readonly CurvePoint[], auc: number | null, threshold: number | null, ctx?: PlotContext): RgbImage {
  const marker = threshold == null ? null : markerAt(points, threshold, (p) => ({ x: p.fpr, y: p.tpr }));
  return plotCurve(
    points.map((p) => ({ x: p.fpr, y: p.tpr })),
    {
      title: `ROC AUC ${auc == null ? '-' : auc.toFixed(3)}`,
      xLabel: 'FPR',
      yLabel: 'TPR',
      diagonal: true,
      marker,
      markerLabel: threshold == null ? undefined : `OPERATING POINT T=${threshold.toFixed(3)}`,
      band: ctx?.band,
      subtitle: subtitleOf(ctx),
    },
  );
}

export function precisionRecallPlot(points: readonly CurvePoint[], ap: number | null, threshold: number | null, ctx?: PlotContext): RgbImage {
  // the curve starts at the first real operating point: at +Infinity precision is undefined
  const real = points.filter((p) => p.precision != null);
  const marker = threshold == null ? null : markerAt(real, threshold, (p) => ({ x: p.recall, y: p.precision ?? 0 }));
  return plotCurve(
    real.map((p) => ({ x: p.recall, y: p.precision ?? 0 })),
    {
      title: `PR AP ${ap == null ? '-' : ap.toFixed(3)}`,
      xLabel: 'RECALL',
      yLabel: 'PRECISION',
      marker,
      markerLabel: threshold == null ? undefined : `OPERATING POINT T=${threshold.toFixed(3)}`,
      // a classifier that says positive at random has precision = prevalence at every recall
      noSkill: ctx?.prevalence,
      band: ctx?.band,
      subtitle: subtitleOf(ctx),
    },
  );
}

/** The operating point at the lowest listed threshold still >= t (what `score >= t` predicts). */
function markerAt(points: readonly CurvePoint[], t: number, xy: (p: CurvePoint) => { x: number; y: number }): { x: number; y: number } | null {
  let best: CurvePoint | null = null;
  for (const p of points) if (p.threshold >= t && (best == null || p.threshold < best.threshold)) best = p;
  return best ? xy(best) : null;
}

/**
 * Text in the plots' 5x7 bitmap font (upper case; unknown characters as spaces) drawn into
 * an RGB image at (x, y), each font pixel `scale` pixels square; for captions outside plots.
 */
export function drawText(img: RgbImage, x: number, y: number, s: string, color: Rgb, scale = 1): void {
  new Canvas(img.width, img.height, img.data).text(x, y, s, color, scale);
}

/** Width in pixels of `s` drawn by drawText at `scale`. */
export function textWidth(s: string, scale = 1): number {
  return s.length === 0 ? 0 : (s.length * 6 - 1) * scale;
}
