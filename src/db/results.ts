/**
 * Derived result objects and their deliveries (the outbox): rows written with the prediction,
 * claimed by a dispatcher with SKIP LOCKED (any number of worker processes share the work),
 * and the per-study delivery status the API shows.
 */
import type { DataSource, EntityManager } from 'typeorm';

export type DerivedKind = 'sr' | 'sc';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface NewDerivedObject {
  predictionId: string;
  sourceId: string;
  kind: DerivedKind;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality: string;
  seriesNumber: number;
}

export interface DerivedObjectRow extends NewDerivedObject {
  id: string;
  sha256: string | null;
  buildAttempts: number;
}

type Db = DataSource | EntityManager;

/** The objects of a prediction and one pending delivery per object and destination; a second call adds nothing. */
export async function insertOutbox(
  m: EntityManager,
  objects: readonly NewDerivedObject[],
  destinations: readonly string[],
  maxAttempts: number,
): Promise<void> {
  if (objects.length === 0) return;
  // one statement for the objects, one for their deliveries (none without destinations)
  const column = <K extends keyof NewDerivedObject>(k: K) => objects.map((o) => o[k]);
  const rows: { id: string }[] = await m.query(
    `INSERT INTO derived_objects (prediction_id, source_id, kind, study_instance_uid, series_instance_uid, sop_instance_uid, sop_class_uid, modality, series_number)
     SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[])
     ON CONFLICT (prediction_id, kind) DO UPDATE SET kind = EXCLUDED.kind
     RETURNING id`,
    [
      column('predictionId'),
      column('sourceId'),
      column('kind'),
      column('studyInstanceUid'),
      column('seriesInstanceUid'),
      column('sopInstanceUid'),
      column('sopClassUid'),
      column('modality'),
      column('seriesNumber'),
    ],
  );
  if (destinations.length === 0) return;
  await m.query(
    `INSERT INTO result_deliveries (object_id, destination, max_attempts)
     SELECT o, d, $3 FROM unnest($1::bigint[]) AS o CROSS JOIN unnest($2::text[]) AS d
     ON CONFLICT (object_id, destination) DO NOTHING`,
    [rows.map((r) => r.id), [...destinations], maxAttempts],
  );
}

function derivedRow(r: Record<string, unknown>): DerivedObjectRow {
  return {
    id: String(r.id),
    predictionId: String(r.prediction_id),
    sourceId: r.source_id as string,
    kind: r.kind as DerivedKind,
    studyInstanceUid: r.study_instance_uid as string,
    seriesInstanceUid: r.series_instance_uid as string,
    sopInstanceUid: r.sop_instance_uid as string,
    sopClassUid: r.sop_class_uid as string,
    modality: r.modality as string,
    seriesNumber: r.series_number as number,
    sha256: (r.sha256 as string | null) ?? null,
    buildAttempts: r.build_attempts as number,
  };
}

/**
 * Takes one object due to be built, locked until the caller's transaction ends (another
 * process skips it); null when none is due. `awaitedOnly`: only an object that a pending
 * delivery waits for (one that is only served by DICOMweb can wait for a quieter moment).
 */
export async function claimUnbuilt(m: EntityManager, awaitedOnly = false): Promise<DerivedObjectRow | null> {
  const rows: Record<string, unknown>[] = await m.query(
    `SELECT * FROM derived_objects d WHERE sha256 IS NULL AND build_error IS NULL AND next_build_at <= now()
        AND (NOT $1 OR EXISTS (SELECT 1 FROM result_deliveries r WHERE r.object_id = d.id AND r.status = 'pending'))
      ORDER BY next_build_at, id LIMIT 1 FOR UPDATE OF d SKIP LOCKED`,
    [awaitedOnly],
  );
  return rows[0] ? derivedRow(rows[0]) : null;
}

