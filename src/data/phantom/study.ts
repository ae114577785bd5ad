/**
 * One synthetic chest radiograph study: a patient drawn from the seed, a pose, optional
 * pneumonia, distractors, then the acquisition (exposure, detector noise, small rotation and
 * shift, size, bit depth, photometric interpretation, rescale) and the DICOM file, with the
 * exact lung-field mask at native size.
 *
 * The anatomy is rendered at a working resolution (at most `workSize` rows) and resampled to
 * the native size, since fine detail beyond ~512 rows is invisible at the models' 256/224
 * inputs; per-pixel detector noise is then added at native resolution. The mask is
 * rasterised from the same outlines directly at native size, so it is exact there.
 */
import { encodeDicom, newUid, type ImageToWrite, type WriteSyntax } from '../../dicom/index.js';
import { warpAffine, type Affine } from '../../imaging/affine.js';
import { gaussianBlurInPlace, smoothBlurInPlace } from '../../imaging/blur.js';
import { fillPolygons } from '../../imaging/polygon-fill.js';
import { resizeBilinear } from '../../imaging/resize.js';
import { grayImage } from '../../imaging/types.js';
import { CxrError } from '../../errors.js';
import { addTableNoise, rngFor, type Rng } from '../rng.js';
import { buildAnatomy, samplePatient, samplePose, type Anatomy, type PatientTraits, type View } from './anatomy.js';
import { Canvas } from './canvas.js';
import { drawDevices, sampleDevices, type DeviceKind } from './devices.js';
import { describePneumonia, renderOpacity, samplePneumonia, type PneumoniaSpec } from './pathology.js';
import { PatientMap } from './patients.js';
import { lungFields, renderDensity, sampleExposure, toModality } from './render.js';

export type Label = 'normal' | 'pneumonia';

export interface SynthOptions {
  /** native size range in pixels (both dimensions); default 512-3000 */
  sizeMin?: number;
  sizeMax?: number;
  /** share of pneumonia studies; default 0.5 */
  pneumoniaRate?: number;
  /** rows of the working render; default 512 */
  workSize?: number;
  /** keep the float modality image in the result (tests, previews) */
  keepModality?: boolean;
}

export interface LabelRow {
  file: string;
  label: Label;
  patient_id: string;
  view: View;
  modality: 'CR' | 'DX';
  sex: string;
  age: number;
  width: number;
  height: number;
  bits_stored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  finding: string;
  distractors: string;
  mask: string;
  study_uid: string;
  seed: number;
  index: number;
}

export const LABEL_COLUMNS: readonly (keyof LabelRow)[] = [
  'file',
  'label',
  'patient_id',
  'view',
  'modality',
  'sex',
  'age',
  'width',
  'height',
  'bits_stored',
  'photometric',
  'finding',
  'distractors',
  'mask',
  'study_uid',
  'seed',
  'index',
];

export interface Study {
  name: string;
  dicom: Uint8Array;
  /** lung fields at native size, 0 or 255 */
  mask: Uint8Array;
  width: number;
  height: number;
  row: LabelRow;
  /** HU-like modality values at native size (only with keepModality) */
  modality?: Float32Array;
}

/** What was decided for a study before any pixel is drawn (cheap; used by tests and the CLI). */
export interface StudyPlan {
  seed: number;
  index: number;
  patientIndex: number;
  visit: number;
  patient: PatientTraits;
  label: Label;
  view: View;
  width: number;
  height: number;
  anatomy: Anatomy;
  pneumonia: PneumoniaSpec | null;
  devices: DeviceKind[];
  rng: Rng;
}

const maps = new Map<number, PatientMap>();
function patientMap(seed: number): PatientMap {
  let m = maps.get(seed);
  if (!m) {
    if (maps.size > 16) maps.clear();
    m = new PatientMap(seed);
    maps.set(seed, m);
  }
  return m;
}

