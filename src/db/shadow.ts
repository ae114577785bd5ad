/**
 * Shadow models: the running candidate (`shadow_settings`), what it said (`shadow_predictions`,
 * a table no reader of `predictions` touches), and how it compares with the active model and
 * with clinicians' reviews.
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { ModelKind } from './entities.js';

export interface ShadowSetting {
  id: number;
  kind: ModelKind;
  name: string;
  version: string;
  fraction: number;
  startedBy: string;
  startedAt: Date;
  stoppedBy: string | null;
  stoppedAt: Date | null;
}

interface SettingRow {
  id: number;
  kind: ModelKind;
  name: string;
  version: string;
  fraction: number;
  started_by: string;
  started_at: Date;
  stopped_by: string | null;
  stopped_at: Date | null;
}

const settingOf = (r: SettingRow): ShadowSetting => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  version: r.version,
  fraction: r.fraction,
  startedBy: r.started_by,
  startedAt: r.started_at,
  stoppedBy: r.stopped_by,
  stoppedAt: r.stopped_at,
});

type Queryable = Pick<DataSource | EntityManager, 'query'>;

/** The candidate scoring now, or null. */
export async function runningShadow(q: Queryable): Promise<ShadowSetting | null> {
  const rows: SettingRow[] = await q.query(`SELECT * FROM shadow_settings WHERE stopped_at IS NULL`);
  return rows[0] ? settingOf(rows[0]) : null;
}

/** Stops the running candidate (only `only`, when given); returns the stopped setting, or null when none matched. */
export async function stopShadowIn(m: EntityManager, by: string, only?: { name: string; version: string }): Promise<ShadowSetting | null> {
  // TypeORM answers an UPDATE ... RETURNING on PostgreSQL with [rows, affected count]
  const [rows]: [SettingRow[], number] = await m.query(
    `UPDATE shadow_settings SET stopped_at = now(), stopped_by = $1
      WHERE stopped_at IS NULL ${only ? 'AND name = $2 AND version = $3' : ''}
      RETURNING *`,
    only ? [by, only.name, only.version] : [by],
  );
  return rows[0] ? settingOf(rows[0]) : null;
}

/** Replaces whatever candidate runs with this one (the caller's transaction: stop and start commit together). */
export async function startShadowIn(
  m: EntityManager,
  s: { kind: ModelKind; name: string; version: string; fraction: number; by: string },
): Promise<{ started: ShadowSetting; replaced: ShadowSetting | null }> {
  // two operators starting candidates at once: the second waits and replaces the first
  await m.query(`LOCK TABLE shadow_settings IN SHARE ROW EXCLUSIVE MODE`);
  const replaced = await stopShadowIn(m, s.by);
  const rows: SettingRow[] = await m.query(`INSERT INTO shadow_settings (kind, name, version, fraction, started_by) VALUES ($1, $2, $3, $4, $5) RETURNING *`, [
    s.kind,
    s.name,
    s.version,
    s.fraction,
    s.by,
  ]);
  return { started: settingOf(rows[0]), replaced };
}

export interface NewShadowPrediction {
  studyId: string;
  segmenterId: number;
  classifierId: number;
  probability: number;
  threshold: number;
  decision: 'positive' | 'negative';
  flagged: boolean;
  flagReasons: string[];
  qcFlags: string[];
  ttaSpread: number;
  lungAreaFraction: number;
}

/** Stores a candidate's result; false when this study already has one from these versions (a retried job). */
export async function recordShadowPrediction(ds: DataSource, p: NewShadowPrediction): Promise<boolean> {
  const rows: unknown[] = await ds.query(
    `INSERT INTO shadow_predictions (study_id, segmenter_id, classifier_id, probability, threshold, decision, flagged, flag_reasons, qc_flags, tta_spread, lung_area_fraction)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (study_id, segmenter_id, classifier_id) DO NOTHING RETURNING id`,
    [p.studyId, p.segmenterId, p.classifierId, p.probability, p.threshold, p.decision, p.flagged, p.flagReasons, p.qcFlags, p.ttaSpread, p.lungAreaFraction],
  );
  return rows.length > 0;
}

/** One model's decisions on reviewed studies whose truth the review gives. */
export interface ReviewedFigures {
  truePositive: number;
  falseNegative: number;
  trueNegative: number;
  falsePositive: number;
  /** null when no reviewed study had that truth */
  sensitivity: number | null;
  specificity: number | null;
}

