/**
 * Pulmonary vessels: trees branching from each hilum, tapering towards the periphery and
 * stopping at the lung border, as the "lung markings" of a normal film. A vessel's
 * projected density grows with its diameter.
 */
import type { Rng } from '../rng.js';
import type { LungGeometry } from './anatomy.js';
import { insidePolygon } from './canvas.js';

export interface VesselSegment {
  pts: number[];
  width: number[];
  amp: number[];
}

export function growVessels(rng: Rng, lung: LungGeometry, s: number, crowding: number): VesselSegment[] {
  const out: VesselSegment[] = [];
  const side = lung.side;
  const [hx, hy] = lung.hilum;
  // Main trunks: angle measured from the lateral direction, positive upwards.
  const trunks = [80, 62, 44, 26, 8, -10, -28, -46, -62, -78, -92];
  for (const deg of trunks) {
    const ang = ((deg + rng.normal(0, 6)) * Math.PI) / 180;
    const dir: [number, number] = [side * Math.cos(ang), -Math.sin(ang)];
    // Lower-lobe vessels are larger and longer; with shallow breathing they crowd together.
    const lower = deg < 0;
    const w0 = (lower ? 0.02 : 0.016) * s;
    const len = (lower ? 0.05 : 0.045) * s * crowding;
    // Trunks leave the hilum along its height, not from one point.
    const oy = hy + rng.uniform(-0.05, 0.05) * s - Math.sin(ang) * 0.025 * s;
    branch(rng, lung, out, hx + dir[0] * 0.012 * s, oy, dir, len, w0, 0, s);
  }
  return out;
}

function branch(
  rng: Rng,
  lung: LungGeometry,
  out: VesselSegment[],
  x: number,
  y: number,
  dir: [number, number],
  len: number,
  width: number,
  depth: number,
  s: number,
): void {
  if (width < 0.003 * s || depth > 7) return;
  const pts = [x, y];
  const ws = [width];
  const as = [ampFor(width, s)];
  let cx = x;
  let cy = y;
  let [dx, dy] = dir;
  const steps = 3;
  let ended = false;
  for (let k = 1; k <= steps; k++) {
    // Gentle wander so vessels are not ruler-straight.
    const turn = rng.normal(0, 0.1);
    const c = Math.cos(turn);
    const sn = Math.sin(turn);
    [dx, dy] = [dx * c - dy * sn, dx * sn + dy * c];
    const nx = cx + (dx * len) / steps;
    const ny = cy + (dy * len) / steps;
    if (!insidePolygon(lung.outline, nx, ny)) {
      ended = true;
      break;
    }
    cx = nx;
    cy = ny;
    const w = width * (1 - 0.12 * (k / steps));
    pts.push(cx, cy);
    ws.push(w);
    as.push(ampFor(w, s));
  }
  if (pts.length >= 4) out.push({ pts, width: ws, amp: as });
  if (ended) return;
  const children = rng.chance(0.2) ? 3 : 2;
  const spread = rng.uniform(0.3, 0.6);
  for (let k = 0; k < children; k++) {
    const a = (k - (children - 1) / 2) * spread + rng.normal(0, 0.1);
    const c = Math.cos(a);
    const sn = Math.sin(a);
    const nd: [number, number] = [dx * c - dy * sn, dx * sn + dy * c];
    // The daughter continuing straight keeps more calibre than the side branch.
    const main = Math.abs(a) < spread * 0.4 || (children === 2 && k === 0);
    const wf = main ? rng.uniform(0.76, 0.86) : rng.uniform(0.6, 0.74);
    branch(rng, lung, out, cx, cy, nd, len * rng.uniform(0.72, 0.9), width * wf, depth + 1, s);
  }
}

function ampFor(width: number, s: number): number {
  // Density of a cylinder seen side-on scales with its diameter.
  return 0.05 * (width / (0.01 * s)) ** 0.9;
}
