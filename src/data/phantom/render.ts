/**
 * Composes a chest phantom in "projected density" D (a soft-tissue-equivalent path length,
 * arbitrary units): body soft tissue, minus the air of the lungs, plus the heart, abdomen,
 * vessels and bones, plus whatever pathology and devices put there. `toModality` then maps D
 * to HU-like modality values with a compressive curve, the way a radiograph's log-exposure
 * display compresses thick regions: air outside the body sits below the lung window (black),
 * aerated lung around -850..-650, the mediastinum and abdomen -250..0, bone brighter.
 */
import { gaussianBlurInPlace, smoothBlurInPlace } from '../../imaging/blur.js';
import { fillPolygons } from '../../imaging/polygon-fill.js';
import type { Rng } from '../rng.js';
import type { Anatomy } from './anatomy.js';
import { drawClavicles, drawRibs, drawScapulae, drawSpine } from './bones.js';
import { addEllipse, fillSoft, smoothstep, strokePolyline, valueNoise, type Canvas } from './canvas.js';
import { growVessels } from './vessels.js';

export interface RenderLayers {
  /** lung fields from lungFields(), when the caller already computed them */
  fields?: { sharp: Float32Array; depth: Float32Array };
  /** consolidation fraction C in [0,1] per pixel: the share of lung air replaced by fluid */
  opacity?: Float32Array;
  /** density added after everything else (devices, markers, skin objects) */
  overlay?: Float32Array;
}

export interface Rendered {
  density: Float32Array;
  /** blurred lung-field indicator, used by pathology to stay inside the lungs */
  lungSoft: Float32Array;
}

/**
 * Lung fields at the canvas: the sharp indicator (for placing pathology) and the projected
 * air depth. Where the lung meets the heart or the diaphragm the surface is tangential to the
 * beam, so the edge is crisp; at the lateral wall and the apex the lung thins gradually
 * under the ribs, so the darkness fades in over a few millimetres.
 */
export function lungFields(a: Anatomy, c: Canvas): { sharp: Float32Array; depth: Float32Array } {
  const bin = fillPolygons(c.width, c.height, [c.toPixels(a.right.outline), c.toPixels(a.left.outline)]);
  const edge = new Float32Array(bin.length);
  for (let k = 0; k < bin.length; k++) edge[k] = bin[k];
  const sharp = Float32Array.from(edge);
  const deep = Float32Array.from(edge);
  gaussianBlurInPlace(edge, c.width, c.height, a.pose.lungEdge * a.s * c.scale);
  smoothBlurInPlace(deep, c.width, c.height, 0.03 * a.s * c.scale);
  const crisp = fillPolygons(c.width, c.height, [c.toPixels(a.heart), c.toPixels(a.abdomen)]);
  const sel = new Float32Array(bin.length);
  for (let k = 0; k < bin.length; k++) sel[k] = crisp[k];
  smoothBlurInPlace(sel, c.width, c.height, 0.03 * a.s * c.scale);
  const depth = new Float32Array(bin.length);
  // Less air shows through at the bases (the domes curve down behind them, and breasts and
  // abdominal wall overlie them) and at the apices (under the clavicles and first ribs).
  const base = Math.min(a.right.cp[1], a.left.cp[1]);
  for (let j = 0; j < c.height; j++) {
    const y = c.fy(j);
    const zone = 1 - 0.32 * smoothstep(a.yHilum, base, y) - 0.15 * (1 - smoothstep(a.yApex, a.yApex + 0.12 * a.s, y));
    for (let i = 0, k = j * c.width; i < c.width; i++, k++) {
      if (edge[k] === 0) continue;
      const d = Math.min(1, deep[k] * 1.15);
      const g = Math.min(1, sel[k] * 1.6);
      depth[k] = edge[k] * (g + (1 - g) * d ** 0.85) * (0.72 + 0.28 * d) * zone;
    }
  }
  return { sharp, depth };
}