export function checkOptions(opts: SynthOptions): Required<Omit<SynthOptions, 'keepModality'>> {
  const sizeMin = opts.sizeMin ?? 512;
  const sizeMax = opts.sizeMax ?? 3000;
  const pneumoniaRate = opts.pneumoniaRate ?? 0.5;
  const workSize = opts.workSize ?? 512;
  if (!Number.isInteger(sizeMin) || !Number.isInteger(sizeMax) || sizeMin < 64 || sizeMax > 8192 || sizeMin > sizeMax)
    throw new CxrError('E_BAD_ARGUMENT', `size range must be integers with 64 <= min <= max <= 8192, got ${sizeMin}-${sizeMax}`);
  if (!(pneumoniaRate >= 0 && pneumoniaRate <= 1)) throw new CxrError('E_BAD_ARGUMENT', `pneumonia rate must be in [0,1], got ${pneumoniaRate}`);
  if (!Number.isInteger(workSize) || workSize < 64 || workSize > 4096)
    throw new CxrError('E_BAD_ARGUMENT', `work size must be an integer in 64..4096, got ${workSize}`);
  return { sizeMin, sizeMax, pneumoniaRate, workSize };
}

export function planStudy(seed: number, index: number, opts: SynthOptions = {}): StudyPlan {
  if (!Number.isInteger(seed)) throw new CxrError('E_BAD_ARGUMENT', `seed must be an integer, got ${seed}`);
  const o = checkOptions(opts);
  const slot = patientMap(seed).slot(index);
  const patient = samplePatient(rngFor([seed, 'patient', slot.patient]));
  const rng = rngFor([seed, 'study', index]);
  const label: Label = rng.next() < o.pneumoniaRate ? 'pneumonia' : 'normal';
  const view: View = rng.chance(0.42) ? 'AP' : 'PA';
  // Sizes: spread log-uniformly over the range; detectors are square or portrait more often than landscape.
  const height = Math.round(Math.exp(rng.uniform(Math.log(o.sizeMin), Math.log(o.sizeMax + 0.999))));
  const shape = rng.weighted({ square: 0.4, portrait: 0.35, landscape: 0.25 });
  const aspectWanted = shape === 'square' ? 1 : shape === 'portrait' ? rng.uniform(0.8, 0.95) : rng.uniform(1.05, 1.2);
  const width = Math.min(o.sizeMax, Math.max(o.sizeMin, Math.round(height * aspectWanted)));
  const pose = samplePose(rng.fork('pose'), patient, width / height, view);
  const anatomy = buildAnatomy(patient, pose);
  const pneumonia = label === 'pneumonia' ? samplePneumonia(rng.fork('pneumonia')) : null;
  const devices = sampleDevices(rng.fork('devices'), anatomy);
  return { seed, index, patientIndex: slot.patient, visit: slot.visit, patient, label, view, width, height, anatomy, pneumonia, devices, rng };
}

export function studyName(seed: number, index: number): string {
  return `syn-${seed}-${String(index).padStart(6, '0')}`;
}

export function patientId(seed: number, patient: number): string {
  return `SYN${seed}P${String(patient).padStart(6, '0')}`;
}

