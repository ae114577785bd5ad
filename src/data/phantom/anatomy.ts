/**
 * The patient and study geometry of a chest phantom, in frame units (the detector is 1 unit
 * tall and `aspect` units wide; y grows downwards; the patient's right is on the image left,
 * as on a PA film). Geometry only: rendering lives in render.ts.
 *
 * Proportions were set by measuring real adult PA/AP radiographs (NIH ChestX-ray8): the lung
 * apices lie about 0.12-0.25 from the top, the costophrenic angles about 0.62-0.82, each lung
 * spans about 0.28-0.36 of the width, and the cardiothoracic ratio is 0.4-0.6.
 */
import type { Rng } from '../rng.js';
import { spline } from './canvas.js';

export type Sex = 'F' | 'M';
export type View = 'PA' | 'AP';

/** What stays the same across one patient's studies. */
export interface PatientTraits {
  sex: Sex;
  age: number;
  /** soft-tissue thickness factor: thin < 1 < heavy */
  habitus: number;
  /** chest width and lung height factors */
  width: number;
  height: number;
  /** cardiothoracic ratio */
  ctr: number;
  /** superellipse exponent of the lateral lung border (2 = ellipse, larger = squarer) */
  lungSquareness: number;
  domeHeight: number;
  /** how much higher the right hemidiaphragm is than the left */
  rightDomeLift: number;
  breast: number;
  ribWidth: number;
  scoliosis: number;
  aorticKnob: number;
  /** seed of this patient's vessel tree shape */
  vesselSeed: number;
}

export function samplePatient(rng: Rng): PatientTraits {
  const sex: Sex = rng.chance(0.5) ? 'F' : 'M';
  const heavy = rng.chance(0.25);
  return {
    sex,
    age: rng.int(18, 92),
    habitus: heavy ? rng.uniform(1.05, 1.3) : rng.uniform(0.85, 1.08),
    width: rng.truncNormal(1, 0.05, 0.88, 1.12),
    height: rng.truncNormal(1, 0.05, 0.88, 1.12),
    ctr: rng.chance(0.12) ? rng.uniform(0.55, 0.64) : rng.truncNormal(0.46, 0.035, 0.38, 0.54),
    lungSquareness: rng.uniform(2.0, 2.8),
    domeHeight: rng.uniform(0.05, 0.095),
    rightDomeLift: rng.uniform(0.0, 0.035),
    breast: sex === 'F' ? rng.uniform(0.25, 1) : rng.uniform(0, 0.12),
    ribWidth: rng.uniform(0.85, 1.15),
    scoliosis: rng.chance(0.15) ? rng.uniform(-0.025, 0.025) : rng.uniform(-0.006, 0.006),
    aorticKnob: rng.uniform(0.75, 1.3),
    vesselSeed: rng.nextU32(),
  };
}

/** What changes between studies of the same patient: positioning and breathing. */
export interface StudyPose {
  view: View;
  aspect: number;
  /** horizontal centre of the thorax */
  xc: number;
  /** lung apex height */
  yApex: number;
  /** overall size of the thorax in the frame (zoom) */
  scale: number;
  /** inspiration depth: <1 shallow (crowded bases, higher domes) */
  inspiration: number;
  armsVisible: boolean;
  /** scapulae projecting over the lungs (usual on AP films) */
  scapulaOverlap: number;
  /** how far the head is tipped down (AP portable: the chin may enter the top of the field) */
  chinDown: boolean;
  /** how far above the apices the shoulders meet the neck */
  neckRise: number;
  /** how far the shoulders reach past the chest wall */
  shoulderExtra: number;
  neckWidth: number;
  /** blur of the lung field's edge (frame units per unit scale) */
  lungEdge: number;
}

