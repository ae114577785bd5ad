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

/**
 * Reads the operating point a classifier manifest records (threshold.validation* and the
 * validation confusion). `sitePrevalence`, when a site sets it, replaces validation's share of
 * positives: a pooled validation split can be 70% pneumonia, and a site that sees 10% would
 * otherwise be told its flag rate drifted when only its prevalence differs.
 */
export function operatingPointOf(manifest: Record<string, unknown>, sitePrevalence: number | null = null): ValidationOperatingPoint | null {
  const t = manifest.threshold as { validationSensitivity?: number; validationSpecificity?: number | null } | undefined;
  const c = (manifest.metrics as { validation?: { confusion?: { tp: number; fp: number; tn: number; fn: number } } } | undefined)?.validation?.confusion;
  if (!t || typeof t.validationSensitivity !== 'number' || typeof t.validationSpecificity !== 'number' || !c) return null;
  const n = c.tp + c.fp + c.tn + c.fn;
  if (n <= 0) return null;
  return { prevalence: sitePrevalence ?? (c.tp + c.fn) / n, sensitivity: t.validationSensitivity, specificity: t.validationSpecificity };
}

/** What the database counted for one classifier version in the recent window. */
export interface RecentDistribution {
  recent: number;
  recentPositive: number;
  /** probabilities in DRIFT_BINS bins over [0, 1] */
  recentHistogram: readonly number[];
  /** lung area fractions in DRIFT_BINS bins over LUNG_AREA_RANGE */
  recentLungHistogram: readonly number[];
}

/**
 * PSI per feature of the recent predictions against the version's validation: positive_rate
 * (decisions against the rate the operating point predicts, at the site's prevalence when set), and probability and lung_area
 * when the manifest keeps their validation histograms (`drift`, written by calibrate).
 */
export function driftFeatures(
  recent: RecentDistribution,
  manifest: Record<string, unknown>,
  sitePrevalence: number | null = null,
): { feature: string; psi: number }[] {
  const out: { feature: string; psi: number }[] = [];
  if (recent.recent <= 0) return out;
  const op = operatingPointOf(manifest, sitePrevalence);
  if (op) {
    const e = expectedFlagRate(op);
    out.push({ feature: 'positive_rate', psi: psi([e, 1 - e], [recent.recentPositive, recent.recent - recent.recentPositive]) });
  }
  const ref = manifest.drift as { probabilityHistogram?: unknown; lungAreaHistogram?: unknown } | undefined;
  const usable = (h: unknown, against: readonly number[]): h is number[] =>
    Array.isArray(h) && h.length === against.length && h.every((x) => typeof x === 'number') && h.some((x) => x > 0) && against.some((x) => x > 0);
  if (usable(ref?.probabilityHistogram, recent.recentHistogram))
    out.push({ feature: 'probability', psi: psi(ref.probabilityHistogram, recent.recentHistogram) });
  if (usable(ref?.lungAreaHistogram, recent.recentLungHistogram))
    out.push({ feature: 'lung_area', psi: psi(ref.lungAreaHistogram, recent.recentLungHistogram) });
  return out;
}
