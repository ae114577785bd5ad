/**
 * Things on and in the patient that are not pneumonia: lead markers and annotations, ECG
 * electrodes and wires, central lines, nasogastric and endotracheal tubes, a pacemaker,
 * sternal wires, a solitary nodule or calcified granuloma, nipple shadows, a necklace.
 * Normal and pneumonia studies carry them at the same rates, so "a bright blob" or "a tube"
 * says nothing about the label.
 */
import type { Rng } from '../rng.js';
import type { Anatomy, LungGeometry } from './anatomy.js';
import { addEllipse, addRect, ellipsePoints, fillSoft, insidePolygon, spline, strokePolyline, type Canvas } from './canvas.js';
import { textCells, textWidthCells } from './font.js';

export type DeviceKind =
  | 'marker'
  | 'annotation'
  | 'ecg'
  | 'central-line'
  | 'ng-tube'
  | 'et-tube'
  | 'pacemaker'
  | 'sternal-wires'
  | 'nodule'
  | 'granuloma'
  | 'nipples'
  | 'necklace';

export function sampleDevices(rng: Rng, a: Anatomy): DeviceKind[] {
  const ap = a.pose.view === 'AP';
  const icu = ap && rng.chance(0.45);
  const out: DeviceKind[] = [];
  if (rng.chance(0.85)) out.push('marker');
  if (rng.chance(ap ? 0.55 : 0.15)) out.push('annotation');
  if (rng.chance(icu ? 0.85 : 0.15)) out.push('ecg');
  if (rng.chance(icu ? 0.6 : 0.06)) out.push('central-line');
  if (rng.chance(icu ? 0.35 : 0.02)) out.push('ng-tube');
  if (rng.chance(icu ? 0.3 : 0.01)) out.push('et-tube');
  if (rng.chance(0.05)) out.push('pacemaker');
  if (rng.chance(0.06)) out.push('sternal-wires');
  if (rng.chance(0.1)) out.push('nodule');
  if (rng.chance(0.1)) out.push('granuloma');
  if (rng.chance(a.patient.sex === 'F' ? 0.12 : 0.08)) out.push('nipples');
  if (rng.chance(0.04)) out.push('necklace');
  return out;
}

/** Draws the devices into `buf` (projected density, added on top of the patient). */
export function drawDevices(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng, kinds: readonly DeviceKind[]): void {
  for (const kind of kinds) {
    const r = rng.fork(kind);
    switch (kind) {
      case 'marker':
        marker(buf, c, a, r);
        break;
      case 'annotation':
        annotation(buf, c, a, r);
        break;
      case 'ecg':
        ecg(buf, c, a, r);
        break;
      case 'central-line':
        centralLine(buf, c, a, r);
        break;
      case 'ng-tube':
        ngTube(buf, c, a, r);
        break;
      case 'et-tube':
        etTube(buf, c, a, r);
        break;
      case 'pacemaker':
        pacemaker(buf, c, a, r);
        break;
      case 'sternal-wires':
        sternalWires(buf, c, a, r);
        break;
      case 'nodule':
        nodule(buf, c, a, r, false);
        break;
      case 'granuloma':
        nodule(buf, c, a, r, true);
        break;
      case 'nipples':
        nipples(buf, c, a, r);
        break;
      case 'necklace':
        necklace(buf, c, a, r);
        break;
    }
  }
}

const METAL = 4;

function drawText(buf: Float32Array, c: Canvas, text: string, x: number, y: number, cell: number, amp: number): void {
  for (const [cx, cy] of textCells(text)) addRect(buf, c, x + cx * cell, y + cy * cell, x + (cx + 1) * cell, y + (cy + 1) * cell, amp);
}

function marker(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  // The side marker sits in a top corner (or a lower one), often boxed, sometimes with initials.
  const letter = rng.chance(0.8) ? 'L' : 'R';
  const cell = rng.uniform(0.004, 0.007);
  const right = letter === 'L' ? rng.chance(0.85) : rng.chance(0.15);
  const w = textWidthCells(letter) * cell;
  const x = right ? a.pose.aspect - rng.uniform(0.03, 0.12) - w : rng.uniform(0.03, 0.12);
  const y = rng.chance(0.8) ? rng.uniform(0.02, 0.12) : rng.uniform(0.75, 0.93);
  drawText(buf, c, letter, x, y, cell, METAL);
  if (rng.chance(0.4)) {
    const pad = cell * 2;
    const box = [x - pad, y - pad, x + w + pad, y - pad, x + w + pad, y + 7 * cell + pad, x - pad, y + 7 * cell + pad, x - pad, y - pad];
    strokePolyline(buf, c, box, { width: cell * 0.8, amp: METAL * 0.5, profile: 'flat', mode: 'max' });
  }
  if (rng.chance(0.35)) drawText(buf, c, rng.pick(['AB', 'GH', 'MC', 'TS', 'RE', 'PN']), x, y + 9 * cell, cell * 0.6, METAL * 0.7);
}

