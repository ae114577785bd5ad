import type { DicomMetadata } from '../dicom/index.js';
import type { QcFlag } from './types.js';

/** Limits behind the QC flags; each one is a reason to send the study to a human. */
export interface QcLimits {
  /** plausible share of the (256x256) segmenter frame covered by the two lungs */
  minLungFraction: number;
  maxLungFraction: number;
  /** the shorter image side below this is too little detail to read */
  minImageSide: number;
}

/**
 * Lung-area limits set on real films, not guessed (README "QC limits"; `bench/qc-limits.ts`):
 * the served segmenter's masks on 240 validation-side films (120 NIH adult rows of the
 * classifier's train/validation split, 120 Kermany pediatric films), ordered by area and
 * judged by eye. Below 12% of the frame (the lowest ~4%) most masks miss a lung or sit in the
 * mediastinum; above 42% (the top ~1.5%) they spill into the neck, shoulders or abdomen.
 * The previous guess, 8%-65%, flagged none of those.
 */
export const DEFAULT_QC_LIMITS: QcLimits = { minLungFraction: 0.12, maxLungFraction: 0.42, minImageSide: 256 };

export interface QcInput {
  lungAreaFraction: number;
  maskTouchesBorder: boolean;
  width: number;
  height: number;
  viewPosition: DicomMetadata['viewPosition'];
  bodyPartExamined: DicomMetadata['bodyPartExamined'];
}

/** ViewPosition codes (PS3.3 C.8.11.5.1.2 and common vendor values) that are not frontal. */
const NON_FRONTAL_VIEWS = new Set(['LATERAL', 'LAT', 'LL', 'RL', 'LLD', 'RLD', 'LLO', 'RLO', 'LAO', 'RAO', 'LPO', 'RPO', 'OBLIQUE', 'XTABLE', 'LLAT', 'RLAT']);

/** True when ViewPosition says lateral/oblique/decubitus or BodyPartExamined is not the chest. */
export function isNotFrontalChest(viewPosition: string | null, bodyPart: string | null): boolean {
  const view = (viewPosition ?? '').trim().toUpperCase();
  if (view && NON_FRONTAL_VIEWS.has(view)) return true;
  const part = (bodyPart ?? '').trim().toUpperCase();
  // 'PORT CHEST', 'CHEST PA' and the like are chests too
  return part !== '' && !/CHEST|THORAX|LUNG/.test(part);
}

export function qcFlags(q: QcInput, limits: QcLimits = DEFAULT_QC_LIMITS): QcFlag[] {
  const flags: QcFlag[] = [];
  if (q.lungAreaFraction < limits.minLungFraction) flags.push('lung_area_low');
  if (q.lungAreaFraction > limits.maxLungFraction) flags.push('lung_area_high');
  if (q.maskTouchesBorder) flags.push('mask_touches_border');
  if (isNotFrontalChest(q.viewPosition, q.bodyPartExamined)) flags.push('not_frontal_chest');
  if (Math.min(q.width, q.height) < limits.minImageSide) flags.push('image_too_small');
  return flags;
}
