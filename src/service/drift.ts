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

/** Which file a model_versions row names: `VERSION+int8` is the int8 file, `VERSION` the float one. */
export type RowPrecision = 'int8' | 'float';

/** Recent predictions of one version that were decided by the same rule: precision and whose threshold. */
export interface DecisionGroup {
  /** report.models.classifier.precision ('int8' | 'float'); null in predictions that predate it */
  precision: string | null;
  /** report.population.thresholdOf: a population's own threshold, or 'version'; null in predictions that predate it */
  thresholdOf: string | null;
  n: number;
}

interface OperatingPointFields {
  validationSensitivity?: unknown;
  validationSpecificity?: unknown;
  n?: unknown;
  positives?: unknown;
  calibratedOn?: { n?: unknown; positives?: unknown };
  populations?: Record<string, OperatingPointFields | undefined>;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * The operating point a group of predictions was decided at, from a classifier manifest as the
 * database keeps it: the int8 model's threshold when int8 decided, the float one otherwise (for
 * predictions that do not say, `precision`: the registry row's, whose version ends in `+int8` for
 * the int8 file; unknown, what the manifest serves by default); within it the population's own threshold when the study's population
 * picked one. The served version's adult threshold clears far fewer normal films than its pooled
 * one, so reading the pooled figures for every study would predict the wrong rate.
 *
 * `sitePrevalence`, when a site sets it, replaces validation's share of positives: a pooled
 * validation split can be 70% pneumonia, and a site that sees 10% would otherwise be told its
 * flag rate drifted when only its prevalence differs.
 */
export function operatingPointOf(
  manifest: Record<string, unknown>,
  sitePrevalence: number | null = null,
  group: Pick<DecisionGroup, 'precision' | 'thresholdOf'> = { precision: null, thresholdOf: null },
  precision: RowPrecision | null = null,
): ValidationOperatingPoint | null {
  const q = manifest.quantization as { served?: unknown; threshold?: OperatingPointFields } | undefined;
  const decidedBy = group.precision ?? precision ?? (q?.served === true ? 'int8' : 'float');
  const int8 = decidedBy === 'int8';
  const rule = int8 ? q?.threshold : (manifest.threshold as OperatingPointFields | undefined);
  if (!rule) return null;
  const own = group.thresholdOf && group.thresholdOf !== 'version' ? rule.populations?.[group.thresholdOf] : undefined;
  const point = own ?? rule;
  const sensitivity = num(point.validationSensitivity);
  const specificity = num(point.validationSpecificity);
  if (sensitivity === null || specificity === null) return null;
  if (sitePrevalence !== null) return { prevalence: sitePrevalence, sensitivity, specificity };
  let prevalence: number | null = null;
  const share = (pos: unknown, n: unknown): number | null => {
    const p = num(pos);
    const t = num(n);
    return p !== null && t !== null && t > 0 ? p / t : null;
  };
  if (own) prevalence = share(own.positives, own.n);
  else prevalence = share(rule.calibratedOn?.positives, rule.calibratedOn?.n);
  if (prevalence === null) {
    const c = (manifest.metrics as { validation?: { confusion?: { tp: number; fp: number; tn: number; fn: number } } } | undefined)?.validation?.confusion;
    if (c) prevalence = share(c.tp + c.fn, c.tp + c.fp + c.tn + c.fn);
  }
  return prevalence === null ? null : { prevalence, sensitivity, specificity };
}

/**
 * The share of recent studies the version's operating points predict positive: each group of
 * predictions at the rate of the rule that decided it, weighted by its size. With no recent
 * predictions, the rate of the version's default rule. Null when no group's rule is known.
 */
export function expectedPositiveRate(
  manifest: Record<string, unknown>,
  groups: readonly DecisionGroup[],
  sitePrevalence: number | null = null,
  precision: RowPrecision | null = null,
): number | null {
  const used = groups.filter((g) => g.n > 0);
  // nothing recent: the version's default rule, as one group
  const weighted = used.length > 0 ? used : [{ precision: null, thresholdOf: null, n: 1 }];
  let total = 0;
  let n = 0;
  for (const g of weighted) {
    const op = operatingPointOf(manifest, sitePrevalence, g, precision);
    if (!op) continue;
    total += g.n * expectedFlagRate(op);
    n += g.n;
  }
  return n > 0 ? total / n : null;
}

/** What the database counted for one classifier version in the recent window. */
export interface RecentDistribution {
  recent: number;
  recentPositive: number;
  /** probabilities in DRIFT_BINS bins over [0, 1] */
  recentHistogram: readonly number[];
  /** lung area fractions in DRIFT_BINS bins over LUNG_AREA_RANGE */
  recentLungHistogram: readonly number[];
  /** the recent predictions by the rule that decided them (absent: the version's default rule) */
  recentGroups?: readonly DecisionGroup[];
  /** which file the registry row names (recordedPrecision of its version): the rule for predictions that do not record theirs */
  precision?: RowPrecision | null;
  /** the site's own reference (`cxr-triage model baseline`): when set, drift is measured against it, not validation */
  siteBaseline?: SiteReference | null;
}

/** What a site accepted as "no drift" for a version: its predictions over a reviewed window, in the same bins. */
export interface SiteReference {
  n: number;
  positive: number;
  probabilityHistogram: readonly number[];
  lungAreaHistogram: readonly number[];
}

/**
 * The positive rate recent studies are held against: the site baseline's when the site set one
 * (it already reflects the site's prevalence and population), else what the operating points predict.
 */
export function referencePositiveRate(
  manifest: Record<string, unknown>,
  recent: Pick<RecentDistribution, 'recentGroups' | 'siteBaseline' | 'precision'>,
  sitePrevalence: number | null = null,
): number | null {
  const b = recent.siteBaseline;
  if (b && b.n > 0) return b.positive / b.n;
  return expectedPositiveRate(manifest, recent.recentGroups ?? [], sitePrevalence, recent.precision ?? null);
}

/**
 * PSI per feature of the recent predictions against the site's baseline when it set one, else
 * the version's validation: positive_rate (decisions against the baseline's rate, or the rate the
 * operating points predict at the site's prevalence when set), and probability and lung_area
 * against the baseline's histograms, or the manifest's validation ones (`drift`, written by calibrate).
 */
export function driftFeatures(
  recent: RecentDistribution,
  manifest: Record<string, unknown>,
  sitePrevalence: number | null = null,
): { feature: string; psi: number }[] {
  const out: { feature: string; psi: number }[] = [];
  if (recent.recent <= 0) return out;
  const e = referencePositiveRate(manifest, recent, sitePrevalence);
  if (e !== null) {
    out.push({ feature: 'positive_rate', psi: psi([e, 1 - e], [recent.recentPositive, recent.recent - recent.recentPositive]) });
  }
  const ref = (recent.siteBaseline ?? manifest.drift) as { probabilityHistogram?: unknown; lungAreaHistogram?: unknown } | undefined;
  const usable = (h: unknown, against: readonly number[]): h is number[] =>
    Array.isArray(h) && h.length === against.length && h.every((x) => typeof x === 'number') && h.some((x) => x > 0) && against.some((x) => x > 0);
  if (usable(ref?.probabilityHistogram, recent.recentHistogram))
    out.push({ feature: 'probability', psi: psi(ref.probabilityHistogram, recent.recentHistogram) });
  if (usable(ref?.lungAreaHistogram, recent.recentLungHistogram))
    out.push({ feature: 'lung_area', psi: psi(ref.lungAreaHistogram, recent.recentLungHistogram) });
  return out;
}