/** Generates study `index` of the dataset drawn from `seed`; the same arguments give the same bytes. */
export function generateStudy(seed: number, index: number, opts: SynthOptions = {}): Study {
  const o = checkOptions(opts);
  const plan = planStudy(seed, index, opts);
  const { anatomy: a, width, height, rng } = plan;
  const aspect = width / height;

  // Working canvas: the frame plus a margin, so the acquisition rotation never reveals an
  // unrendered corner.
  const workH = Math.min(height, o.workSize);
  const workW = Math.max(1, Math.round((width * workH) / height));
  const margin = 0.08;
  const scale = workH;
  const canvas = new Canvas(Math.ceil((aspect + 2 * margin) * scale), Math.ceil((1 + 2 * margin) * scale), scale, -margin, -margin);

  const renderRng = rng.fork('render');
  const fields = lungFields(a, canvas);
  const opacity = plan.pneumonia ? renderOpacity(plan.pneumonia, a, canvas, rng.fork('opacity'), fields.sharp) : undefined;
  const overlay = canvas.buffer();
  drawDevices(overlay, canvas, a, rng.fork('device-draw'), plan.devices);
  const { density } = renderDensity(a, canvas, renderRng, { opacity, overlay, fields });

  const acq = rng.fork('acquisition');
  const exposure = sampleExposure(acq);
  const values = toModality(density, exposure);
  // Detector/processing unsharpness and the edge enhancement most CR/DX consoles apply.
  const sharpen = acq.uniform(0, 0.5);
  const blurred = Float32Array.from(values);
  smoothBlurInPlace(blurred, canvas.width, canvas.height, acq.uniform(0.015, 0.05) * scale);
  for (let k = 0; k < values.length; k++) values[k] += sharpen * (values[k] - blurred[k]);
  // Dynamic-range compression, as consoles apply to chest films: large-scale differences
  // (lungs vs abdomen, body vs air) shrink while local detail stays.
  const drc = acq.chance(0.6) ? acq.uniform(0, 0.25) : 0;
  if (drc > 0.02) {
    const big = Float32Array.from(values);
    smoothBlurInPlace(big, canvas.width, canvas.height, 0.08 * scale);
    for (let k = 0; k < values.length; k++) values[k] -= drc * (big[k] + 400);
  }
  const soften = acq.uniform(0, 0.6);
  gaussianBlurInPlace(values, canvas.width, canvas.height, soften * (workH / 512));

  // Patient positioning on the detector: a small rotation and shift.
  const angle = acq.truncNormal(0, 1.8, -5, 5);
  const shiftX = acq.truncNormal(0, 0.015, -0.04, 0.04);
  const shiftY = acq.truncNormal(0, 0.015, -0.04, 0.04);
  const forward = positioning(aspect, angle, shiftX, shiftY);
  const work = warpAffine(grayImage(canvas.width, canvas.height, values), workToCanvas(forward, canvas, width, height, workW, workH), {
    width: workW,
    height: workH,
    fill: exposure.air,
  });
  const native = workW === width && workH === height ? work : resizeBilinear(work, width, height);

  // Detector noise: quantum noise grows where fewer photons arrive (the dense regions).
  const sigma = acq.uniform(1, 4);
  const v = native.data;
  addTableNoise(v, width, acq.fork('noise'), sigma, (x) => 0.6 + 0.6 * Math.min(1, Math.max(0, (x + 1000) / 1000)));

  // The exact lung mask at native size, from the same outlines moved by the same positioning.
  const mask = fillPolygons(
    width,
    height,
    [a.right.outline, a.left.outline].map((p) => toNative(p, forward, height)),
    undefined,
    255,
  );

  const name = studyName(plan.seed, index);
  const modality: 'CR' | 'DX' = acq.chance(0.5) ? 'CR' : 'DX';
  const enc = encodePixels(v, acq.fork('encoding'), modality);
  const pid = patientId(plan.seed, plan.patientIndex);
  const studyUid = newUid(['cxr-triage-synth', plan.seed, 'study', index]);
  const date = studyDate(rngFor([plan.seed, 'patient-dates', plan.patientIndex]), plan.visit);
  const fov = acq.uniform(350, 430); // mm across the detector height
  const spacing = Number((fov / height).toFixed(4));
  const img: ImageToWrite = {
    rows: height,
    columns: width,
    bitsAllocated: 16,
    bitsStored: enc.bitsStored,
    pixelRepresentation: enc.signed ? 1 : 0,
    photometric: enc.photometric,
    pixels: enc.pixels,
    modality,
    studyInstanceUid: studyUid,
    seriesInstanceUid: newUid(['cxr-triage-synth', plan.seed, 'series', index]),
    sopInstanceUid: newUid(['cxr-triage-synth', plan.seed, 'instance', index]),
    patientId: pid,
    patientName: `SYNTHETIC^PATIENT${plan.patientIndex}`,
    patientSex: plan.patient.sex,
    patientAge: `${String(Math.min(999, plan.patient.age + Math.floor(plan.visit / 2))).padStart(3, '0')}Y`,
    studyDate: date,
    studyTime: `${String(8 + (index % 10)).padStart(2, '0')}${String((index * 7) % 60).padStart(2, '0')}00`,
    accessionNumber: `S${plan.seed}A${index}`.slice(0, 16),
    seriesNumber: 1,
    instanceNumber: 1,
    viewPosition: plan.view,
    bodyPartExamined: 'CHEST',
    presentationIntent: 'FOR PRESENTATION',
    pixelSpacing: [spacing, spacing],
    imagerPixelSpacing: [spacing, spacing],
    rescaleSlope: enc.slope,
    rescaleIntercept: enc.intercept,
    // Unspecified units: these are HU-like for CR, offset detector-like units for DX.
    rescaleType: 'US',
    windowCenter: enc.windowCenter,
    windowWidth: enc.windowWidth,
    windowExplanation: 'LUNG',
    kvp: plan.view === 'AP' ? Math.round(acq.uniform(80, 100)) : Math.round(acq.uniform(110, 125)),
    exposure: Math.round(acq.uniform(2, 8)),
    manufacturer: 'CXR-TRIAGE SYNTHETIC PHANTOM',
    derivationDescription: `synthetic phantom seed ${plan.seed} index ${index}`,
  };
  const syntax: WriteSyntax = acq.chance(0.8) ? 'explicit-le' : 'implicit-le';
  const dicom = encodeDicom(img, { transferSyntax: syntax });

  const row: LabelRow = {
    file: `images/${name}.dcm`,
    label: plan.label,
    patient_id: pid,
    view: plan.view,
    modality,
    sex: plan.patient.sex,
    age: plan.patient.age,
    width,
    height,
    bits_stored: enc.bitsStored,
    photometric: enc.photometric,
    finding: plan.pneumonia ? describePneumonia(plan.pneumonia) : 'none',
    distractors: plan.devices.join(';'),
    mask: `masks/${name}.png`,
    study_uid: studyUid,
    seed: plan.seed,
    index,
  };
  return { name, dicom, mask, width, height, row, modality: opts.keepModality ? v : undefined };
}

