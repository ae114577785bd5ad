/** The JSON shapes the API returns, built from rows in one place. */
import type { ApiClientRow, ModelVersionRow, ReviewRow, UserRow } from '../db/entities.js';
import type { OperatorTokenRow } from '../db/operator-tokens.js';
import type { StudyView } from '../service/triage.js';

export function studyLinks(id: string) {
  return {
    self: `/v1/studies/${id}`,
    image: `/v1/studies/${id}/image.png`,
    mask: `/v1/studies/${id}/mask.png`,
    heatmap: `/v1/studies/${id}/heatmap.png`,
    reviews: `/v1/studies/${id}/reviews`,
    deliveries: `/v1/studies/${id}/deliveries`,
  };
}

export function reviewView(r: ReviewRow) {
  return {
    id: r.id,
    studyId: r.studyId,
    predictionId: r.predictionId,
    reviewer: r.reviewer,
    verdict: r.verdict,
    label: r.label,
    note: r.note,
    amendsId: r.amendsId,
    createdAt: r.createdAt.toISOString(),
  };
}

export function studyView(v: StudyView, opts: { withReviews: boolean }) {
  const s = v.study;
  const p = v.prediction;
  return {
    id: s.id,
    status: s.status,
    /** why this instance does not count toward its study's decision (null: it does) */
    notScoredReason: s.exclusionReason,
    studyInstanceUid: s.studyInstanceUid,
    accessionNumber: s.accessionNumber,
    studyDate: s.studyDate,
    seriesInstanceUid: s.seriesInstanceUid,
    sopInstanceUid: s.sopInstanceUid,
    sopClassUid: s.sopClassUid,
    patientPseudonym: s.patientPseudonym,
    modality: s.modality,
    viewPosition: s.viewPosition,
    bodyPart: s.bodyPart,
    transferSyntax: s.transferSyntax,
    rows: s.imageRows,
    columns: s.imageColumns,
    sha256: s.sha256,
    sizeBytes: Number(s.sizeBytes),
    submittedBy: s.submittedBy,
    receivedAt: s.receivedAt.toISOString(),
    scoredAt: s.scoredAt?.toISOString() ?? null,
    error: s.errorCode ? { code: s.errorCode, message: s.errorMessage ?? '' } : null,
    prediction: p
      ? {
          id: p.id,
          probability: p.probability,
          threshold: p.threshold,
          targetRecall: p.targetRecall,
          decision: p.decision,
          flagged: p.flagged,
          flagReasons: p.flagReasons,
          qcFlags: p.qcFlags,
          tta: { views: p.ttaViews, spread: p.ttaSpread },
          lungAreaFraction: p.lungAreaFraction,
          createdAt: p.createdAt.toISOString(),
          report: p.report,
        }
      : null,
    ...(opts.withReviews ? { reviews: v.reviews.map(reviewView) } : {}),
    /** the AI result objects (SR, Secondary Capture) made for this image, and their deliveries (details: links.deliveries) */
    results: v.results,
    links: studyLinks(s.id),
  };
}

export function modelView(m: ModelVersionRow) {
  return {
    id: m.id,
    kind: m.kind,
    name: m.name,
    version: m.version,
    sha256: m.sha256,
    active: m.active,
    registeredAt: m.registeredAt.toISOString(),
    activatedAt: m.activatedAt?.toISOString() ?? null,
    manifest: m.manifest,
  };
}

export function clientView(c: ApiClientRow) {
  return {
    id: c.id,
    role: c.role,
    description: c.description,
    aeTitle: c.aeTitle,
    createdBy: c.createdBy,
    createdAt: c.createdAt.toISOString(),
    revokedAt: c.revokedAt?.toISOString() ?? null,
  };
}

/** An operator token on record (never the token itself). */
export function operatorTokenView(t: OperatorTokenRow) {
  return {
    id: t.id,
    subject: t.subject,
    role: t.role,
    description: t.description,
    createdBy: t.createdBy,
    issuedAt: t.issuedAt.toISOString(),
    expiresAt: t.expiresAt.toISOString(),
    revokedAt: t.revokedAt?.toISOString() ?? null,
    revokedBy: t.revokedBy,
  };
}

export function userView(u: UserRow) {
  return {
    id: u.id,
    displayName: u.displayName,
    role: u.role,
    createdBy: u.createdBy,
    createdAt: u.createdAt.toISOString(),
    disabledAt: u.disabledAt?.toISOString() ?? null,
  };
}
