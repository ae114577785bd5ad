/** The auditor's view: every prediction with its study, model versions and latest review. */
import type { DataSource } from 'typeorm';
import type { Verdict } from './entities.js';

export interface PredictionFilters {
  from?: Date;
  to?: Date;
  /** classifier or segmenter version, as `name@version` or just `version` */
  model?: string;
  decision?: 'positive' | 'negative';
  flagged?: boolean;
  reviewed?: boolean;
  /** the latest review's verdict */
  agreement?: Verdict;
}

export interface PredictionRecord {
  predictionId: string;
  studyId: string;
  studyInstanceUid: string;
  sopInstanceUid: string;
  patientPseudonym: string | null;
  modality: string | null;
  viewPosition: string | null;
  receivedAt: Date;
  predictedAt: Date;
  segmenter: string;
  classifier: string;
  probability: number;
  threshold: number;
  targetRecall: number;
  decision: 'positive' | 'negative';
  flagged: boolean;
  flagReasons: string[];
  qcFlags: string[];
  ttaViews: number;
  ttaSpread: number;
  lungAreaFraction: number;
  reviewCount: number;
  lastVerdict: Verdict | null;
  lastReviewer: string | null;
  lastReviewedAt: Date | null;
}

/** Newest first; `before` is the prediction id the previous page ended at. */
export async function listPredictions(ds: DataSource, f: PredictionFilters, before: string | null, limit: number): Promise<PredictionRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (before) where.push(`pr.id < ${p(before)}::bigint`);
  if (f.from) where.push(`pr.created_at >= ${p(f.from)}`);
  if (f.to) where.push(`pr.created_at < ${p(f.to)}`);
  if (f.model) {
    const m = p(f.model);
    where.push(`(${m} IN (seg.name || '@' || seg.version, cls.name || '@' || cls.version, seg.version, cls.version))`);
  }
  if (f.decision) where.push(`pr.decision = ${p(f.decision)}`);
  if (f.flagged !== undefined) where.push(`pr.flagged = ${p(f.flagged)}`);
  if (f.reviewed !== undefined) where.push(`${f.reviewed ? '' : 'NOT '}EXISTS (SELECT 1 FROM reviews r WHERE r.study_id = s.id)`);
  if (f.agreement) where.push(`lr.verdict = ${p(f.agreement)}`);
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT pr.id, s.id AS study_id, s.study_instance_uid, s.sop_instance_uid, s.patient_pseudonym, s.modality, s.view_position,
            s.received_at, pr.created_at, seg.name || '@' || seg.version AS segmenter, cls.name || '@' || cls.version AS classifier,
            pr.probability, pr.threshold, pr.target_recall, pr.decision, pr.flagged, pr.flag_reasons, pr.qc_flags,
            pr.tta_views, pr.tta_spread, pr.lung_area_fraction,
            (SELECT count(*) FROM reviews r WHERE r.study_id = s.id)::int AS review_count,
            lr.verdict AS last_verdict, lr.reviewer AS last_reviewer, lr.created_at AS last_reviewed_at
       FROM predictions pr
       JOIN studies s ON s.id = pr.study_id
       JOIN model_versions seg ON seg.id = pr.segmenter_id
       JOIN model_versions cls ON cls.id = pr.classifier_id
       LEFT JOIN LATERAL (SELECT r.verdict, r.reviewer, r.created_at FROM reviews r WHERE r.study_id = s.id ORDER BY r.id DESC LIMIT 1) lr ON true
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY pr.id DESC
      LIMIT ${p(limit)}`,
    params,
  );
  return rows.map((r) => ({
    predictionId: String(r.id),
    studyId: r.study_id as string,
    studyInstanceUid: r.study_instance_uid as string,
    sopInstanceUid: r.sop_instance_uid as string,
    patientPseudonym: r.patient_pseudonym as string | null,
    modality: r.modality as string | null,
    viewPosition: r.view_position as string | null,
    receivedAt: r.received_at as Date,
    predictedAt: r.created_at as Date,
    segmenter: r.segmenter as string,
    classifier: r.classifier as string,
    probability: r.probability as number,
    threshold: r.threshold as number,
    targetRecall: r.target_recall as number,
    decision: r.decision as 'positive' | 'negative',
    flagged: r.flagged as boolean,
    flagReasons: r.flag_reasons as string[],
    qcFlags: r.qc_flags as string[],
    ttaViews: r.tta_views as number,
    ttaSpread: r.tta_spread as number,
    lungAreaFraction: r.lung_area_fraction as number,
    reviewCount: r.review_count as number,
    lastVerdict: r.last_verdict as Verdict | null,
    lastReviewer: r.last_reviewer as string | null,
    lastReviewedAt: r.last_reviewed_at as Date | null,
  }));
}