export interface ShadowComparison {
  kind: ModelKind;
  /** NAME@VERSION of the candidate */
  candidate: string;
  /** the latest setting naming it (null: predictions without a setting, e.g. written by an older run) */
  setting: ShadowSetting | null;
  /** studies the candidate scored */
  scored: number;
  /** of those, studies with an active prediction to compare with */
  compared: number;
  /** the exact model versions behind the candidate's results, and behind the active results they are compared with */
  candidateVersions: { segmenter: string; classifier: string; n: number }[];
  activeVersions: { segmenter: string; classifier: string; n: number }[];
  /** share of compared studies where both decided the same (null when none compared) */
  decisionAgreement: number | null;
  meanAbsProbabilityDifference: number | null;
  flaggedRate: { candidate: number | null; active: number | null };
  /**
   * Compared studies whose latest review says what the truth is: its label (pneumonia /
   * no pneumonia; 'uncertain' says nothing), else its verdict on the active decision it reviewed
   * (agree: that decision; disagree: the other).
   */
  reviewed: { n: number; positive: number; negative: number; candidate: ReviewedFigures; active: ReviewedFigures };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

function figures(tp: number, fn: number, tn: number, fp: number): ReviewedFigures {
  return { truePositive: tp, falseNegative: fn, trueNegative: tn, falsePositive: fp, sensitivity: ratio(tp, tp + fn), specificity: ratio(tn, tn + fp) };
}

/** Candidates ever set to shadow, newest first, or the one named. */
export async function shadowCandidates(ds: DataSource, only?: { name: string; version: string }): Promise<ShadowSetting[]> {
  const rows: SettingRow[] = await ds.query(
    `SELECT DISTINCT ON (name, version) * FROM shadow_settings
      ${only ? 'WHERE name = $1 AND version = $2' : ''}
      ORDER BY name, version, id DESC`,
    only ? [only.name, only.version] : [],
  );
  return rows.map(settingOf).sort((a, b) => b.id - a.id);
}

/**
 * The comparison for one candidate version (`name` is its model, segmenter or classifier). The
 * int8 file of a version is registered as `<version>+int8`: both count as the candidate.
 */
export async function shadowComparison(
  ds: DataSource,
  kind: ModelKind,
  name: string,
  version: string,
  setting: ShadowSetting | null,
): Promise<ShadowComparison> {
  const col = kind === 'segmenter' ? 'segmenter_id' : 'classifier_id';
  const from = `
    FROM shadow_predictions sp
    JOIN model_versions cand ON cand.id = sp.${col} AND cand.name = $1 AND (cand.version = $2 OR cand.version = $2 || '+int8')`;
  const [totals]: {
    scored: number;
    compared: number;
    agree: number;
    mad: number | null;
    cand_flagged: number;
    active_flagged: number;
    reviewed: number;
    pos: number;
    neg: number;
    c_tp: number;
    c_tn: number;
    a_tp: number;
    a_tn: number;
  }[] = await ds.query(
    `WITH pairs AS (
       SELECT sp.decision AS cd, sp.flagged AS cf, sp.probability AS cp, p.decision AS ad, p.flagged AS af, p.probability AS ap,
              CASE WHEN p.id IS NULL THEN NULL
                   WHEN lr.label = 'pneumonia' THEN 'positive'
                   WHEN lr.label = 'no_pneumonia' THEN 'negative'
                   WHEN lr.label = 'uncertain' THEN NULL
                   WHEN lr.verdict = 'agree' THEN rp.decision
                   WHEN lr.verdict = 'disagree' THEN CASE rp.decision WHEN 'positive' THEN 'negative' WHEN 'negative' THEN 'positive' END
              END AS truth
       ${from}
       LEFT JOIN predictions p ON p.study_id = sp.study_id
       LEFT JOIN LATERAL (SELECT r.label, r.verdict, r.prediction_id FROM reviews r WHERE r.study_id = sp.study_id ORDER BY r.id DESC LIMIT 1) lr ON true
       LEFT JOIN predictions rp ON rp.id = lr.prediction_id
     )
     SELECT count(*)::int AS scored,
            count(ad)::int AS compared,
            count(*) FILTER (WHERE cd = ad)::int AS agree,
            avg(abs(cp - ap)) AS mad,
            count(*) FILTER (WHERE ad IS NOT NULL AND cf)::int AS cand_flagged,
            count(*) FILTER (WHERE af)::int AS active_flagged,
            count(truth)::int AS reviewed,
            count(*) FILTER (WHERE truth = 'positive')::int AS pos,
            count(*) FILTER (WHERE truth = 'negative')::int AS neg,
            count(*) FILTER (WHERE truth = 'positive' AND cd = 'positive')::int AS c_tp,
            count(*) FILTER (WHERE truth = 'negative' AND cd = 'negative')::int AS c_tn,
            count(*) FILTER (WHERE truth = 'positive' AND ad = 'positive')::int AS a_tp,
            count(*) FILTER (WHERE truth = 'negative' AND ad = 'negative')::int AS a_tn
       FROM pairs`,
    [name, version],
  );
  const versions = async (table: 'sp' | 'p'): Promise<{ segmenter: string; classifier: string; n: number }[]> =>
    (
      await ds.query(
        `SELECT seg.name || '@' || seg.version AS segmenter, cls.name || '@' || cls.version AS classifier, count(*)::int AS n
         ${from}
         ${table === 'p' ? 'JOIN predictions p ON p.study_id = sp.study_id' : ''}
         JOIN model_versions seg ON seg.id = ${table}.segmenter_id
         JOIN model_versions cls ON cls.id = ${table}.classifier_id
        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2`,
        [name, version],
      )
    ).map((r: { segmenter: string; classifier: string; n: number }) => ({ segmenter: r.segmenter, classifier: r.classifier, n: r.n }));
  const t = totals;
  return {
    kind,
    candidate: `${name}@${version}`,
    setting,
    scored: t.scored,
    compared: t.compared,
    candidateVersions: await versions('sp'),
    activeVersions: await versions('p'),
    decisionAgreement: ratio(t.agree, t.compared),
    meanAbsProbabilityDifference: t.mad === null ? null : Number(t.mad),
    flaggedRate: { candidate: ratio(t.cand_flagged, t.compared), active: ratio(t.active_flagged, t.compared) },
    reviewed: {
      n: t.reviewed,
      positive: t.pos,
      negative: t.neg,
      candidate: figures(t.c_tp, t.pos - t.c_tp, t.c_tn, t.neg - t.c_tn),
      active: figures(t.a_tp, t.pos - t.a_tp, t.a_tn, t.neg - t.a_tn),
    },
  };
}