export function samplePose(rng: Rng, patient: PatientTraits, aspect: number, view: View): StudyPose {
  const ap = view === 'AP';
  let scale = rng.truncNormal(ap ? 0.98 : 0.96, 0.06, 0.82, 1.1);
  // Keep both lungs inside the frame: the widest point is about 0.36 * scale * width each side.
  const maxScale = (aspect / 2 - 0.025) / (0.4 * patient.width);
  scale = Math.min(scale, maxScale);
  return {
    view,
    aspect,
    xc: aspect / 2 + rng.truncNormal(0, 0.018, -0.045, 0.045),
    yApex: rng.truncNormal(ap ? 0.14 : 0.13, 0.03, 0.06, 0.23),
    scale,
    inspiration: ap ? rng.uniform(0.84, 1.0) : rng.uniform(0.92, 1.07),
    armsVisible: rng.chance(ap ? 0.75 : 0.6),
    scapulaOverlap: ap ? rng.uniform(0.4, 1) : rng.uniform(0, 0.45),
    chinDown: ap && rng.chance(0.12),
    neckRise: rng.chance(0.3) ? rng.uniform(0.2, 0.3) : rng.uniform(0.1, 0.2),
    shoulderExtra: rng.uniform(0.1, 0.22) * (0.8 + 0.2 * patient.habitus),
    neckWidth: rng.uniform(0.85, 1.3),
    lungEdge: rng.uniform(0.002, 0.006),
  };
}

export type Side = -1 | 1; // -1: patient right (image left), +1: patient left (image right)

export interface LungGeometry {
  side: Side;
  /** closed outline (flat x,y) of the visible lung field, heart and mediastinum excluded */
  outline: number[];
  /** diaphragm from the costophrenic angle to the cardiophrenic angle */
  diaphragm: number[];
  /** heart border from the cardiophrenic angle up to the hilum level */
  heartBorder: number[];
  /** lateral border from the apex down to the costophrenic angle */
  lateral: number[];
  apex: [number, number];
  cp: [number, number];
  cardio: [number, number];
  hilum: [number, number];
  domeTop: number;
}

export interface Anatomy {
  patient: PatientTraits;
  pose: StudyPose;
  xc: number;
  /** scaled unit: frame units per "standard thorax unit" */
  s: number;
  yApex: number;
  yHilum: number;
  right: LungGeometry;
  left: LungGeometry;
  /** heart silhouette (flat x,y) */
  heart: number[];
  /** everything below the diaphragms (flat x,y) */
  abdomen: number[];
  /** half-width of the chest wall's outer surface */
  bodyHalfWidth: number;
  shoulderHalfWidth: number;
  neckHalfWidth: number;
  yNeckBase: number;
  yAcromion: number;
  /** spine centre line x at a given y */
  spineX: (y: number) => number;
  /** vertical spacing of the posterior ribs */
  ribStep: number;
  /** y of each posterior rib's origin at the spine (index 0 = first rib) */
  ribOrigins: number[];
}