function annotation(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const text = rng.pick(['PORTABLE', 'AP', 'SUPINE', 'UPRIGHT', 'SEMI-ERECT', 'ERECT', 'PORTABLE AP']);
  const cell = rng.uniform(0.0025, 0.0045);
  const w = textWidthCells(text) * cell;
  const x = rng.chance(0.5) ? rng.uniform(0.02, 0.1) : a.pose.aspect - w - rng.uniform(0.02, 0.1);
  const y = rng.uniform(0.02, 0.45);
  drawText(buf, c, text, x, y, cell, METAL);
}

function ecg(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const n = rng.int(2, 5);
  for (let k = 0; k < n; k++) {
    const x = a.xc + rng.uniform(-1, 1) * a.bodyHalfWidth * 0.95;
    const y = a.yApex + rng.uniform(-0.08, 0.45) * s;
    const r = rng.uniform(0.011, 0.017) * s;
    strokePolyline(buf, c, ellipsePoints(x, y, r, r, 28), { width: r * 0.35, amp: 0.35, profile: 'tube', mode: 'max' });
    addEllipse(buf, c, x, y, r * 0.32, r * 0.32, 0, METAL * 0.6, 'flat', 0.2);
    // The wire wanders off to the nearest side or the top.
    const tx = x < a.xc ? -0.1 : a.pose.aspect + 0.1;
    const ty = y + rng.uniform(-0.3, 0.3);
    const wire = spline(
      [
        x,
        y,
        x + (tx - x) * 0.3 + rng.normal(0, 0.05),
        y + rng.normal(0, 0.08),
        x + (tx - x) * 0.7 + rng.normal(0, 0.05),
        (y + ty) / 2 + rng.normal(0, 0.08),
        tx,
        ty,
      ],
      14,
    );
    strokePolyline(buf, c, wire, { width: rng.uniform(0.0025, 0.004), amp: 0.9, profile: 'tube', mode: 'max' });
  }
}

function centralLine(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const side = rng.chance(0.6) ? -1 : 1;
  const tipY = a.yHilum + rng.uniform(-0.02, 0.07) * s;
  const ctrl = [
    a.xc + side * (a.shoulderHalfWidth - 0.06 * s),
    a.yAcromion + 0.06 * s,
    a.xc + side * 0.2 * s,
    a.yApex + 0.06 * s,
    a.xc + side * 0.08 * s,
    a.yApex + 0.09 * s,
    a.xc - 0.045 * s,
    a.yApex + 0.16 * s,
    a.xc - 0.045 * s,
    tipY,
  ];
  strokePolyline(buf, c, spline(ctrl, 14), { width: rng.uniform(0.003, 0.005) * s, amp: 0.9, profile: 'tube', mode: 'max' });
}

function ngTube(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const gx = a.left.cardio[0] + (a.left.cp[0] - a.left.cardio[0]) * 0.4;
  const gy = a.left.domeTop + 0.08 * s;
  const ctrl = [
    a.xc + 0.005 * s,
    -0.1,
    a.xc + 0.01 * s,
    a.yApex,
    a.xc + 0.015 * s,
    a.yHilum,
    a.xc + 0.03 * s,
    a.left.cardio[1] + 0.03 * s,
    gx,
    gy,
    gx + rng.uniform(-0.05, 0.05) * s,
    gy + 0.06 * s,
  ];
  const pts = spline(ctrl, 14);
  strokePolyline(buf, c, pts, { width: 0.007 * s, amp: 0.5, profile: 'tube', mode: 'max' });
  strokePolyline(buf, c, pts, { width: 0.0025 * s, amp: 1.2, profile: 'flat', mode: 'max' });
}

function etTube(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const x = a.spineX(a.yApex);
  const tip = a.yHilum - (0.08 + rng.uniform(0, 0.04)) * s;
  const w = 0.014 * s;
  strokePolyline(buf, c, [x - w / 2, -0.1, x - w / 2, tip], { width: 0.002 * s, amp: 0.6, profile: 'tube', mode: 'max' });
  strokePolyline(buf, c, [x + w / 2, -0.1, x + w / 2, tip], { width: 0.002 * s, amp: 0.6, profile: 'tube', mode: 'max' });
  strokePolyline(buf, c, [x - w * 0.2, -0.1, x - w * 0.2, tip], { width: 0.0025 * s, amp: 1.5, profile: 'flat', mode: 'max' });
}

