/**
 * The skeleton as seen on a frontal chest film: posterior and anterior rib arcs crossing
 * the lungs, clavicles, the thoracic spine, scapulae and humeral heads. Densities are in
 * the phantom's projected-density units (see render.ts).
 */
import type { Rng } from '../rng.js';
import { lateralXAt, type Anatomy, type Side } from './anatomy.js';
import { addEllipse, fillSoft, spline, strokePolyline, type Canvas } from './canvas.js';

export function drawRibs(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng, strength: number): void {
  const s = a.s;
  for (const side of [-1, 1] as Side[]) {
    const lung = side < 0 ? a.right : a.left;
    for (let k = 0; k < 11; k++) {
      const y0 = a.ribOrigins[k] + (side > 0 ? 0.004 * s : 0) + rng.normal(0, 0.004) * s;
      // Ribs wrap the lungs: the lateral turn sits just outside the lung border at that level.
      const yTurn = y0 + (0.055 + 0.005 * Math.min(k, 6)) * s;
      const lat = Math.abs(lateralXAt(lung, yTurn) - a.xc) + 0.014 * s;
      const first = k === 0;
      const widthPost = (first ? 0.018 : 0.021 + 0.0016 * Math.min(k, 7)) * s * a.patient.ribWidth * rng.uniform(0.85, 1.15);
      // Posterior arc: up and out from the spine, peaking in the medial third, then down to
      // the lateral turn; anterior arc: from the turn medially and steeply down.
      const rise = (first ? 0.012 : 0.03 - 0.0012 * k) * s;
      const fall = (first ? 0.04 : 0.09 + 0.007 * Math.min(k, 6)) * s;
      const drop = (first ? 0.04 : 0.07 + 0.007 * Math.min(k, 6)) * s;
      const sx = a.spineX(y0) + side * 0.022 * s;
      const X = (f: number): number => a.xc + side * f * lat;
      const yT = y0 + fall;
      const ctrl = [
        sx,
        y0,
        X(0.2),
        y0 - rise * 0.8,
        X(0.4),
        y0 - rise,
        X(0.62),
        y0 - rise * 0.2 + fall * 0.12,
        X(0.82),
        y0 + fall * 0.42,
        X(0.95),
        y0 + fall * 0.78,
        X(1.0),
        yT,
        X(0.97),
        yT + drop * 0.16,
        X(0.86),
        yT + drop * 0.45,
        X(0.66),
        yT + drop * 0.78,
        X(first ? 0.35 : 0.5),
        yT + drop,
      ];
      const pts = spline(ctrl, 8);
      const n = pts.length / 2;
      const turn = 5 * 8; // sample index of the lateral turn
      const w: number[] = [];
      const amp: number[] = [];
      for (let i = 0; i < n; i++) {
        if (i <= turn) {
          const t = i / turn;
          // The rib head near the spine is hidden by the mediastinum anyway.
          w.push(widthPost * (1 + (0.25 * Math.max(0, 0.15 - t)) / 0.15));
          amp.push(strength * Math.min(1, 0.25 + 0.75 * (t / 0.35)));
        } else {
          // Anterior ribs are further from the detector: wider, fainter, blurrier, and fade
          // out where the (invisible) costal cartilage takes over.
          const t = (i - turn) / (n - 1 - turn);
          w.push(widthPost * (1 + 0.4 * t));
          amp.push(strength * (0.7 - 0.35 * Math.sqrt(t)) * (1 - 0.8 * t * t) * Math.min(1, 0.5 + (i - turn) / 6));
        }
      }
      strokePolyline(buf, c, pts, { width: w, amp, profile: 'cortex' });
    }
  }
}