export function renderDensity(a: Anatomy, c: Canvas, rng: Rng, layers: RenderLayers = {}): Rendered {
  const W = c.width;
  const H = c.height;
  const s = a.s;
  const p = a.patient;
  const D = c.buffer();

  // Body: torso, neck and arms as cylinders seen side-on (thick in the middle, thin at the edges).
  const T = 1.15 * p.habitus;
  const hwB = a.bodyHalfWidth;
  const hwS = a.shoulderHalfWidth;
  const hwN = a.neckHalfWidth;
  const arms = a.pose.armsVisible;
  const rArm = (0.055 + 0.02 * p.habitus) * s;
  const lowest = Math.max(a.right.cp[1], a.left.cp[1]);
  for (let j = 0; j < H; j++) {
    const y = c.fy(j);
    const shoulderness = 1 - smoothstep(a.yAcromion, a.yAcromion + 0.2 * s, y);
    const waist = 1 - 0.06 * smoothstep(lowest, lowest + 0.25 * s, y);
    const hw = (hwB + (hwS - hwB) * shoulderness * (arms ? 0.55 : 1)) * waist;
    const neckFade = 1 - smoothstep(a.yApex - 0.02 * s, a.yApex + 0.12 * s, y);
    const upper = smoothstep(a.yApex - 0.06 * s, a.yApex + 0.1 * s, y);
    const row = j * W;
    for (let i = 0; i < W; i++) {
      const dx = Math.abs(c.fx(i) - a.xc);
      let body = 0;
      if (dx < hw) {
        const r = dx / hw;
        // The shoulder girdle above the lungs is thinner front-to-back than the chest.
        body = T * Math.sqrt(1 - r * r) * (0.72 + 0.28 * upper);
        // Shoulder line: from the side of the neck down to the acromion, then falling away.
        let yTop: number;
        if (dx <= hwN) yTop = -10;
        else if (dx <= hwS) {
          const t = (dx - hwN) / (hwS - hwN);
          yTop = a.yNeckBase + (a.yAcromion - a.yNeckBase) * (0.45 * t + 0.55 * Math.sqrt(t));
        } else yTop = a.yAcromion + (dx - hwS) * 1.5;
        body *= smoothstep(yTop - 0.012 * s, yTop + 0.03 * s, y);
      }
      if (dx < hwN) {
        const r = dx / hwN;
        body = Math.max(body, T * 0.7 * Math.sqrt(1 - r * r) * neckFade);
      }
      if (arms && y > a.yAcromion) {
        // Upper arms hang beside the chest, drifting outwards, with air in the axilla.
        const axisOff = hwS - rArm * 0.9 + (y - a.yAcromion) * 0.12;
        const d = Math.abs(dx - axisOff);
        if (d < rArm) body = Math.max(body, T * 0.78 * Math.sqrt(1 - (d / rArm) ** 2) * smoothstep(a.yAcromion, a.yAcromion + 0.04 * s, y));
      }
      D[row + i] = body;
    }
  }

  // Breasts: soft tissue in front of the lower chest, thickest at the lower fold.
  if (p.breast > 0.05) {
    for (const side of [-1, 1]) {
      const cx = a.xc + side * (hwB * 0.55 + rng.normal(0, 0.01) * s);
      const cy = lowest - 0.05 * s + rng.normal(0, 0.02) * s;
      const rx = (0.12 + 0.08 * p.breast) * s;
      const ry = (0.09 + 0.07 * p.breast) * s;
      const amp = 0.12 * p.breast;
      addBreast(D, c, cx, cy, rx, ry, amp);
    }
  }

  // Skin is not a knife edge: soften the outline a little.
  smoothBlurInPlace(D, W, H, 0.006 * s * c.scale);
  // Soft-tissue variation (fat, muscle, folds) so bodies are not perfect cylinders.
  const slow = valueNoise(rng.fork('slow'), c, 0.18);
  const mid = valueNoise(rng.fork('mid'), c, 0.05);
  const wob = rng.uniform(0.04, 0.1);
  for (let k = 0; k < D.length; k++) D[k] *= 1 + wob * slow[k] + 0.035 * mid[k];

  // Lung air, with the retrocardiac lung and the posterior recesses below the domes (both
  // air that is not part of the visible lung field).
  const { depth } = layers.fields ?? lungFields(a, c);
  const extraAir = c.buffer();
  fillSoft(extraAir, c, a.heart, 0.22, 0.03 * s);
  const C = layers.opacity;
  const airFrac = rng.uniform(0.6, 0.8);
  // Uneven aeration and overlying tissue: broad brighter and darker zones within the lungs.
  const zones = valueNoise(rng.fork('zones'), c, 0.12);
  const zoneAmp = rng.uniform(0.05, 0.18);
  for (let k = 0; k < D.length; k++) {
    const air = depth[k] * (1 + zoneAmp * zones[k]) * (C ? 1 - C[k] : 1) + extraAir[k];
    D[k] *= 1 - airFrac * Math.min(1, air);
  }

  // Heart and abdomen are denser than the mediastinal soft tissue around them.
  // The heart is denser than the mediastinum, but merges into it upwards (no top edge).
  const heartW = c.buffer();
  for (let j = 0; j < H; j++) {
    const w = smoothstep(a.yHilum - 0.04 * s, a.yHilum + 0.08 * s, c.fy(j));
    heartW.fill(w, j * W, (j + 1) * W);
  }
  fillSoft(D, c, a.heart, rng.uniform(0.06, 0.18), rng.uniform(0.003, 0.01) * s, heartW);
  const abd = c.buffer();
  fillSoft(abd, c, a.abdomen, rng.uniform(0.25, 0.45), 0.012 * s);
  for (let k = 0; k < D.length; k++) D[k] *= 1 + abd[k];
  // Gastric air bubble under the left dome, and gas in the bowel below it.
  if (rng.chance(0.75)) {
    const gx = a.left.cardio[0] + (a.left.cp[0] - a.left.cardio[0]) * rng.uniform(0.2, 0.5);
    const gy = a.left.domeTop + rng.uniform(0.07, 0.12) * s;
    addEllipse(D, c, gx, gy, rng.uniform(0.03, 0.06) * s, rng.uniform(0.02, 0.035) * s, rng.normal(0, 0.2), -rng.uniform(0.15, 0.35), 'flat', 0.35);
  }
  // Bowel gas: a few faint, irregular lucencies.
  const gas = rng.int(0, 5);
  for (let k = 0; k < gas; k++) {
    const gx = a.xc + rng.uniform(-0.9, 0.9) * a.bodyHalfWidth * 0.8;
    const gy = Math.max(a.right.cp[1], a.left.cp[1]) + rng.uniform(0.06, 0.3) * s;
    const r = rng.uniform(0.015, 0.04) * s;
    const blob: number[] = [];
    const lobes = rng.uniform(0, Math.PI * 2);
    for (let t = 0; t < 14; t++) {
      const th = (t / 14) * Math.PI * 2;
      const rr = r * (1 + 0.3 * Math.sin(3 * th + lobes) + rng.uniform(-0.15, 0.15));
      blob.push(gx + rr * Math.cos(th) * 1.3, gy + rr * Math.sin(th));
    }
    fillSoft(D, c, blob, -rng.uniform(0.05, 0.14), 0.006 * s);
  }

  // Trachea and main bronchi: an air column down the upper mediastinum.
  const carinaY = a.yHilum - 0.045 * s;
  const tx = a.spineX(a.yApex);
  strokePolyline(D, c, [tx, -0.2, tx, a.yApex, a.xc + 0.002 * s, carinaY], { width: 0.032 * s, amp: -0.2, profile: 'tube' });
  strokePolyline(D, c, [a.xc, carinaY, a.right.hilum[0] + 0.02 * s, a.right.hilum[1] - 0.01 * s], { width: 0.02 * s, amp: -0.12, profile: 'tube' });
  strokePolyline(D, c, [a.xc, carinaY, a.left.hilum[0] - 0.02 * s, a.left.hilum[1] - 0.005 * s], { width: 0.018 * s, amp: -0.12, profile: 'tube' });

  // Vessels and hila; hidden where consolidation replaces the air around them.
  const V = c.buffer();
  const vrng = rng.fork('vessels');
  for (const lung of [a.right, a.left]) {
    addEllipse(V, c, lung.hilum[0], lung.hilum[1], 0.04 * s, 0.06 * s, 0, 0.2, 'gauss');
    for (const seg of growVessels(vrng, lung, s, a.pose.inspiration < 0.95 ? 0.9 : 1)) {
      strokePolyline(V, c, seg.pts, { width: seg.width, amp: seg.amp, profile: 'tube' });
    }
  }
  gaussianBlurInPlace(V, W, H, 0.0028 * s * c.scale);
  // Parenchymal texture: faint mottling of the lung fields.
  const tex = valueNoise(rng.fork('texture'), c, 0.009);
  for (let k = 0; k < D.length; k++) {
    const hide = C ? 1 - C[k] : 1;
    D[k] += (V[k] * (0.4 + 0.6 * depth[k]) + 0.03 * tex[k] * depth[k]) * hide;
  }

  // Bones. Their contrast falls where they overlie thick soft tissue (scatter, and the
  // display's compression of dense regions): ribs are plain over the lungs, faint over the
  // heart and abdomen, as on real films.
  const B = c.buffer();
  const brng = rng.fork('bones');
  drawRibs(B, c, a, brng, 0.12);
  drawClavicles(B, c, a, brng, 0.45);
  drawScapulae(B, c, a, a.pose.scapulaOverlap);
  for (let k = 0; k < D.length; k++) {
    if (B[k] === 0) continue;
    const u = D[k] / 0.95;
    D[k] += B[k] / (1 + u * u * u);
  }
  // The spine is thick enough to show through the mediastinum.
  B.fill(0);
  drawSpine(B, c, a, 0.3);
  for (let k = 0; k < D.length; k++) {
    if (B[k] === 0) continue;
    const u = D[k] / 1.4;
    D[k] += B[k] / (1 + u * u);
  }

  if (layers.overlay) for (let k = 0; k < D.length; k++) D[k] += layers.overlay[k];
  return { density: D, lungSoft: depth };
}