export async function markBuilt(m: EntityManager, id: string, o: { sha256: string; size: number; rows: number | null; columns: number | null }): Promise<void> {
  await m.query(
    `UPDATE derived_objects SET sha256 = $2, size_bytes = $3, image_rows = $4, image_columns = $5, built_at = now(), build_error = NULL WHERE id = $1`,
    [id, o.sha256, o.size, o.rows, o.columns],
  );
}

/**
 * A build attempt failed: try again after `retryInMs`, or (final) give up, failing the
 * object's pending deliveries with the reason. In the caller's transaction: the one that
 * claimed the object, so that no other process can claim it between the failure and its record.
 */
export async function markBuildFailedIn(m: EntityManager, id: string, code: string, message: string, final: boolean, retryInMs: number): Promise<void> {
  await m.query(
    `UPDATE derived_objects SET build_attempts = build_attempts + 1, next_build_at = now() + $3 * interval '1 millisecond',
            build_error = CASE WHEN $4 THEN $2 ELSE NULL END
      WHERE id = $1`,
    [id, `${code}: ${message}`.slice(0, 500), retryInMs, final],
  );
  if (final) {
    await m.query(`UPDATE result_deliveries SET status = 'failed', last_error_code = $2, last_error = $3 WHERE object_id = $1 AND status = 'pending'`, [
      id,
      code,
      `the result object could not be made: ${message}`.slice(0, 500),
    ]);
  }
}

/** markBuildFailedIn in a transaction of its own (the claiming one could not commit). */
export async function markBuildFailed(ds: DataSource, id: string, code: string, message: string, final: boolean, retryInMs: number): Promise<void> {
  await ds.transaction((m) => markBuildFailedIn(m, id, code, message, final, retryInMs));
}

export interface ClaimedDelivery {
  id: string;
  destination: string;
  attempts: number;
  maxAttempts: number;
  object: DerivedObjectRow;
}

/**
 * Claims the most overdue pending delivery whose object is built: its attempt is counted and
 * it is hidden for `leaseMs` (a process dying mid-send leaves it to be retried after that).
 */
export async function claimDelivery(ds: DataSource, leaseMs: number): Promise<ClaimedDelivery | null> {
  // TypeORM answers an UPDATE with [rows, affected count]
  const [rows]: [Record<string, unknown>[], number] = await ds.query(
    `WITH c AS (
       SELECT r.id FROM result_deliveries r JOIN derived_objects d ON d.id = r.object_id
        WHERE r.status = 'pending' AND r.next_attempt_at <= now() AND d.sha256 IS NOT NULL
        ORDER BY r.next_attempt_at, r.id LIMIT 1 FOR UPDATE OF r SKIP LOCKED
     )
     UPDATE result_deliveries r SET attempts = r.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + $1 * interval '1 millisecond'
       FROM c WHERE r.id = c.id
     RETURNING r.id, r.destination, r.attempts, r.max_attempts, r.object_id`,
    [leaseMs],
  );
  const r = rows[0];
  if (!r) return null;
  const objects: Record<string, unknown>[] = await ds.query(`SELECT * FROM derived_objects WHERE id = $1`, [r.object_id]);
  return {
    id: String(r.id),
    destination: r.destination as string,
    attempts: r.attempts as number,
    maxAttempts: r.max_attempts as number,
    object: derivedRow(objects[0]),
  };
}

/** Records how a claimed attempt ended (in the caller's transaction, with its audit row). */
export async function settleDelivery(
  m: EntityManager,
  id: string,
  outcome:
    | { status: 'delivered' }
    | { status: 'pending'; retryInMs: number; code: string; message: string }
    | { status: 'failed'; code: string; message: string },
): Promise<void> {
  if (outcome.status === 'delivered') {
    await m.query(`UPDATE result_deliveries SET status = 'delivered', delivered_at = now(), last_error_code = NULL, last_error = NULL WHERE id = $1`, [id]);
  } else if (outcome.status === 'pending') {
    await m.query(`UPDATE result_deliveries SET next_attempt_at = now() + $2 * interval '1 millisecond', last_error_code = $3, last_error = $4 WHERE id = $1`, [
      id,
      outcome.retryInMs,
      outcome.code,
      outcome.message.slice(0, 500),
    ]);
  } else {
    await m.query(`UPDATE result_deliveries SET status = 'failed', last_error_code = $2, last_error = $3 WHERE id = $1`, [
      id,
      outcome.code,
      outcome.message.slice(0, 500),
    ]);
  }
}

