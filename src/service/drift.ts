/**
 * Drift against what the model was validated on, as pure functions (tested with exact values):
 * the population stability index between a reference and a recent distribution, and the share
 * of studies validation says should be flagged.
 */

/** Below this share a bin counts as this share, so an empty bin gives a large but finite PSI. */
export const PSI_FLOOR = 1e-4;

/**
 * PSI = sum over bins of (actual - expected) * ln(actual / expected), on shares. By convention
 * under 0.1 is stable, 0.1-0.25 a moderate shift, over 0.25 a major one.
 */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  if (expected.length !== actual.length || expected.length === 0) throw new RangeError('psi needs two histograms with the same bins');
  const se = expected.reduce((a, b) => a + b, 0);
  const sa = actual.reduce((a, b) => a + b, 0);
  if (se <= 0 || sa <= 0) throw new RangeError('psi needs two non-empty histograms');
  let total = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i] / se, PSI_FLOOR);
    const a = Math.max(actual[i] / sa, PSI_FLOOR);
    total += (a - e) * Math.log(a / e);
  }
  return total;
}

export interface ValidationOperatingPoint {
  /** share of positives in the validation split */
  prevalence: number;
  sensitivity: number;
  specificity: number;
}

/** The share of studies the threshold flags (as positive) on a population like validation's. */
export function expectedFlagRate(v: ValidationOperatingPoint): number {
  return v.prevalence * v.sensitivity + (1 - v.prevalence) * (1 - v.specificity);
}

/** Reads the operating point a classifier manifest records (threshold.validation* and the validation confusion). */
export function operatingPointOf(manifest: Record<string, unknown>): ValidationOperatingPoint | null {
  const t = manifest.threshold as { validationSensitivity?: number; validationSpecificity?: number | null } | undefined;
  const c = (manifest.metrics as { validation?: { confusion?: { tp: number; fp: number; tn: number; fn: number } } } | undefined)?.validation?.confusion;
  if (!t || typeof t.validationSensitivity !== 'number' || typeof t.validationSpecificity !== 'number' || !c) return null;
  const n = c.tp + c.fp + c.tn + c.fn;
  if (n <= 0) return null;
  return { prevalence: (c.tp + c.fn) / n, sensitivity: t.validationSensitivity, specificity: t.validationSpecificity };
}