export function buildAnatomy(patient: PatientTraits, pose: StudyPose): Anatomy {
  const s = pose.scale;
  const xc = pose.xc;
  const yApex = pose.yApex;
  const lungH = 0.62 * patient.height * s * pose.inspiration;
  const hwLat = 0.395 * patient.width * s;
  const cpR = yApex + lungH;
  const cpL = cpR + 0.012 * s;
  const yHilum = yApex + 0.4 * lungH;
  // Shallow breathing pushes the domes up more than it lowers the apices.
  const domeH = patient.domeHeight * s * (1 + (1 - pose.inspiration) * 1.5);
  const thoraxW = 2 * hwLat;
  // AP films magnify the heart (it is far from the detector).
  const ctr = patient.ctr * (pose.view === 'AP' ? 1.08 : 1);
  const heartW = ctr * thoraxW;
  const heartRight = heartW * 0.34;
  const heartLeft = heartW * 0.66;

  const right = lung(-1, {
    xc,
    s,
    yApex,
    hwLat,
    cp: cpR,
    cardioX: xc - heartRight * 0.82,
    cardioY: cpR - domeH * 0.55 - patient.rightDomeLift * s,
    domeH: domeH + patient.rightDomeLift * s * 0.6,
    squareness: patient.lungSquareness,
    yHilum,
    heartMax: heartRight,
    knob: 0,
  });
  const left = lung(1, {
    xc,
    s,
    yApex: yApex - 0.006 * s,
    hwLat: hwLat * 0.985,
    cp: cpL,
    cardioX: xc + heartLeft,
    cardioY: cpL - domeH * 0.2,
    domeH: domeH * 0.85,
    squareness: patient.lungSquareness,
    yHilum,
    heartMax: heartLeft,
    knob: patient.aorticKnob,
  });

  // Heart silhouette: right heart border, left heart border, closed over the top and along
  // the line joining the two cardiophrenic angles (the abdomen takes over below it).
  const heart: number[] = [];
  const rb = right.heartBorder; // from cardio (bottom) upwards
  const lb = left.heartBorder;
  for (let k = 0; k < rb.length; k += 2) heart.push(rb[k], rb[k + 1]);
  heart.push(xc - 0.02 * s, yHilum - 0.05 * s, xc + 0.03 * s, yHilum - 0.06 * s);
  for (let k = lb.length - 2; k >= 0; k -= 2) heart.push(lb[k], lb[k + 1]);

  // Abdomen: below the domes and the heart; laterally the diaphragm slopes down to the
  // lower ribs, so the boundary falls away outside the lungs instead of running level.
  const abdomen: number[] = [right.cp[0] - 0.6 * s, right.cp[1] + 0.35 * s];
  for (let k = 0; k < right.diaphragm.length; k += 2) abdomen.push(right.diaphragm[k], right.diaphragm[k + 1]);
  for (let k = left.diaphragm.length - 2; k >= 0; k -= 2) abdomen.push(left.diaphragm[k], left.diaphragm[k + 1]);
  abdomen.push(left.cp[0] + 0.6 * s, left.cp[1] + 0.35 * s, xc + 3, 3, xc - 3, 3);

  const wall = (0.045 + 0.09 * (patient.habitus - 0.85)) * s;
  const bodyHalfWidth = hwLat + wall;
  const ribStep = (right.domeTop + 0.035 * s - (yApex - 0.035 * s)) / 9.3;
  const ribOrigins: number[] = [];
  for (let k = 0; k < 12; k++) ribOrigins.push(yApex - 0.035 * s + k * ribStep);
  const sc = patient.scoliosis;
  const spineX = (y: number): number => xc + 0.004 * s + sc * Math.sin(Math.PI * Math.min(1, Math.max(0, (y - yApex) / (cpR + 0.2 - yApex))));

  return {
    patient,
    pose,
    xc,
    s,
    yApex,
    yHilum,
    right,
    left,
    heart,
    abdomen,
    bodyHalfWidth,
    shoulderHalfWidth: bodyHalfWidth + pose.shoulderExtra * s,
    neckHalfWidth: (0.08 + 0.05 * patient.habitus) * s * pose.neckWidth,
    yNeckBase: yApex - pose.neckRise * s,
    yAcromion: yApex - (pose.view === 'AP' ? 0.02 : 0.005) * s,
    spineX,
    ribStep,
    ribOrigins,
  };
}

interface LungParams {
  xc: number;
  s: number;
  yApex: number;
  hwLat: number;
  cp: number;
  cardioX: number;
  cardioY: number;
  domeH: number;
  squareness: number;
  yHilum: number;
  heartMax: number;
  knob: number;
}

