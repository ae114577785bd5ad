/**
 * QIDO-RS queries over the instances the service holds: studies, series and instances with
 * the common matching keys (UIDs, AccessionNumber, StudyDate, Modality). A workstation sees
 * only what it sent (`submittedBy`). Instances are the originals and the service's own AI result
 * objects (view `dicom_instances`, migrations/1796170000000-ResultsOutbox.ts).
 */
import type { DataSource } from 'typeorm';

export interface QidoFilter {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  accessionNumber?: string;
  /** inclusive YYYY-MM-DD bounds; either may be open */
  studyDateFrom?: string;
  studyDateTo?: string;
  modality?: string;
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

function where(f: QidoFilter): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const w: string[] = ['true'];
  if (f.studyInstanceUid) w.push(`s.study_instance_uid = ${p(f.studyInstanceUid)}`);
  if (f.seriesInstanceUid) w.push(`s.series_instance_uid = ${p(f.seriesInstanceUid)}`);
  if (f.sopInstanceUid) w.push(`s.sop_instance_uid = ${p(f.sopInstanceUid)}`);
  if (f.accessionNumber) w.push(`s.accession_number = ${p(f.accessionNumber)}`);
  if (f.studyDateFrom) w.push(`s.study_date >= ${p(f.studyDateFrom)}::date`);
  if (f.studyDateTo) w.push(`s.study_date <= ${p(f.studyDateTo)}::date`);
  if (f.modality) w.push(`s.modality = ${p(f.modality)}`);
  if (f.submittedBy) w.push(`s.submitted_by = ${p(f.submittedBy)}`);
  return { sql: w.join(' AND '), params };
}

export async function qidoStudies(ds: DataSource, f: QidoFilter): Promise<QidoStudy[]> {
  const { sql, params } = where(f);
  const rows: Record<string, unknown>[] = await ds.query(
    `SELECT s.study_instance_uid, max(s.accession_number) AS accession_number, to_char(max(s.study_date), 'YYYYMMDD') AS study_date,
            array_remove(array_agg(DISTINCT s.modality), NULL) AS modalities,
            count(DISTINCT s.series_instance_uid)::int AS series, count(*)::int AS instances, min(s.seq) AS first
       FROM dicom_instances s WHERE ${sql}
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
       FROM dicom_instances s WHERE ${sql}
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
       FROM dicom_instances s WHERE ${sql} ORDER BY s.seq LIMIT ${f.limit} OFFSET ${f.offset}`,
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
