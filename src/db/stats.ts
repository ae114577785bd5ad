/** Aggregates for the web app: what is waiting, daily volume and agreement per model version, probability histograms, priors. */
import type { DataSource } from 'typeorm';

export interface WorklistCounts {
  flaggedUnreviewed: number;
  unreviewed: number;
  awaitingScore: number;
}

/** What is waiting, in studies (one worklist row each): read from the kept per-study rows. */
export async function worklistCounts(ds: DataSource): Promise<WorklistCounts> {
  const [r]: { flagged_unreviewed: number; unreviewed: number; awaiting: number }[] = await ds.query(
    `SELECT count(*) FILTER (WHERE NOT pending AND flagged AND review_count = 0)::int AS flagged_unreviewed,
            count(*) FILTER (WHERE NOT pending AND review_count = 0)::int AS unreviewed,
            count(*) FILTER (WHERE pending)::int AS awaiting
       FROM study_worklist`,
  );
  return { flaggedUnreviewed: r.flagged_unreviewed, unreviewed: r.unreviewed, awaitingScore: r.awaiting };
}

export interface DailyStat {
  day: string;
  modelVersion: string;
  studies: number;
  flagged: number;
  reviewed: number;
  agreed: number;
}

/** Per UTC day of prediction and classifier version; a study counts as agreed when its latest review agrees. */
export async function dailyStats(ds: DataSource, days: number, now = new Date()): Promise<DailyStat[]> {
  const rows: { day: string; version: string; studies: number; flagged: number; reviewed: number; agreed: number }[] = await ds.query(
    `SELECT to_char(date_trunc('day', pr.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
            mv.name || '@' || mv.version AS version,
            count(*)::int AS studies,
            count(*) FILTER (WHERE pr.flagged)::int AS flagged,
            count(lr.verdict)::int AS reviewed,
            count(*) FILTER (WHERE lr.verdict = 'agree')::int AS agreed
       FROM predictions pr
       JOIN model_versions mv ON mv.id = pr.classifier_id
       LEFT JOIN LATERAL (SELECT r.verdict FROM reviews r WHERE r.prediction_id = pr.id ORDER BY r.id DESC LIMIT 1) lr ON true
      WHERE pr.created_at >= $1
      GROUP BY 1, 2
      ORDER BY 1, 2`,
    [new Date(now.getTime() - days * 86_400_000)],
  );
  return rows.map((r) => ({ day: r.day, modelVersion: r.version, studies: r.studies, flagged: r.flagged, reviewed: r.reviewed, agreed: r.agreed }));
}

export interface ProbabilityHistogram {
  modelVersion: string;
  /** bin edges, bins.length = counts.length + 1 */
  bins: number[];
  counts: number[];
}

export async function probabilityHistograms(ds: DataSource, binCount = 10): Promise<ProbabilityHistogram[]> {
  const rows: { version: string; bin: number; n: number }[] = await ds.query(
    `SELECT mv.name || '@' || mv.version AS version, LEAST(width_bucket(pr.probability, 0, 1, $1), $1) AS bin, count(*)::int AS n
       FROM predictions pr JOIN model_versions mv ON mv.id = pr.classifier_id
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [binCount],
  );
  const bins = Array.from({ length: binCount + 1 }, (_, i) => i / binCount);
  const out = new Map<string, number[]>();
  for (const r of rows) {
    const counts = out.get(r.version) ?? new Array<number>(binCount).fill(0);
    counts[Math.max(1, r.bin) - 1] += r.n;
    out.set(r.version, counts);
  }
  return [...out].map(([modelVersion, counts]) => ({ modelVersion, bins, counts }));
}

export interface PriorStudy {
  studyId: string;
  receivedAt: Date;
  probability: number | null;
  flagged: boolean;
}

/** Earlier studies of the same patient pseudonym (newest first); none when the study has no patient id. */
export async function priorStudies(ds: DataSource, studyId: string, limit = 10): Promise<PriorStudy[]> {
  const rows: { id: string; received_at: Date; probability: number | null; flagged: boolean | null }[] = await ds.query(
    `SELECT p.id, p.received_at, pr.probability, pr.flagged
       FROM studies s
       JOIN studies p ON p.patient_pseudonym = s.patient_pseudonym AND p.study_instance_uid <> s.study_instance_uid AND p.received_at < s.received_at
       LEFT JOIN predictions pr ON pr.study_id = p.id
      WHERE s.id = $1 AND s.patient_pseudonym IS NOT NULL
      ORDER BY p.received_at DESC
      LIMIT $2`,
    [studyId, limit],
  );
  return rows.map((r) => ({ studyId: r.id, receivedAt: r.received_at, probability: r.probability, flagged: r.flagged ?? false }));
}
