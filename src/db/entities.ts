/**
 * Entity schemas (not decorators: tsx/esbuild emit no decorator metadata). They mirror the
 * tables that migrations/ creates; the database schema itself only ever comes from migrations.
 */
import { EntitySchema } from 'typeorm';

export const ROLES = ['workstation', 'clinician', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** per instance; not_scored: kept and listed, but not a frontal chest image (see exclusionReason) */
export type StudyStatus = 'queued' | 'scored' | 'failed' | 'not_scored';
export type ModelKind = 'segmenter' | 'classifier';
export type Verdict = 'agree' | 'disagree';

export interface ModelVersionRow {
  id: number;
  kind: ModelKind;
  name: string;
  version: string;
  sha256: string;
  manifest: Record<string, unknown>;
  active: boolean;
  registeredAt: Date;
  activatedAt: Date | null;
}

export interface StudyRow {
  id: string;
  seq: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string | null;
  patientPseudonym: string | null;
  modality: string | null;
  viewPosition: string | null;
  bodyPart: string | null;
  transferSyntax: string | null;
  imageRows: number | null;
  imageColumns: number | null;
  sha256: string;
  sizeBytes: string;
  accessionNumber: string | null;
  /** YYYY-MM-DD */
  studyDate: string | null;
  status: StudyStatus;
  /** why this instance does not count toward its study's decision; null: it does */
  exclusionReason: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  submittedBy: string;
  receivedAt: Date;
  scoredAt: Date | null;
}

export interface PredictionRow {
  id: string;
  studyId: string;
  segmenterId: number;
  classifierId: number;
  probability: number;
  threshold: number;
  targetRecall: number;
  decision: 'positive' | 'negative';
  flagged: boolean;
  flagReasons: string[];
  ttaViews: number;
  ttaSpread: number;
  qcFlags: string[];
  lungAreaFraction: number;
  timingsMs: Record<string, number>;
  report: Record<string, unknown>;
  createdAt: Date;
}

export interface ReviewRow {
  id: string;
  studyId: string;
  predictionId: string;
  reviewer: string;
  verdict: Verdict;
  /** the clinician's own reading, when given */
  label: ReviewLabel | null;
  note: string;
  /** the earlier review this one amends (history is appended, never overwritten) */
  amendsId: string | null;
  createdAt: Date;
}

export type ReviewLabel = 'pneumonia' | 'no_pneumonia' | 'uncertain';
export const REVIEW_LABELS: readonly ReviewLabel[] = ['pneumonia', 'no_pneumonia', 'uncertain'];

export interface ApiClientRow {
  id: string;
  role: Role;
  secretHash: string;
  description: string;
  /** calling AE title this client sends DIMSE C-STORE from (trimmed, upper-case); null: HTTP only */
  aeTitle: string | null;
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface UserRow {
  id: string;
  displayName: string;
  role: Role;
  passwordHash: string;
  createdBy: string;
  createdAt: Date;
  disabledAt: Date | null;
}

export interface AuditRow {
  seq: string;
  at: Date;
  actor: string;
  role: string | null;
  action: string;
  studyId: string | null;
  requestId: string;
  outcome: string;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

const ts = { type: 'timestamptz' } as const;
const tsNull = { type: 'timestamptz', nullable: true } as const;

export const ModelVersionEntity = new EntitySchema<ModelVersionRow>({
  name: 'ModelVersion',
  tableName: 'model_versions',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    kind: { type: 'text' },
    name: { type: 'text' },
    version: { type: 'text' },
    sha256: { type: 'char', length: 64 },
    manifest: { type: 'jsonb' },
    active: { type: 'boolean' },
    registeredAt: { ...ts, name: 'registered_at' },
    activatedAt: { ...tsNull, name: 'activated_at' },
  },
});

export const StudyEntity = new EntitySchema<StudyRow>({
  name: 'Study',
  tableName: 'studies',
  columns: {
    id: { type: 'uuid', primary: true },
    seq: { type: 'bigint', generated: 'increment' },
    studyInstanceUid: { type: 'text', name: 'study_instance_uid' },
    seriesInstanceUid: { type: 'text', name: 'series_instance_uid' },
    sopInstanceUid: { type: 'text', name: 'sop_instance_uid', unique: true },
    sopClassUid: { type: 'text', name: 'sop_class_uid', nullable: true },
    patientPseudonym: { type: 'char', length: 64, name: 'patient_pseudonym', nullable: true },
    modality: { type: 'text', nullable: true },
    viewPosition: { type: 'text', name: 'view_position', nullable: true },
    bodyPart: { type: 'text', name: 'body_part', nullable: true },
    transferSyntax: { type: 'text', name: 'transfer_syntax', nullable: true },
    imageRows: { type: 'int', name: 'image_rows', nullable: true },
    imageColumns: { type: 'int', name: 'image_columns', nullable: true },
    sha256: { type: 'char', length: 64 },
    sizeBytes: { type: 'bigint', name: 'size_bytes' },
    accessionNumber: { type: 'text', name: 'accession_number', nullable: true },
    studyDate: { type: 'date', name: 'study_date', nullable: true },
    status: { type: 'text' },
    exclusionReason: { type: 'text', name: 'exclusion_reason', nullable: true },
    errorCode: { type: 'text', name: 'error_code', nullable: true },
    errorMessage: { type: 'text', name: 'error_message', nullable: true },
    submittedBy: { type: 'text', name: 'submitted_by' },
    receivedAt: { ...ts, name: 'received_at' },
    scoredAt: { ...tsNull, name: 'scored_at' },
  },
});

export const PredictionEntity = new EntitySchema<PredictionRow>({
  name: 'Prediction',
  tableName: 'predictions',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    studyId: { type: 'uuid', name: 'study_id', unique: true },
    segmenterId: { type: 'int', name: 'segmenter_id' },
    classifierId: { type: 'int', name: 'classifier_id' },
    probability: { type: 'double precision' },
    threshold: { type: 'double precision' },
    targetRecall: { type: 'double precision', name: 'target_recall' },
    decision: { type: 'text' },
    flagged: { type: 'boolean' },
    flagReasons: { type: 'text', array: true, name: 'flag_reasons' },
    ttaViews: { type: 'int', name: 'tta_views' },
    ttaSpread: { type: 'double precision', name: 'tta_spread' },
    qcFlags: { type: 'text', array: true, name: 'qc_flags' },
    lungAreaFraction: { type: 'double precision', name: 'lung_area_fraction' },
    timingsMs: { type: 'jsonb', name: 'timings_ms' },
    report: { type: 'jsonb' },
    createdAt: { ...ts, name: 'created_at' },
  },
});

export const ReviewEntity = new EntitySchema<ReviewRow>({
  name: 'Review',
  tableName: 'reviews',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    studyId: { type: 'uuid', name: 'study_id' },
    predictionId: { type: 'bigint', name: 'prediction_id' },
    reviewer: { type: 'text' },
    verdict: { type: 'text' },
    label: { type: 'text', nullable: true },
    note: { type: 'text' },
    amendsId: { type: 'bigint', name: 'amends_id', nullable: true },
    createdAt: { ...ts, name: 'created_at' },
  },
});

