/** Per classifier version: what it decided recently and how clinicians' reviews agreed, for /metrics. */
import type { DataSource } from 'typeorm';
import { recordedPrecision } from '../inference/types.js';
import { histogramSql, LUNG_AREA_BIN, PROBABILITY_BIN } from './drift-bins.js';

/** predictions (p2) of the version (mv) in the recent window ($1 hours) */
const RECENT = 'p2.classifier_id = mv.id AND p2.created_at >= now() - make_interval(hours => $1)';

/** A site's accepted window of one version's predictions (`cxr-triage model baseline`), the reference for drift when set. */
export interface SiteBaseline {
  from: string;
  to: string;
  n: number;
  positive: number;
  probabilityHistogram: number[];
  lungAreaHistogram: number[];
}

export interface ModelActivity {
  modelVersion: string;
  manifest: Record<string, unknown>;
  /** all predictions ever, and those with a QC flag (monotonic: rows are never deleted) */
  predictions: number;
  qcFailures: number;
  /** within the recent window */
  recent: number;
  recentPositive: number;
  recentFlagged: number;
  /** probabilities of the recent window in 10 bins over [0,1] */
  recentHistogram: number[];
  /** lung area fractions of the recent window in 10 bins over [0, 0.6) (the last bin takes everything above) */
  recentLungHistogram: number[];
  /** the recent predictions by the rule that decided them: classifier precision and report.population.thresholdOf */
  recentGroups: { precision: string | null; thresholdOf: string | null; n: number }[];
  /** the file the registry row names: its version ends in +int8 for the int8 one */
  precision: 'int8' | 'float';
  /** the site's own reference (model baseline), or null: validation's */
  siteBaseline: SiteBaseline | null;
  /** studies whose latest review is within the review window, and how many of those agreed */
  reviewed: number;
  agreed: number;
}

export async function modelActivity(ds: DataSource, recentHours = 24, reviewDays = 30): Promise<ModelActivity[]> {
  const rows: {
    version: string;
    manifest: Record<string, unknown>;
    predictions: number;
    qc_failures: number;
    recent: number;
    recent_positive: number;
    recent_flagged: number;
    hist: number[] | null;
    lung_hist: number[] | null;
    groups: { precision: string | null; thresholdOf: string | null; n: number }[] | null;
    baseline: SiteBaseline | null;
    reviewed: number;
    agreed: number;
  }[] = await ds.query(
    `SELECT mv.name || '@' || mv.version AS version, mv.manifest,
            count(pr.id)::int AS predictions,
            count(pr.id) FILTER (WHERE cardinality(pr.qc_flags) > 0)::int AS qc_failures,
            count(pr.id) FILTER (WHERE pr.created_at >= now() - make_interval(hours => $1))::int AS recent,
            count(pr.id) FILTER (WHERE pr.created_at >= now() - make_interval(hours => $1) AND pr.decision = 'positive')::int AS recent_positive,
            count(pr.id) FILTER (WHERE pr.created_at >= now() - make_interval(hours => $1) AND pr.flagged)::int AS recent_flagged,
            ${histogramSql(PROBABILITY_BIN, RECENT)} AS hist,
            ${histogramSql(LUNG_AREA_BIN, RECENT)} AS lung_hist,
            (SELECT json_agg(json_build_object('precision', g.precision, 'thresholdOf', g.threshold_of, 'n', g.n))
               FROM (SELECT p2.report->'models'->'classifier'->>'precision' AS precision, p2.report->'population'->>'thresholdOf' AS threshold_of,
                            count(*)::int AS n
                       FROM predictions p2 WHERE ${RECENT}
                      GROUP BY 1, 2) g) AS groups,
            (SELECT json_build_object('from', b.window_from, 'to', b.window_to, 'n', b.n, 'positive', b.positive,
                                      'probabilityHistogram', b.probability_histogram, 'lungAreaHistogram', b.lung_area_histogram)
               FROM drift_baselines b WHERE b.classifier_id = mv.id) AS baseline,
            count(lr.verdict)::int AS reviewed,
            count(lr.verdict) FILTER (WHERE lr.verdict = 'agree')::int AS agreed
       FROM model_versions mv
       LEFT JOIN predictions pr ON pr.classifier_id = mv.id
       LEFT JOIN LATERAL (SELECT r.verdict FROM reviews r WHERE r.prediction_id = pr.id AND r.created_at >= now() - make_interval(days => $2)
                           ORDER BY r.id DESC LIMIT 1) lr ON true
      WHERE mv.kind = 'classifier'
      GROUP BY mv.id`,
    [recentHours, reviewDays],
  );
  return rows.map((r) => ({
    modelVersion: r.version,
    manifest: r.manifest,
    predictions: r.predictions,
    qcFailures: r.qc_failures,
    recent: r.recent,
    recentPositive: r.recent_positive,
    recentFlagged: r.recent_flagged,
    recentHistogram: r.hist ?? new Array(10).fill(0),
    recentLungHistogram: r.lung_hist ?? new Array(10).fill(0),
    recentGroups: r.groups ?? [],
    siteBaseline: r.baseline,
    precision: recordedPrecision(r.version),
    reviewed: r.reviewed,
    agreed: r.agreed,
  }));
}
