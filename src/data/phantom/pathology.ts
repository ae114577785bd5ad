/**
 * Pneumonia as the radiologist sees it: air in the airspaces replaced by fluid, so a region
 * of lung becomes denser (the consolidation fraction C in [0,1]). Three families with varied
 * size, density, edge blur and position, including subtle ones:
 * - lobar consolidation: a lobe or segment, sharp against a fissure, soft elsewhere, often
 *   with air bronchograms, hiding the heart border or a dome next to it (silhouette sign);
 * - patchy bronchopneumonia: clusters of ill-defined blobs, often basal, one or both sides;
 * - interstitial: a fine reticular/hazy pattern over large perihilar or basal zones.
 * Opacity never leaves the lung fields.
 */
import { gaussianBlurInPlace } from '../../imaging/blur.js';
import type { Rng } from '../rng.js';
import type { Anatomy, LungGeometry } from './anatomy.js';
import { addEllipse, smoothstep, strokePolyline, valueNoise, type Canvas } from './canvas.js';

export type PneumoniaPattern = 'lobar' | 'patchy' | 'interstitial';
export type Lobe = 'RUL' | 'RML' | 'RLL' | 'LUL' | 'lingula' | 'LLL';

export interface PneumoniaSpec {
  pattern: PneumoniaPattern;
  /** 0..1: peak consolidation fraction scale; below ~0.45 the finding is subtle */
  severity: number;
  /** lobe for lobar; main zone side(s) otherwise */
  lobe: Lobe | null;
  sides: ('R' | 'L')[];
  /** edge blur, frame units */
  blur: number;
}

export function samplePneumonia(rng: Rng): PneumoniaSpec {
  const pattern = rng.weighted<PneumoniaPattern>({ lobar: 0.35, patchy: 0.4, interstitial: 0.25 });
  const subtle = rng.chance(0.3);
  const severity = subtle ? rng.uniform(0.28, 0.45) : rng.uniform(0.45, 1);
  const bilateral = pattern === 'interstitial' ? rng.chance(0.75) : pattern === 'patchy' ? rng.chance(0.4) : false;
  const first: 'R' | 'L' = rng.chance(0.58) ? 'R' : 'L';
  const sides: ('R' | 'L')[] = bilateral ? ['R', 'L'] : [first];
  let lobe: Lobe | null = null;
  if (pattern === 'lobar') lobe = first === 'R' ? rng.pick(['RUL', 'RML', 'RLL', 'RLL'] as const) : rng.pick(['LUL', 'lingula', 'LLL', 'LLL'] as const);
  return { pattern, severity, lobe, sides, blur: rng.uniform(0.004, 0.02) };
}

export function describePneumonia(p: PneumoniaSpec): string {
  const where = p.lobe ?? p.sides.join('+');
  return `${p.pattern}:${where}:${p.severity < 0.45 ? 'subtle' : p.severity < 0.75 ? 'moderate' : 'dense'}`;
}

/** The consolidation field C on the canvas; `lung` is the sharp lung-field indicator. */
export function renderOpacity(spec: PneumoniaSpec, a: Anatomy, c: Canvas, rng: Rng, lung: Float32Array): Float32Array {
  const C = c.buffer();
  if (spec.pattern === 'lobar') lobar(C, spec, a, c, rng);
  else if (spec.pattern === 'patchy') patchy(C, spec, a, c, rng);
  else interstitial(C, spec, a, c, rng);
  gaussianBlurInPlace(C, c.width, c.height, spec.blur * a.s * c.scale * 0.5);
  for (let k = 0; k < C.length; k++) C[k] = Math.min(1, Math.max(0, C[k])) * lung[k];
  return C;
}

function lungOf(a: Anatomy, side: 'R' | 'L'): LungGeometry {
  return side === 'R' ? a.right : a.left;
}

