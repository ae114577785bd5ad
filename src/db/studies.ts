/** Studies, their predictions and reviews: the rows a workstation creates and a clinician reads. */
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import type { DataSource, EntityManager } from 'typeorm';
import { PredictionEntity, ReviewEntity, StudyEntity, type PredictionRow, type ReviewRow, type StudyRow, type Verdict } from './entities.js';

export type NewStudy = Omit<StudyRow, 'seq' | 'status' | 'errorCode' | 'errorMessage' | 'scoredAt'>;

/**
 * Inserts a study unless its SOP Instance UID is already known; concurrent posts of the same
 * instance race on the unique constraint, and exactly one of them inserts.
 */
export async function insertStudyOnce(m: EntityManager, s: NewStudy): Promise<{ study: StudyRow; created: boolean }> {
  const res = await m
    .createQueryBuilder()
    .insert()
    .into(StudyEntity)
    .values({ ...s, status: 'queued' })
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

/** Accepted studies without a result, oldest first: what a restart must finish. */
export async function listQueuedStudyIds(ds: DataSource): Promise<string[]> {
  const rows: { id: string }[] = await ds.query(`SELECT id FROM studies WHERE status = 'queued' ORDER BY seq`);
  return rows.map((r) => r.id);
}

export type NewPrediction = Omit<PredictionRow, 'id' | 'studyId' | 'createdAt'>;

/**
 * Stores the prediction and marks the study scored in one transaction. The unique study_id
 * makes a second run for the same study (a retry after restart) a no-op, never a second row.
 */
export async function recordPrediction(ds: DataSource, studyId: string, p: NewPrediction): Promise<boolean> {
  return ds.transaction(async (m) => {
    const res = await m
      .createQueryBuilder()
      .insert()
      .into(PredictionEntity)
      .values({ ...p, studyId, createdAt: new Date() } as QueryDeepPartialEntity<PredictionRow>)
      .orIgnore()
      .returning(['id'])
      .execute();
    const inserted = Array.isArray(res.raw) && res.raw.length > 0;
    await m.query(`UPDATE studies SET status = 'scored', scored_at = now(), error_code = NULL, error_message = NULL WHERE id = $1`, [studyId]);
    return inserted;
  });
}

export async function recordFailure(ds: DataSource, studyId: string, code: string, message: string): Promise<void> {
  await ds.query(`UPDATE studies SET status = 'failed', error_code = $2, error_message = $3, scored_at = now() WHERE id = $1 AND status = 'queued'`, [
    studyId,
    code,
    message.slice(0, 500),
  ]);
}

export async function addReview(
  m: EntityManager,
  r: { studyId: string; predictionId: string; reviewer: string; verdict: Verdict; note: string },
): Promise<ReviewRow> {
  const repo = m.getRepository(ReviewEntity);
  return repo.save(repo.create({ ...r, createdAt: new Date() }));
}

export interface WorklistFilters {
  flagged?: boolean;
  decision?: 'positive' | 'negative';
  reviewed?: boolean;
  status?: 'scored' | 'failed';
}

/** Sort position of a worklist row; the cursor carries the last one. */
export interface WorklistKey {
  flagged: boolean;
  /** probability, or 2 for a failed study so it sorts above every scored one */
  rank: number;
  seq: string;
}

export interface WorklistItem {
  studyId: string;
  status: 'scored' | 'failed';
  studyInstanceUid: string;
  modality: string | null;
  viewPosition: string | null;
  receivedAt: Date;
  probability: number | null;
  decision: 'positive' | 'negative' | null;
  flagged: boolean;
  flagReasons: string[];
  qcFlags: string[];
  errorCode: string | null;
  reviewCount: number;
  lastVerdict: Verdict | null;
  key: WorklistKey;
}

/**
 * Flagged first, then by probability descending; a study that could not be scored counts as
 * flagged and sorts on top, since a triage list must not quietly clear what it could not read.
 * Keyset pagination on (flagged, rank, seq), so pages stay stable while new studies arrive.
 */
export async function worklist(ds: DataSource, f: WorklistFilters, after: WorklistKey | null, limit: number): Promise<WorklistItem[]> {
  const where: string[] = [`s.status IN ('scored', 'failed')`];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.status) where.push(`s.status = ${p(f.status)}`);
  if (f.flagged !== undefined) where.push(`COALESCE(pr.flagged, true) = ${p(f.flagged)}`);
  if (f.decision) where.push(`pr.decision = ${p(f.decision)}`);
  if (f.reviewed !== undefined) where.push(`${f.reviewed ? '' : 'NOT '}EXISTS (SELECT 1 FROM reviews r WHERE r.study_id = s.id)`);
  if (after) {
    where.push(
      `(COALESCE(pr.flagged, true), COALESCE(pr.probability, 2), s.seq) < (${p(after.flagged)}::boolean, ${p(after.rank)}::float8, ${p(after.seq)}::bigint)`,
    );
  }
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT s.id, s.status, s.study_instance_uid, s.modality, s.view_position, s.received_at, s.error_code, s.seq,
            pr.probability, pr.decision, COALESCE(pr.flagged, true) AS flagged,
            COALESCE(pr.flag_reasons, ARRAY['failed']::text[]) AS flag_reasons, COALESCE(pr.qc_flags, '{}'::text[]) AS qc_flags,
            COALESCE(pr.probability, 2) AS rank,
            (SELECT count(*) FROM reviews r WHERE r.study_id = s.id)::int AS review_count,
            (SELECT r.verdict FROM reviews r WHERE r.study_id = s.id ORDER BY r.id DESC LIMIT 1) AS last_verdict
       FROM studies s LEFT JOIN predictions pr ON pr.study_id = s.id
      WHERE ${where.join(' AND ')}
      ORDER BY COALESCE(pr.flagged, true) DESC, COALESCE(pr.probability, 2) DESC, s.seq DESC
      LIMIT ${p(limit)}`,
    params,
  );
  return rows.map((r) => ({
    studyId: r.id as string,
    status: r.status as 'scored' | 'failed',
    studyInstanceUid: r.study_instance_uid as string,
    modality: r.modality as string | null,
    viewPosition: r.view_position as string | null,
    receivedAt: r.received_at as Date,
    probability: r.probability as number | null,
    decision: r.decision as 'positive' | 'negative' | null,
    flagged: r.flagged as boolean,
    flagReasons: r.flag_reasons as string[],
    qcFlags: r.qc_flags as string[],
    errorCode: r.error_code as string | null,
    reviewCount: r.review_count as number,
    lastVerdict: r.last_verdict as Verdict | null,
    key: { flagged: r.flagged as boolean, rank: r.rank as number, seq: String(r.seq) },
  }));
}