export function drawClavicles(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng, strength: number): void {
  const s = a.s;
  const ap = a.pose.view === 'AP';
  for (const side of [-1, 1] as Side[]) {
    const yMed = a.yApex + (ap ? 0.03 : 0.075) * s + rng.normal(0, 0.008) * s;
    const yLat = a.yAcromion + (ap ? 0.0 : -0.01) * s + rng.normal(0, 0.008) * s;
    const xMed = a.xc + side * 0.035 * s;
    // The clavicle reaches about as far out as the chest wall; the shoulder soft tissue goes further.
    const xLat = a.xc + side * Math.min(a.shoulderHalfWidth - 0.05 * s, a.bodyHalfWidth + 0.02 * s);
    const L = xLat - xMed;
    const ctrl = [
      xMed,
      yMed,
      xMed + L * 0.25,
      yMed - 0.004 * s,
      xMed + L * 0.55,
      (yMed + yLat) / 2 - 0.006 * s,
      xMed + L * 0.8,
      yLat + 0.002 * s,
      xLat,
      yLat - 0.008 * s,
    ];
    const pts = spline(ctrl, 10);
    const n = pts.length / 2;
    const w: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = i / (n - 1);
      w.push((0.028 - 0.009 * t + (0.008 * Math.max(0, t - 0.8)) / 0.2) * s);
    }
    strokePolyline(buf, c, pts, { width: w, amp: strength, profile: 'cortex' });
    // Acromion and the top of the humerus at the shoulder.
    addEllipse(buf, c, xLat + side * 0.03 * s, yLat + 0.035 * s, 0.045 * s, 0.05 * s, 0, strength * 0.75, 'cortex');
  }
}

export function drawSpine(buf: Float32Array, c: Canvas, a: Anatomy, strength: number): void {
  const s = a.s;
  const step = a.ribStep;
  const start = a.ribOrigins[0] - 4 * step;
  for (let k = 0; k < 22; k++) {
    const yTop = start + k * step;
    const h = step * 0.8;
    const yMid = yTop + h / 2;
    if (yMid > 1.3) break;
    const x = a.spineX(yMid);
    const cervical = yMid < a.yApex;
    const w = (cervical ? 0.042 : 0.052 + 0.012 * Math.max(0, (yMid - a.yHilum) / 0.4)) * s;
    // Vertebral body: a block with rounded corners, denser at its endplates.
    fillSoft(buf, c, [x - w / 2, yTop, x + w / 2, yTop, x + w / 2, yTop + h, x - w / 2, yTop + h], strength * 0.45, 0.005 * s);
    strokePolyline(buf, c, [x - w / 2, yTop, x + w / 2, yTop], { width: 0.005 * s, amp: strength * 0.2, profile: 'tube' });
    strokePolyline(buf, c, [x - w / 2, yTop + h, x + w / 2, yTop + h], { width: 0.005 * s, amp: strength * 0.2, profile: 'tube' });
    // Pedicles: two dense rings; spinous process: a teardrop on the midline.
    for (const side of [-1, 1]) {
      addEllipse(buf, c, x + side * w * 0.38, yMid - h * 0.15, w * 0.12, h * 0.22, 0, strength * 0.35, 'cortex');
    }
    addEllipse(buf, c, x, yMid + h * 0.25, w * 0.09, h * 0.28, 0, strength * 0.3, 'tube');
  }
}

export function drawScapulae(buf: Float32Array, c: Canvas, a: Anatomy, strength: number): void {
  if (strength <= 0) return;
  const s = a.s;
  for (const side of [-1, 1] as Side[]) {
    const lung = side < 0 ? a.right : a.left;
    const top = a.yAcromion + 0.03 * s;
    const bottom = a.yApex + 0.33 * s;
    const xOut = a.xc + side * (a.bodyHalfWidth + 0.01 * s);
    const xIn = lateralXAt(lung, (top + bottom) / 2) - side * 0.06 * s * strength;
    // The medial border: a faint line crossing the upper-lateral lung.
    const border = spline([xOut - side * 0.02 * s, top, xIn, top + (bottom - top) * 0.45, xIn + side * 0.03 * s, bottom], 10);
    strokePolyline(buf, c, border, { width: 0.01 * s, amp: 0.09 * strength, profile: 'cortex' });
    // The blade itself: a faint plate lateral to that border.
    fillSoft(buf, c, [xOut, top, ...border, xOut, bottom + 0.02 * s], 0.05 * strength, 0.012 * s);
  }
}

export type { Side };
