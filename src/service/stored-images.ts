/**
 * What a reviewer sees is what was stored with the prediction: the film is windowed with the
 * window the report names, the lung outline is drawn from the stored mask and the heatmap from
 * the stored CAM over the stored lung box. No model runs here, so a view never shows the output
 * of a model other than the one behind the decision.
 */
import { decodeModalityCodes, readWindowed, type WindowPolicy } from '../dicom/index.js';
import { runsToImage } from '../imaging/mask-scale.js';
import { resizeBilinear } from '../imaging/resize.js';
import { grayImage, type GrayImage } from '../imaging/types.js';
import { camToImage } from '../inference/cam.js';
import type { TriageReport } from '../inference/types.js';
import { CxrError } from '../errors.js';
import { renderStudyImages, type StudyImages } from './study-images.js';

function storedPolicy(w: TriageReport['window']): WindowPolicy {
  if (w.center !== null && w.width !== null) return { kind: 'explicit', center: w.center, width: w.width };
  return { kind: w.policy === 'explicit' ? 'auto' : w.policy };
}

/** The windowed film, lung mask and heatmap behind a stored prediction, at the film's size. */
export interface StoredLayers {
  windowed: GrayImage;
  mask: GrayImage;
  heatmap: GrayImage;
}

export async function renderStoredImages(bytes: Uint8Array, report: TriageReport): Promise<StudyImages> {
  return renderStudyImages(await storedLayers(bytes, report));
}

/**
 * The layers at the film's size, or at `fit(width, height)`: a smaller picture (the result
 * picture sent to PACS) draws the mask and heatmap at its own size instead of drawing them at
 * 2048x2048 and shrinking them.
 */
export async function storedLayers(
  bytes: Uint8Array,
  report: TriageReport,
  fit?: (width: number, height: number) => { width: number; height: number },
): Promise<StoredLayers> {
  const img = await readWindowed(bytes, { window: storedPolicy(report.window) });
  if (!report.mask) throw new CxrError('E_NOT_FOUND', 'this prediction was stored without its lung mask (scored by an older version of the service)');
  const { width, height } = fit ? fit(img.width, img.height) : img;
  const full = { width: img.width, height: img.height, data: img.data };
  const windowed = width === img.width && height === img.height ? full : resizeBilinear(full, width, height);
  const mask = runsToImage(report.mask.runs, report.mask.width, report.mask.height, width, height);
  const kx = width / img.width;
  const ky = height / img.height;
  const b = report.lungBox ?? { x0: 0, y0: 0, x1: img.width, y1: img.height };
  const box = { x0: Math.round(b.x0 * kx), y0: Math.round(b.y0 * ky), x1: Math.round(b.x1 * kx), y1: Math.round(b.y1 * ky) };
  const heatmap = report.cam
    ? camToImage(Float32Array.from(report.cam.values), report.cam.width, report.cam.height, box, width, height)
    : grayImage(width, height);
  return { windowed, mask, heatmap };
}

/** The film for the browser viewer: modality values as 16-bit codes over [min, max], little-endian. */
export interface FilmCodes {
  width: number;
  height: number;
  codes: Buffer;
  min: number;
  max: number;
  invert: boolean;
}

export async function filmCodes(bytes: Uint8Array): Promise<FilmCodes> {
  const m = await decodeModalityCodes(bytes);
  // a typed array is in the platform's byte order: little-endian on every machine Node supports here (x64, arm64)
  const codes = Buffer.from(m.codes.buffer, m.codes.byteOffset, m.codes.byteLength);
  return { width: m.width, height: m.height, codes, min: m.min, max: m.max, invert: m.meta.photometricInterpretation === 'MONOCHROME1' };
}