function pacemaker(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const side = rng.chance(0.8) ? 1 : -1;
  const px = a.xc + side * rng.uniform(0.2, 0.28) * s;
  const py = a.yApex + rng.uniform(0.04, 0.1) * s;
  const w = 0.035 * s;
  const h = 0.026 * s;
  fillSoft(buf, c, [px - w, py - h, px + w, py - h, px + w, py + h, px - w, py + h], METAL, 0.003 * s);
  const heartX = a.xc + rng.uniform(0.02, 0.12) * s;
  const heartY = a.left.cardio[1] - rng.uniform(0.02, 0.06) * s;
  for (let k = 0; k < rng.int(1, 2); k++) {
    const lead = spline(
      [px - side * w, py, a.xc + side * 0.06 * s, a.yApex + 0.1 * s, a.xc - 0.04 * s, a.yHilum + 0.02 * s, heartX + k * 0.03 * s, heartY],
      16,
    );
    strokePolyline(buf, c, lead, { width: 0.004 * s, amp: 1.5, profile: 'tube', mode: 'max' });
  }
}

function sternalWires(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const n = rng.int(4, 7);
  const y0 = a.yApex + 0.1 * s;
  const y1 = a.yHilum + 0.2 * s;
  for (let k = 0; k < n; k++) {
    const y = y0 + ((y1 - y0) * k) / (n - 1);
    const x = a.xc + rng.normal(0, 0.004) * s;
    strokePolyline(buf, c, ellipsePoints(x, y, 0.012 * s, 0.006 * s, 18), { width: 0.0035 * s, amp: METAL * 0.5, profile: 'tube', mode: 'max' });
    strokePolyline(buf, c, [x, y - 0.006 * s, x + 0.004 * s, y - 0.014 * s], { width: 0.003 * s, amp: METAL * 0.5, profile: 'tube', mode: 'max' });
  }
}

function pointInLung(rng: Rng, lung: LungGeometry): [number, number] {
  const minY = lung.apex[1];
  const maxY = lung.cp[1];
  const xs = [lung.cp[0], lung.cardio[0]];
  for (let k = 0; k < 50; k++) {
    const x = Math.min(...xs) + rng.next() * Math.abs(xs[1] - xs[0]);
    const y = minY + rng.next() * (maxY - minY);
    if (insidePolygon(lung.outline, x, y)) return [x, y];
  }
  return lung.hilum;
}

function nodule(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng, calcified: boolean): void {
  const s = a.s;
  const [x, y] = pointInLung(rng, rng.chance(0.5) ? a.right : a.left);
  if (calcified) {
    const r = rng.uniform(0.003, 0.006) * s;
    addEllipse(buf, c, x, y, r, r, 0, 0.9, 'tube');
  } else {
    const r = rng.uniform(0.007, 0.02) * s;
    addEllipse(buf, c, x, y, r, r * rng.uniform(0.85, 1.1), rng.next() * Math.PI, rng.uniform(0.25, 0.5), 'tube');
  }
}

function nipples(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const y = Math.max(a.right.cp[1], a.left.cp[1]) - rng.uniform(0.06, 0.14) * s;
  for (const side of [-1, 1]) {
    const x = a.xc + side * a.bodyHalfWidth * rng.uniform(0.45, 0.6);
    const r = rng.uniform(0.006, 0.011) * s;
    addEllipse(buf, c, x, y + rng.normal(0, 0.01) * s, r, r, 0, rng.uniform(0.12, 0.25), 'tube');
  }
}

function necklace(buf: Float32Array, c: Canvas, a: Anatomy, rng: Rng): void {
  const s = a.s;
  const depth = rng.uniform(0.04, 0.12) * s;
  const half = a.neckHalfWidth * 1.1;
  const n = 26;
  for (let k = 0; k <= n; k++) {
    const t = k / n;
    const x = a.xc - half + 2 * half * t;
    const y = a.yNeckBase + 0.02 * s + depth * Math.sin(Math.PI * t);
    addEllipse(buf, c, x, y, 0.003 * s, 0.003 * s, 0, METAL * 0.4, 'tube');
  }
  if (rng.chance(0.6)) addEllipse(buf, c, a.xc, a.yNeckBase + 0.03 * s + depth, 0.01 * s, 0.012 * s, 0, METAL * 0.5, 'tube');
}