/** Forward map patient frame → detector frame: rotate about the frame centre, then shift. */
interface Positioning {
  cos: number;
  sin: number;
  cx: number;
  cy: number;
  tx: number;
  ty: number;
}

function positioning(aspect: number, angleDeg: number, tx: number, ty: number): Positioning {
  const t = (angleDeg * Math.PI) / 180;
  return { cos: Math.cos(t), sin: Math.sin(t), cx: aspect / 2, cy: 0.5, tx, ty };
}

/** Polygon in patient frame units → native pixel coordinates after positioning. */
function toNative(poly: ArrayLike<number>, f: Positioning, height: number): Float64Array {
  const out = new Float64Array(poly.length);
  for (let k = 0; k < poly.length; k += 2) {
    const dx = poly[k] - f.cx;
    const dy = poly[k + 1] - f.cy;
    out[k] = (f.cos * dx - f.sin * dy + f.cx + f.tx) * height;
    out[k + 1] = (f.sin * dx + f.cos * dy + f.cy + f.ty) * height;
  }
  return out;
}

/**
 * warpAffine's matrix: work pixel index → canvas pixel index. A work pixel centre (i+0.5)
 * sits at detector frame x = (i+0.5)·W/(workW·H) — the same half-pixel convention the
 * bilinear upsampling to native size uses — and is mapped back through the inverse
 * positioning into the canvas.
 */
function workToCanvas(f: Positioning, c: Canvas, width: number, height: number, workW: number, workH: number): Affine {
  const kx = width / (workW * height);
  const ky = 1 / workH;
  // detector q = (kx(i+0.5), ky(j+0.5)); patient p = R^T (q - c - t) + c; canvas = (p - x0)·scale - 0.5
  const { cos, sin, cx, cy, tx, ty } = f;
  const s = c.scale;
  const qx0 = 0.5 * kx - cx - tx;
  const qy0 = 0.5 * ky - cy - ty;
  // p.x = cos*(qx) + sin*(qy) + cx ; p.y = -sin*(qx) + cos*(qy) + cy  (R^T)
  const a = cos * kx * s;
  const b = sin * ky * s;
  const cc = (cos * qx0 + sin * qy0 + cx - c.x0) * s - 0.5;
  const d = -sin * kx * s;
  const e = cos * ky * s;
  const ff = (-sin * qx0 + cos * qy0 + cy - c.y0) * s - 0.5;
  return [a, b, cc, d, e, ff];
}