function lung(side: Side, p: LungParams): LungGeometry {
  const { xc, s, yApex } = p;
  const latX = xc + side * p.hwLat;
  const apexX = xc + side * 0.165 * s;
  const medTopX = xc + side * (side < 0 ? 0.045 : 0.04) * s;
  const medTopY = yApex + 0.075 * s;
  const n = p.squareness;

  // Lateral border: a superellipse quadrant from the apex (top) to the costophrenic angle.
  const lateral: number[] = [];
  const rx = Math.abs(apexX - latX);
  const ry = p.cp - yApex;
  const N = 40;
  for (let k = 0; k <= N; k++) {
    const th = (k / N) * (Math.PI / 2); // 0 at apex, pi/2 at the angle
    const cx = Math.sin(th) ** (2 / n);
    const cy = Math.cos(th) ** (2 / n);
    lateral.push(apexX + side * rx * cx, p.cp - ry * cy);
  }

  // Diaphragm dome, lateral to medial; steep at both ends so the angles are acute.
  const diaphragm: number[] = [];
  const M = 32;
  let domeTop = Infinity;
  for (let k = 0; k <= M; k++) {
    const u = k / M;
    const bump = Math.sin(Math.PI * u ** 0.85) ** 0.85;
    const x = latX + (p.cardioX - latX) * u;
    const y = p.cp + (p.cardioY - p.cp) * u - p.domeH * bump;
    domeTop = Math.min(domeTop, y);
    diaphragm.push(x, y);
  }

  // Heart border from the cardiophrenic angle up to the hilum. On the left the border
  // stays near the mediastinum (pulmonary trunk, atrial appendage) and then swings out
  // round the left ventricle to the apex; on the right the atrium makes a low, gentle bulge.
  const topX = xc + side * (side < 0 ? 0.058 : 0.072) * s;
  const topY = p.yHilum + (side < 0 ? 0.0 : -0.01) * s;
  const Hh = p.cardioY - topY;
  let ctrl: number[];
  if (side > 0) {
    const Wd = p.cardioX - topX;
    ctrl = [
      p.cardioX,
      p.cardioY,
      topX + 1.02 * Wd,
      p.cardioY - 0.14 * Hh,
      topX + 0.84 * Wd,
      p.cardioY - 0.42 * Hh,
      topX + 0.42 * Wd,
      p.cardioY - 0.7 * Hh,
      topX + 0.1 * Wd,
      p.cardioY - 0.9 * Hh,
      topX,
      topY,
    ];
  } else {
    const ra = xc - p.heartMax;
    ctrl = [
      p.cardioX,
      p.cardioY,
      ra,
      p.cardioY - 0.28 * Hh,
      ra + 0.25 * (topX - ra),
      p.cardioY - 0.58 * Hh,
      topX - 0.006 * s,
      p.cardioY - 0.85 * Hh,
      topX,
      topY,
    ];
  }
  const heartBorder = spline(ctrl, 6);

  // Mediastinal border above the heart: straight on the right (SVC), aortic knob on the left.
  const mediastinum: number[] = [];
  const knobY = yApex + 0.14 * s;
  const Q = 16;
  for (let k = 1; k < Q; k++) {
    const t = k / Q; // 0 at the hilum, 1 at the top
    const y = topY + (medTopY - topY) * t;
    let x = topX + (medTopX - topX) * t;
    if (side > 0) {
      const d = (y - knobY) / (0.045 * s);
      x += side * 0.018 * s * p.knob * Math.exp(-d * d);
    }
    mediastinum.push(x, y);
  }

  // Upper medial border: a quarter ellipse from the mediastinal top round to the apex.
  const upper: number[] = [];
  const U = 12;
  for (let k = 0; k <= U; k++) {
    const th = (k / U) * (Math.PI / 2);
    upper.push(apexX + (medTopX - apexX) * Math.cos(th), medTopY - (medTopY - yApex) * Math.sin(th));
  }
  // upper runs from medTop (th=0) to the apex (th=pi/2)

  const outline: number[] = [];
  for (let k = 0; k < lateral.length; k += 2) outline.push(lateral[k], lateral[k + 1]);
  for (let k = 2; k < diaphragm.length; k += 2) outline.push(diaphragm[k], diaphragm[k + 1]);
  for (let k = 2; k < heartBorder.length; k += 2) outline.push(heartBorder[k], heartBorder[k + 1]);
  for (let k = 0; k < mediastinum.length; k += 2) outline.push(mediastinum[k], mediastinum[k + 1]);
  for (let k = 0; k < upper.length - 2; k += 2) outline.push(upper[k], upper[k + 1]);

  const hilum: [number, number] = [xc + side * (side < 0 ? 0.085 : 0.095) * s, p.yHilum + (side < 0 ? 0.015 : -0.005) * s];
  return {
    side,
    outline,
    diaphragm,
    heartBorder,
    lateral,
    apex: [apexX, yApex],
    cp: [latX, p.cp],
    cardio: [p.cardioX, p.cardioY],
    hilum,
    domeTop,
  };
}

/** x of the lateral lung border at height y (clamped to the apex and the angle). */
export function lateralXAt(l: LungGeometry, y: number): number {
  const pts = l.lateral;
  if (y <= pts[1]) return pts[0];
  for (let k = 2; k < pts.length; k += 2) {
    if (pts[k + 1] >= y) {
      const y0 = pts[k - 1];
      const y1 = pts[k + 1];
      const t = y1 > y0 ? (y - y0) / (y1 - y0) : 0;
      return pts[k - 2] + (pts[k] - pts[k - 2]) * t;
    }
  }
  return pts[pts.length - 2];
}