function addBreast(D: Float32Array, c: Canvas, cx: number, cy: number, rx: number, ry: number, amp: number): void {
  const i0 = Math.max(0, Math.floor(c.px(cx - rx * 1.2)));
  const i1 = Math.min(c.width - 1, Math.ceil(c.px(cx + rx * 1.2)));
  const j0 = Math.max(0, Math.floor(c.py(cy - ry * 1.6)));
  const j1 = Math.min(c.height - 1, Math.ceil(c.py(cy + ry * 1.2)));
  for (let j = j0; j <= j1; j++) {
    const y = c.fy(j);
    for (let i = i0; i <= i1; i++) {
      const u = (c.fx(i) - cx) / rx;
      const v = (y - cy) / ry;
      const r2 = u * u + v * v;
      if (r2 >= 1.3) continue;
      // Thickest near the lower fold, fading upwards; a crisp lower-lateral edge.
      const edge = smoothstep(1.0, 0.8, Math.sqrt(r2));
      const up = smoothstep(-1.6, 0.6, v);
      D[j * c.width + i] += amp * edge * up;
    }
  }
}

export interface Exposure {
  /** modality value of direct exposure (no patient) */
  air: number;
  /** modality value of a thick abdomen (D = 1.8) */
  abdomen: number;
  /** curvature of the compression: larger = thick parts saturate sooner */
  k: number;
}

export function sampleExposure(rng: Rng): Exposure {
  return { air: rng.chance(0.75) ? rng.uniform(-1400, -1250) : rng.uniform(-1250, -1000), abdomen: rng.uniform(-160, 110), k: rng.uniform(0.7, 1.5) };
}

/** D → HU-like modality value, in place. */
export function toModality(D: Float32Array, e: Exposure): Float32Array {
  const G = (e.abdomen - e.air) / (1 - Math.exp(-1.8 * e.k));
  for (let k = 0; k < D.length; k++) D[k] = e.air + G * (1 - Math.exp(-e.k * Math.max(0, D[k])));
  return D;
}