export interface DeliveryRecord {
  kind: DerivedKind;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  /** the scored instance the object reports on (its /v1/studies id) */
  sourceId: string;
  built: boolean;
  buildError: string | null;
  destination: string | null;
  status: DeliveryStatus | null;
  attempts: number;
  maxAttempts: number | null;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  lastErrorCode: string | null;
  lastError: string | null;
  deliveredAt: Date | null;
}

/** Every derived object of a study (StudyInstanceUID) and each of its deliveries; an object with no destination has one row with destination null. */
export async function studyDeliveries(db: Db, studyInstanceUid: string, submittedBy?: string): Promise<DeliveryRecord[]> {
  const rows: Record<string, unknown>[] = await db.query(
    `SELECT d.kind, d.sop_instance_uid, d.series_instance_uid, d.source_id, d.sha256 IS NOT NULL AS built, d.build_error,
            r.destination, r.status, COALESCE(r.attempts, 0) AS attempts, r.max_attempts, r.next_attempt_at, r.last_attempt_at,
            r.last_error_code, r.last_error, r.delivered_at
       FROM derived_objects d JOIN studies s ON s.id = d.source_id
       LEFT JOIN result_deliveries r ON r.object_id = d.id
      WHERE d.study_instance_uid = $1 AND ($2::text IS NULL OR s.submitted_by = $2)
      ORDER BY d.id, r.id`,
    [studyInstanceUid, submittedBy ?? null],
  );
  return rows.map((r) => ({
    kind: r.kind as DerivedKind,
    sopInstanceUid: r.sop_instance_uid as string,
    seriesInstanceUid: r.series_instance_uid as string,
    sourceId: r.source_id as string,
    built: r.built as boolean,
    buildError: r.build_error as string | null,
    destination: r.destination as string | null,
    status: r.status as DeliveryStatus | null,
    attempts: r.attempts as number,
    maxAttempts: r.max_attempts as number | null,
    nextAttemptAt: r.next_attempt_at as Date | null,
    lastAttemptAt: r.last_attempt_at as Date | null,
    lastErrorCode: r.last_error_code as string | null,
    lastError: r.last_error as string | null,
    deliveredAt: r.delivered_at as Date | null,
  }));
}

/** Whether the service holds an instance of the study (that this sender sent). */
export async function studyHeld(db: Db, studyInstanceUid: string, submittedBy?: string): Promise<boolean> {
  const rows: unknown[] = await db.query(`SELECT 1 FROM studies WHERE study_instance_uid = $1 AND ($2::text IS NULL OR submitted_by = $2) LIMIT 1`, [
    studyInstanceUid,
    submittedBy ?? null,
  ]);
  return rows.length > 0;
}

/** One instance's result objects and their deliveries, counted (the study JSON's `results`). */
export interface ResultSummary {
  objects: number;
  built: number;
  pending: number;
  delivered: number;
  failed: number;
}

export async function resultSummary(db: Db, sourceId: string): Promise<ResultSummary> {
  const rows: ResultSummary[] = await db.query(
    `SELECT (SELECT count(*) FROM derived_objects WHERE source_id = $1)::int AS objects,
            (SELECT count(*) FROM derived_objects WHERE source_id = $1 AND sha256 IS NOT NULL)::int AS built,
            count(*) FILTER (WHERE r.status = 'pending')::int AS pending,
            count(*) FILTER (WHERE r.status = 'delivered')::int AS delivered,
            count(*) FILTER (WHERE r.status = 'failed')::int AS failed
       FROM result_deliveries r JOIN derived_objects d ON d.id = r.object_id WHERE d.source_id = $1`,
    [sourceId],
  );
  return rows[0];
}
