/**
 * QIDO-RS queries over the instances the service holds: studies, series and instances with
 * the common matching keys (UIDs, AccessionNumber, StudyDate, Modality). A workstation sees
 * only what it sent (`submittedBy`).
 */
import type { DataSource } from 'typeorm';

export interface QidoFilter {
  /** UID list matching: any of these */
  studyInstanceUid?: string[];
  seriesInstanceUid?: string[];
  sopInstanceUid?: string[];
  accessionNumber?: string;
  /** the stored pseudonym of the PatientID asked for (the identifier itself is never stored) */
  patientPseudonym?: string;
  /** inclusive YYYY-MM-DD bounds; either may be open */
  studyDateFrom?: string;
  studyDateTo?: string;
  /** the instance's modality is one of these */
  modality?: string[];
  /** the instance's study has an instance of one of these modalities */
  modalitiesInStudy?: string[];
  /** only instances this client sent */
  submittedBy?: string;
  limit: number;
  offset: number;
}

export interface QidoStudy {
  studyInstanceUid: string;
  accessionNumber: string | null;
  studyDate: string | null;
  modalities: string[];
  series: number;
  instances: number;
}

export interface QidoSeries {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality: string | null;
  instances: number;
}

export interface QidoInstance {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string | null;
  viewPosition: string | null;
  rows: number | null;
  columns: number | null;
  transferSyntax: string | null;
}

/**
 * Every instance the service holds, one row each: the originals and the service's own AI result
 * objects (SR, Secondary Capture) once built — view `dicom_instances` (migrations/1796170000000-ResultsOutbox.ts).
 */
const INSTANCES = 'dicom_instances';

function where(f: QidoFilter): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const w: string[] = ['true'];
  if (f.studyInstanceUid) w.push(`s.study_instance_uid = ANY(${p(f.studyInstanceUid)})`);
  if (f.seriesInstanceUid) w.push(`s.series_instance_uid = ANY(${p(f.seriesInstanceUid)})`);
  if (f.sopInstanceUid) w.push(`s.sop_instance_uid = ANY(${p(f.sopInstanceUid)})`);
  if (f.accessionNumber) w.push(`s.accession_number = ${p(f.accessionNumber)}`);
  // by study: the pseudonym is the original's; every instance of its study matches. A sender's
  // query looks only at its own instances there too: across all of them, an instance of its own
  // put into another sender's study would say which patient that study is of
  const own = (alias: string) => (f.submittedBy ? ` AND ${alias}.submitted_by = ${p(f.submittedBy)}` : '');
  if (f.patientPseudonym)
    w.push(`s.study_instance_uid IN (SELECT pp.study_instance_uid FROM studies pp WHERE pp.patient_pseudonym = ${p(f.patientPseudonym)}${own('pp')})`);
  if (f.modalitiesInStudy)
    w.push(`s.study_instance_uid IN (SELECT m.study_instance_uid FROM ${INSTANCES} m WHERE m.modality = ANY(${p(f.modalitiesInStudy)})${own('m')})`);
  if (f.studyDateFrom) w.push(`s.study_date >= ${p(f.studyDateFrom)}::date`);
  if (f.studyDateTo) w.push(`s.study_date <= ${p(f.studyDateTo)}::date`);
  if (f.modality) w.push(`s.modality = ANY(${p(f.modality)})`);
  if (f.submittedBy) w.push(`s.submitted_by = ${p(f.submittedBy)}`);
  return { sql: w.join(' AND '), params };
}

