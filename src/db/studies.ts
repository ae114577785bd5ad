/** Studies, their predictions and reviews: the rows a workstation creates and a clinician reads. */
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import type { DataSource, EntityManager } from 'typeorm';
import { PredictionEntity, ReviewEntity, StudyEntity, type PredictionRow, type ReviewLabel, type ReviewRow, type StudyRow, type Verdict } from './entities.js';

export type NewStudy = Omit<StudyRow, 'seq' | 'status' | 'errorCode' | 'errorMessage' | 'scoredAt' | 'exclusionReason' | 'accessionNumber' | 'studyDate'> &
  Partial<Pick<StudyRow, 'accessionNumber' | 'studyDate'>>;

/**
 * Inserts a study unless its SOP Instance UID is already known; concurrent posts of the same
 * instance race on the unique constraint, and exactly one of them inserts.
 */
export async function insertStudyOnce(m: EntityManager, s: NewStudy): Promise<{ study: StudyRow; created: boolean }> {
  const res = await m
    .createQueryBuilder()
    .insert()
    .into(StudyEntity)
    .values({ accessionNumber: null, studyDate: null, ...s, status: 'queued' })
    .orIgnore()
    .returning(['id'])
    .execute();
  const created = Array.isArray(res.raw) && res.raw.length > 0;
  const study = await m.getRepository(StudyEntity).findOneByOrFail({ sopInstanceUid: s.sopInstanceUid });
  return { study, created };
}

export async function findStudy(db: DataSource | EntityManager, id: string): Promise<StudyRow | null> {
  return db.getRepository(StudyEntity).findOneBy({ id });
}

export async function findStudyBySop(db: DataSource | EntityManager, sopInstanceUid: string): Promise<StudyRow | null> {
  return db.getRepository(StudyEntity).findOneBy({ sopInstanceUid });
}

export async function findPrediction(db: DataSource | EntityManager, studyId: string): Promise<PredictionRow | null> {
  return db.getRepository(PredictionEntity).findOneBy({ studyId });
}

export async function listReviews(db: DataSource | EntityManager, studyId: string): Promise<ReviewRow[]> {
  return db.getRepository(ReviewEntity).find({ where: { studyId }, order: { id: 'ASC' } });
}

/** Accepted studies without a result, across every process: the queue's depth as a client sees it. */
/** Which of these studies are no longer queued (scored, failed or not scored): one query for many waiters. */
export async function settledStudies(db: DataSource | EntityManager, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows: { id: string }[] = await db.query(`SELECT id FROM studies WHERE id = ANY($1::uuid[]) AND status <> 'queued'`, [ids]);
  return rows.map((r) => r.id);
}

export async function countQueuedStudies(db: DataSource | EntityManager): Promise<number> {
  const rows: { n: number }[] = await db.query(`SELECT count(*)::int AS n FROM studies WHERE status = 'queued'`);
  return rows[0].n;
}

export type NewPrediction = Omit<PredictionRow, 'id' | 'studyId' | 'createdAt'>;

/**
 * Stores the prediction and marks the study scored in one transaction, only while the study
 * is still queued (its row locked meanwhile): a retry of a job whose earlier attempt finished,
 * or one racing the study's dead letter, changes nothing. The unique study_id backs this up:
 * never a second prediction for a study.
 */
export async function recordPrediction(
  ds: DataSource,
  studyId: string,
  p: NewPrediction,
  exclusionReason: string | null = null,
  /** more writes that belong with a new prediction (the results outbox), in its transaction */
  withPrediction?: (m: EntityManager, predictionId: string) => Promise<void>,
): Promise<boolean> {
  return ds.transaction(async (m) => {
    const rows: { status: string }[] = await m.query(`SELECT status FROM studies WHERE id = $1 FOR UPDATE`, [studyId]);
    if (rows[0]?.status !== 'queued') return false;
    const res = await m
      .createQueryBuilder()
      .insert()
      .into(PredictionEntity)
      .values({ ...p, studyId, createdAt: new Date() } as QueryDeepPartialEntity<PredictionRow>)
      .orIgnore()
      .returning(['id'])
      .execute();
    const inserted = Array.isArray(res.raw) && res.raw.length > 0;
    if (inserted && withPrediction) await withPrediction(m, String((res.raw as { id: string }[])[0].id));
    await m.query(`UPDATE studies SET status = 'scored', scored_at = now(), error_code = NULL, error_message = NULL, exclusion_reason = $2 WHERE id = $1`, [
      studyId,
      exclusionReason,
    ]);
    return inserted;
  });
}