export const ApiClientEntity = new EntitySchema<ApiClientRow>({
  name: 'ApiClient',
  tableName: 'api_clients',
  columns: {
    id: { type: 'text', primary: true },
    role: { type: 'text' },
    secretHash: { type: 'text', name: 'secret_hash' },
    description: { type: 'text' },
    aeTitle: { type: 'text', name: 'ae_title', nullable: true },
    createdBy: { type: 'text', name: 'created_by' },
    createdAt: { ...ts, name: 'created_at' },
    revokedAt: { ...tsNull, name: 'revoked_at' },
  },
});

export const UserEntity = new EntitySchema<UserRow>({
  name: 'User',
  tableName: 'users',
  columns: {
    id: { type: 'text', primary: true },
    displayName: { type: 'text', name: 'display_name' },
    role: { type: 'text' },
    passwordHash: { type: 'text', name: 'password_hash' },
    createdBy: { type: 'text', name: 'created_by' },
    createdAt: { ...ts, name: 'created_at' },
    disabledAt: { ...tsNull, name: 'disabled_at' },
  },
});

export const AuditEntity = new EntitySchema<AuditRow>({
  name: 'AuditLog',
  tableName: 'audit_log',
  columns: {
    seq: { type: 'bigint', primary: true, generated: 'increment' },
    at: { type: 'timestamptz' },
    actor: { type: 'text' },
    role: { type: 'text', nullable: true },
    action: { type: 'text' },
    studyId: { type: 'uuid', name: 'study_id', nullable: true },
    requestId: { type: 'text', name: 'request_id' },
    outcome: { type: 'text' },
    detail: { type: 'jsonb' },
    prevHash: { type: 'char', length: 64, name: 'prev_hash' },
    hash: { type: 'char', length: 64, unique: true },
  },
});

export const entities = [ModelVersionEntity, StudyEntity, PredictionEntity, ReviewEntity, ApiClientEntity, UserEntity, AuditEntity];