export async function qidoStudies(ds: DataSource, f: QidoFilter): Promise<QidoStudy[]> {
  const { sql, params } = where(f);
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT s.study_instance_uid, max(s.accession_number) AS accession_number, to_char(max(s.study_date), 'YYYYMMDD') AS study_date,
            array_remove(array_agg(DISTINCT s.modality), NULL) AS modalities,
            count(DISTINCT s.series_instance_uid)::int AS series, count(*)::int AS instances, min(s.seq) AS first
       FROM ${INSTANCES} s WHERE ${sql}
      GROUP BY s.study_instance_uid ORDER BY first LIMIT ${f.limit} OFFSET ${f.offset}`,
    params,
  );
  return rows.map((r) => ({
    studyInstanceUid: r.study_instance_uid as string,
    accessionNumber: r.accession_number as string | null,
    studyDate: r.study_date as string | null,
    modalities: r.modalities as string[],
    series: r.series as number,
    instances: r.instances as number,
  }));
}

export async function qidoSeries(ds: DataSource, f: QidoFilter): Promise<QidoSeries[]> {
  const { sql, params } = where(f);
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT s.study_instance_uid, s.series_instance_uid, max(s.modality) AS modality, count(*)::int AS instances, min(s.seq) AS first
       FROM ${INSTANCES} s WHERE ${sql}
      GROUP BY s.study_instance_uid, s.series_instance_uid ORDER BY first LIMIT ${f.limit} OFFSET ${f.offset}`,
    params,
  );
  return rows.map((r) => ({
    studyInstanceUid: r.study_instance_uid as string,
    seriesInstanceUid: r.series_instance_uid as string,
    modality: r.modality as string | null,
    instances: r.instances as number,
  }));
}

export async function qidoInstances(ds: DataSource, f: QidoFilter): Promise<QidoInstance[]> {
  const { sql, params } = where(f);
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT s.study_instance_uid, s.series_instance_uid, s.sop_instance_uid, s.sop_class_uid, s.view_position, s.image_rows, s.image_columns, s.transfer_syntax
       FROM ${INSTANCES} s WHERE ${sql} ORDER BY s.seq LIMIT ${f.limit} OFFSET ${f.offset}`,
    params,
  );
  return rows.map((r) => ({
    studyInstanceUid: r.study_instance_uid as string,
    seriesInstanceUid: r.series_instance_uid as string,
    sopInstanceUid: r.sop_instance_uid as string,
    sopClassUid: r.sop_class_uid as string | null,
    viewPosition: r.view_position as string | null,
    rows: r.image_rows as number | null,
    columns: r.image_columns as number | null,
    transferSyntax: r.transfer_syntax as string | null,
  }));
}

/** An instance as WADO-RS serves it: where its bytes are, and whose it is. */
export interface StoredInstance {
  /** the study row it belongs to (its own row for an original) */
  id: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string | null;
  transferSyntax: string | null;
  sha256: string;
  sizeBytes: string;
  submittedBy: string;
}

/** The instances WADO-RS retrieves: a study, a series of it, or one instance, oldest first; a workstation's own only. */
export async function instanceRows(
  db: DataSource,
  f: { studyInstanceUid: string; seriesInstanceUid?: string; sopInstanceUid?: string; submittedBy?: string },
  limit = 2000,
): Promise<StoredInstance[]> {
  const params: unknown[] = [f.studyInstanceUid];
  const w = ['s.study_instance_uid = $1'];
  if (f.seriesInstanceUid !== undefined) w.push(`s.series_instance_uid = $${params.push(f.seriesInstanceUid)}`);
  if (f.sopInstanceUid !== undefined) w.push(`s.sop_instance_uid = $${params.push(f.sopInstanceUid)}`);
  if (f.submittedBy !== undefined) w.push(`s.submitted_by = $${params.push(f.submittedBy)}`);
  const rows: Record<string, unknown>[] = await db.query(
    `SELECT s.id, s.study_instance_uid, s.series_instance_uid, s.sop_instance_uid, s.sop_class_uid, s.transfer_syntax, s.sha256, s.size_bytes, s.submitted_by
       FROM ${INSTANCES} s WHERE ${w.join(' AND ')} ORDER BY s.seq LIMIT ${Math.max(1, Math.floor(limit))}`,
    params,
  );
  return rows.map((r) => ({
    id: r.id as string,
    studyInstanceUid: r.study_instance_uid as string,
    seriesInstanceUid: r.series_instance_uid as string,
    sopInstanceUid: r.sop_instance_uid as string,
    sopClassUid: (r.sop_class_uid as string | null) ?? null,
    transferSyntax: (r.transfer_syntax as string | null) ?? null,
    sha256: String(r.sha256).trim(),
    sizeBytes: String(r.size_bytes),
    submittedBy: r.submitted_by as string,
  }));
}