/** An instance that is kept and listed but not scored (not a frontal chest image), with why. */
export async function recordNotScored(ds: DataSource, studyId: string, reason: string): Promise<void> {
  await ds.query(`UPDATE studies SET status = 'not_scored', exclusion_reason = $2, scored_at = now() WHERE id = $1 AND status = 'queued'`, [
    studyId,
    reason.slice(0, 500),
  ]);
}

/** Marks a still-queued study failed with the reason; false when it had already finished. */
export async function recordFailure(ds: DataSource, studyId: string, code: string, message: string): Promise<boolean> {
  const [, changed]: [unknown, number] = await ds.query(
    `UPDATE studies SET status = 'failed', error_code = $2, error_message = $3, scored_at = now() WHERE id = $1 AND status = 'queued'`,
    [studyId, code, message.slice(0, 500)],
  );
  return changed > 0;
}

export async function addReview(
  m: EntityManager,
  r: { studyId: string; predictionId: string; reviewer: string; verdict: Verdict; note: string; label?: ReviewLabel | null; amendsId?: string | null },
): Promise<ReviewRow> {
  const repo = m.getRepository(ReviewEntity);
  return repo.save(repo.create({ ...r, label: r.label ?? null, amendsId: r.amendsId ?? null, createdAt: new Date() }));
}

export interface WorklistFilters {
  flagged?: boolean;
  decision?: 'positive' | 'negative';
  reviewed?: boolean;
  status?: 'scored' | 'failed';
  /** received at or after / before */
  from?: Date;
  to?: Date;
  /** classifier version (or name@version) of the prediction */
  model?: string;
  /** one study */
  studyInstanceUid?: string;
}

/** Sort position of a worklist row; the cursor carries the last one. */
export interface WorklistKey {
  flagged: boolean;
  /** probability, or 2 for a failed study so it sorts above every scored one */
  rank: number;
  seq: string;
}

/** One instance of a worklist study, and whether (and why not) it counts toward the decision. */
export interface WorklistInstance {
  /** the instance's id: /v1/studies/{id} shows it */
  id: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  viewPosition: string | null;
  /** scored: its result counts; not_scored: kept and listed, see reason; failed: could not be read */
  status: 'scored' | 'not_scored' | 'failed';
  probability: number | null;
  flagged: boolean | null;
  /** why it was not scored (or why its result does not count), or the failure message */
  reason: string | null;
  errorCode: string | null;
  /** true for the instance the study's decision comes from */
  decisive: boolean;
}

export interface WorklistItem {
  /** the instance the study's decision comes from (its images, report and reviews) */
  studyId: string;
  /** scored: at least one frontal image scored; failed: none could be */
  status: 'scored' | 'failed';
  studyInstanceUid: string;
  accessionNumber: string | null;
  /** YYYY-MM-DD */
  studyDate: string | null;
  modality: string | null;
  viewPosition: string | null;
  /** first instance received */
  receivedAt: Date;
  probability: number | null;
  threshold: number | null;
  /** the classifier behind the prediction, name@version */
  modelVersion: string | null;
  decision: 'positive' | 'negative' | null;
  flagged: boolean;
  flagReasons: string[];
  qcFlags: string[];
  errorCode: string | null;
  reviewCount: number;
  lastVerdict: Verdict | null;
  scoredImages: number;
  instances: WorklistInstance[];
  key: WorklistKey;
}