interface EncodedPixels {
  pixels: Uint16Array | Int16Array;
  bitsStored: number;
  signed: boolean;
  slope: number;
  intercept: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  /** the lung window W1500/L-600 expressed in this file's modality values */
  windowCenter: number;
  windowWidth: number;
}

/**
 * Modality values → stored values with a varied bit depth, rescale and photometric
 * interpretation. MONOCHROME1 files store the values mirrored about the lung window's
 * centre (v' = -1201 - v), so the same window followed by the MONOCHROME1 inversion shows
 * the same picture.
 *
 * CR files keep HU-like modality values through a varied rescale slope/intercept (and
 * sometimes signed pixels). DX files must have slope 1 and intercept 0 and unsigned pixels
 * (the DX Image module's enumerated values), so they store offset detector-like units, as
 * real DX files do, and carry the equivalent window in their header; the `auto` window
 * policy then takes the header window and renders the same picture.
 */
function encodePixels(v: Float32Array, rng: Rng, modality: 'CR' | 'DX'): EncodedPixels {
  const photometric = rng.chance(0.3) ? 'MONOCHROME1' : 'MONOCHROME2';
  const mono1 = photometric === 'MONOCHROME1';
  const lo = -2700;
  const hi = 1500;
  const dx = modality === 'DX';
  const depth = rng.weighted(dx ? { b12: 0.4, b14: 0.35, b16: 0.25, signed: 0 } : { b12: 0.35, b14: 0.3, b16: 0.25, signed: 0.1 });
  let bitsStored = 16;
  let slope = 1;
  let intercept = 0;
  let signed = false;
  // Stored value = (modality value - intercept) / slope, except DX: (value + offset) / step.
  let offset = 0;
  let step = 1;
  if (depth === 'signed') {
    signed = true;
    slope = rng.pick([1, 0.5]);
  } else {
    bitsStored = depth === 'b12' ? 12 : depth === 'b14' ? 14 : 16;
    const levels = 2 ** bitsStored - 1;
    // The smallest step that still spans the value range, or a coarser one.
    const minStep = (hi - lo) / levels;
    if (dx) {
      step = minStep <= 1 ? rng.pick([1, 1, 2]) * (bitsStored === 16 ? rng.pick([0.1, 0.25, 1]) : 1) : Number((minStep * rng.uniform(1, 1.5)).toPrecision(4));
      offset = Math.round(-lo + rng.uniform(0, 300));
    } else {
      slope = Number((minStep * rng.uniform(1, 1.6)).toPrecision(6));
      if (bitsStored === 16 && rng.chance(0.4)) slope = rng.pick([0.1, 0.25]);
      intercept = Math.round(lo - rng.uniform(0, 200));
    }
  }
  const n = v.length;
  const maxStored = signed ? 32767 : 2 ** bitsStored - 1;
  const minStored = signed ? -32768 : 0;
  const pixels = signed ? new Int16Array(n) : new Uint16Array(n);
  const a = dx ? 1 / step : 1 / slope;
  const b = dx ? offset / step : -intercept / slope;
  for (let k = 0; k < n; k++) {
    const x = mono1 ? -1201 - v[k] : v[k];
    const q = Math.round(x * a + b);
    pixels[k] = q < minStored ? minStored : q > maxStored ? maxStored : q;
  }
  const windowCenter = dx ? Number(((-600 + offset) / step).toFixed(2)) : -600;
  const windowWidth = dx ? Number((1500 / step).toFixed(2)) : 1500;
  return { pixels, bitsStored, signed, slope, intercept, photometric, windowCenter, windowWidth };
}

function studyDate(rng: Rng, visit: number): string {
  const base = Date.UTC(2014, 0, 1) + Math.floor(rng.next() * 3000) * 86400000;
  const d = new Date(base + visit * Math.floor(30 + rng.next() * 200) * 86400000);
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}