function lobar(C: Float32Array, spec: PneumoniaSpec, a: Anatomy, c: Canvas, rng: Rng): void {
  const lobe = spec.lobe ?? 'RLL';
  const lung = lungOf(a, lobe.startsWith('R') ? 'R' : 'L');
  const s = a.s;
  const side = lung.side;
  const top = lung.apex[1];
  const bottom = lung.cp[1];
  const hilY = lung.hilum[1];
  const latX = lung.cp[0];
  // Medial reference: the mediastinal border, not the heart apex (which lies far out on the left).
  const medX = a.xc + side * 0.05 * s;
  const fissure = hilY + rng.uniform(-0.03, 0.02) * s;
  const fissTilt = rng.normal(0, 0.04);
  // How much of the lobe is involved, and a lumpy envelope so it is not a cut-out shape.
  const extent = rng.uniform(0.5, 1);
  const lumps = valueNoise(rng.fork('lumps'), c, 0.05 * s);
  const peak = spec.severity * rng.uniform(0.75, 1);
  const cxFrac = (x: number): number => (x - medX) / (latX - medX); // 0 medial, 1 lateral
  for (let j = 0; j < c.height; j++) {
    const y = c.fy(j);
    if (y < top - 0.02 || y > bottom + 0.02) continue;
    for (let i = 0; i < c.width; i++) {
      const x = c.fx(i);
      const u = cxFrac(x);
      if (u < -0.3 || u > 1.3) continue;
      const fy = fissure + fissTilt * (x - medX) * side;
      let m: number;
      switch (lobe) {
        case 'RUL':
        case 'LUL':
          // Sharp against the fissure below; fades towards the apex with the extent.
          m = smoothstep(fy + 0.004 * s, fy - 0.004 * s, y) * smoothstep(top - 0.05, top + (fy - top) * (1 - extent), y);
          break;
        case 'RML':
        case 'lingula':
          // Medial, below the fissure, against the heart border (which it hides).
          m = smoothstep(fy - 0.004 * s, fy + 0.004 * s, y) * smoothstep(0.75, 0.25, u) * smoothstep(bottom + 0.01, bottom - 0.07 * s, y);
          break;
        default:
          // Lower lobe: densest at the base, fading upwards to a level set by the extent.
          m = smoothstep(hilY + (bottom - hilY) * (1 - extent) - 0.02, bottom - 0.05 * s, y) * (0.75 + 0.25 * smoothstep(0.2, 0.8, u));
      }
      if (m <= 0) continue;
      // Lumpy, not a cut-out: the noise both modulates the density and erodes the margins.
      const l = lumps[j * c.width + i];
      C[j * c.width + i] = peak * Math.max(0, Math.min(1, m * (1.1 + 0.5 * l) - 0.15));
    }
  }
  // Air bronchograms: open airways drawn dark through the consolidation.
  if (spec.severity > 0.55 && rng.chance(0.6)) {
    const br = c.buffer();
    const [hx, hy] = lung.hilum;
    const dirY = lobe.endsWith('UL') ? -1 : 1;
    for (let k = 0; k < 5; k++) {
      const ang = rng.uniform(0.2, 1.2);
      const len = rng.uniform(0.06, 0.12) * s;
      const ex = hx + side * Math.cos(ang) * len;
      const ey = hy + dirY * Math.sin(ang) * len;
      strokePolyline(br, c, [hx + side * 0.02 * s, hy, (hx + ex) / 2 + rng.normal(0, 0.006) * s, (hy + ey) / 2, ex, ey], {
        width: [0.007 * s, 0.005 * s, 0.003 * s],
        amp: 0.6,
        profile: 'tube',
        mode: 'max',
      });
    }
    for (let k = 0; k < C.length; k++) C[k] *= 1 - br[k];
  }
}

function patchy(C: Float32Array, spec: PneumoniaSpec, a: Anatomy, c: Canvas, rng: Rng): void {
  const s = a.s;
  for (const side of spec.sides) {
    const lung = lungOf(a, side);
    const top = lung.apex[1];
    const bottom = lung.cp[1];
    // Cluster centre: usually lower or mid zone.
    const zone = rng.weighted({ lower: 0.6, mid: 0.3, upper: 0.1 });
    const yc =
      zone === 'lower'
        ? bottom - (bottom - top) * rng.uniform(0.12, 0.3)
        : zone === 'mid'
          ? top + (bottom - top) * rng.uniform(0.4, 0.6)
          : top + (bottom - top) * rng.uniform(0.15, 0.3);
    const xc = lung.hilum[0] + (lung.cp[0] - lung.hilum[0]) * rng.uniform(0.25, 0.75);
    const spread = rng.uniform(0.05, 0.12) * s;
    const n = rng.int(6, 20);
    for (let k = 0; k < n; k++) {
      const bx = xc + rng.normal(0, spread);
      const by = yc + rng.normal(0, spread * 0.8);
      const r = rng.uniform(0.018, 0.055) * s;
      addEllipse(C, c, bx, by, r * rng.uniform(0.7, 1.3), r, rng.uniform(0, Math.PI), spec.severity * rng.uniform(0.5, 1.0), 'flat', 0.6);
    }
  }
  const tex = valueNoise(rng.fork('patch-tex'), c, 0.012 * s);
  for (let k = 0; k < C.length; k++) if (C[k] > 0) C[k] *= 0.7 + 0.3 * tex[k];
}

function interstitial(C: Float32Array, spec: PneumoniaSpec, a: Anatomy, c: Canvas, rng: Rng): void {
  const s = a.s;
  const fine = valueNoise(rng.fork('reticular'), c, rng.uniform(0.008, 0.016) * s);
  const haze = rng.uniform(0.25, 0.5);
  const basal = rng.chance(0.5);
  for (const side of spec.sides) {
    const lung = lungOf(a, side);
    const [hx, hy] = lung.hilum;
    const rx = Math.abs(lung.cp[0] - hx) * rng.uniform(0.7, 1.2);
    const ry = (lung.cp[1] - lung.apex[1]) * rng.uniform(0.35, 0.6);
    const cy = basal ? hy + (lung.cp[1] - hy) * 0.6 : hy;
    const cx = hx + (lung.cp[0] - hx) * 0.3;
    for (let j = 0; j < c.height; j++) {
      const dy = (c.fy(j) - cy) / ry;
      if (Math.abs(dy) > 1.6) continue;
      for (let i = 0; i < c.width; i++) {
        const dx = (c.fx(i) - cx) / rx;
        const r2 = dx * dx + dy * dy;
        if (r2 > 2.5) continue;
        const env = Math.exp(-r2 * 1.2);
        const k = j * c.width + i;
        // Ridged noise: thin bright lines where the noise crosses zero, a net of septal lines.
        const ridge = (1 - Math.abs(fine[k])) ** 4;
        C[k] = Math.max(C[k], spec.severity * env * (haze + 0.45 * ridge));
      }
    }
  }
}
