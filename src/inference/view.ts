/**
 * Which images of a study are scored: frontal chest films (PA or AP). The study's decision
 * comes from them; laterals, obliques and other body parts are kept and listed with the reason
 * they were not scored. Without a ViewPosition the image is scored and the view check decides
 * afterwards whether its result counts.
 */
import { isNotFrontalChest } from './qc.js';
import type { TriageReport } from './types.js';

export type ViewClass =
  /** PA or AP: scored, and its result counts */
  | { kind: 'frontal'; view: string }
  /** not a frontal chest image: not scored */
  | { kind: 'other'; reason: string }
  /** no (or an unrecognised) ViewPosition: scored, then the view check decides */
  | { kind: 'unknown' };

const LATERAL = new Set(['LATERAL', 'LAT', 'LL', 'RL', 'LLAT', 'RLAT', 'XTABLE']);

export function classifyView(viewPosition: string | null, bodyPart: string | null): ViewClass {
  const part = (bodyPart ?? '').trim();
  if (isNotFrontalChest(null, part)) return { kind: 'other', reason: `body part '${part}' is not the chest` };
  const view = (viewPosition ?? '').trim().toUpperCase();
  // 'AP SUPINE', 'PA ERECT' and the like are frontal too.
  const frontal = /^(PA|AP)\b/.exec(view);
  if (frontal) return { kind: 'frontal', view: frontal[1] };
  if (LATERAL.has(view)) return { kind: 'other', reason: `lateral view (ViewPosition ${view})` };
  if (isNotFrontalChest(view, null)) return { kind: 'other', reason: `oblique or decubitus view (ViewPosition ${view})` };
  return { kind: 'unknown' };
}

/**
 * The view check for an image whose header does not say PA or AP: the lung segmenter is
 * trained on frontal films, and on a lateral (or anything else) the two lung fields it finds
 * cover an implausible share of the frame. Null when the result counts as frontal.
 */
export function viewCheckFailure(report: Pick<TriageReport, 'qcFlags' | 'lungAreaFraction'>): string | null {
  const implausible = report.qcFlags.includes('lung_area_low') || report.qcFlags.includes('lung_area_high');
  if (!implausible) return null;
  return `view check: no PA/AP ViewPosition and the lungs found cover ${(100 * report.lungAreaFraction).toFixed(1)}% of the frame, unlike a frontal film`;
}