/**
 * One row per study (StudyInstanceUID), once none of its instances is waiting. The study takes
 * its most suspicious frontal result (flagged first, then the highest probability); it is
 * flagged when that result is, when a frontal image could not be read, or when no frontal image
 * was scored at all — a triage list must not quietly clear what it could not read. Flagged
 * first, then by probability descending (a study without a result sorts on top). Keyset
 * pagination on (flagged, rank, seq of the study's latest instance), so pages stay stable
 * while new studies arrive. The per-study row is kept by a trigger in study_worklist
 * (migration WorklistSummary, where these rules are written in SQL), so a page is an index scan
 * however many studies the database holds.
 */
export async function worklist(ds: DataSource, f: WorklistFilters, after: WorklistKey | null, limit: number): Promise<WorklistItem[]> {
  const where: string[] = ['true'];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.status) where.push(`w.status = ${p(f.status)}`);
  if (f.studyInstanceUid) where.push(`w.study_instance_uid = ${p(f.studyInstanceUid)}`);
  if (f.flagged !== undefined) where.push(`w.flagged = ${p(f.flagged)}`);
  if (f.decision) where.push(`w.decision = ${p(f.decision)}`);
  if (f.reviewed !== undefined) where.push(`w.review_count ${f.reviewed ? '>' : '='} 0`);
  if (f.from) where.push(`w.received_at >= ${p(f.from)}`);
  if (f.to) where.push(`w.received_at < ${p(f.to)}`);
  if (f.model) where.push(`(w.model_version = ${p(f.model)} OR w.model_version LIKE '%@' || ${p(f.model)})`);
  if (after) where.push(`(w.flagged, w.rank, w.seq) < (${p(after.flagged)}::boolean, ${p(after.rank)}::float8, ${p(after.seq)}::bigint)`);
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT w.*,
            (SELECT json_agg(json_build_object('id', s.id, 'sopInstanceUid', s.sop_instance_uid, 'seriesInstanceUid', s.series_instance_uid,
                                               'viewPosition', s.view_position,
                                               'status', CASE WHEN s.exclusion_reason IS NOT NULL OR s.status NOT IN ('scored', 'failed') THEN 'not_scored' ELSE s.status END,
                                               'probability', pr.probability, 'flagged', pr.flagged,
                                               'reason', COALESCE(s.exclusion_reason, s.error_message), 'errorCode', s.error_code, 'decisive', s.id = w.id)
                             ORDER BY s.seq)
               FROM studies s LEFT JOIN predictions pr ON pr.study_id = s.id
              WHERE s.study_instance_uid = w.study_instance_uid) AS instances
       FROM study_worklist w
      WHERE NOT w.pending AND ${where.join(' AND ')}
      ORDER BY w.flagged DESC, w.rank DESC, w.seq DESC
      LIMIT ${p(limit)}`,
    params,
  );
  return rows.map((r) => ({
    studyId: r.id as string,
    status: r.status as 'scored' | 'failed',
    studyInstanceUid: r.study_instance_uid as string,
    accessionNumber: r.accession_number as string | null,
    studyDate: r.study_date as string | null,
    modality: r.modality as string | null,
    viewPosition: r.view_position as string | null,
    receivedAt: r.received_at as Date,
    probability: r.probability as number | null,
    threshold: r.threshold as number | null,
    modelVersion: r.model_version as string | null,
    decision: r.decision as 'positive' | 'negative' | null,
    flagged: r.flagged as boolean,
    flagReasons: r.flag_reasons as string[],
    qcFlags: r.qc_flags as string[],
    errorCode: r.error_code as string | null,
    reviewCount: r.review_count as number,
    lastVerdict: r.last_verdict as Verdict | null,
    scoredImages: r.scored_images as number,
    instances: r.instances as WorklistInstance[],
    key: { flagged: r.flagged as boolean, rank: r.rank as number, seq: String(r.seq) },
  }));
}
