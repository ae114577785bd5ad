import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Results back to PACS.
 *
 * `derived_objects`: the AI result objects made for each active prediction (a Comprehensive
 * SR and a Secondary Capture), in the scored film's study. A row is inserted with the
 * prediction (same transaction) and its UIDs fixed; `sha256` is filled once the object is
 * built and in the object store. Built objects are instances of their study to QIDO-RS and
 * WADO-RS (view `dicom_instances`).
 *
 * `result_deliveries`: the outbox, one row per object and configured destination, with its
 * attempts, when it is next due, its last error, and its state (pending → delivered, or
 * failed after the last attempt). Every attempt is also an audit row.
 */
export class ResultsOutbox1796170000000 implements MigrationInterface {
  name = 'ResultsOutbox1796170000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE derived_objects (
        id                  bigserial PRIMARY KEY,
        prediction_id       bigint NOT NULL REFERENCES predictions (id) ON DELETE CASCADE,
        source_id           uuid NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
        kind                text NOT NULL CHECK (kind IN ('sr', 'sc')),
        study_instance_uid  text NOT NULL,
        series_instance_uid text NOT NULL,
        sop_instance_uid    text NOT NULL UNIQUE,
        sop_class_uid       text NOT NULL,
        modality            text NOT NULL,
        series_number       integer NOT NULL,
        sha256              char(64) CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size_bytes          bigint,
        image_rows          integer,
        image_columns       integer,
        build_attempts      integer NOT NULL DEFAULT 0,
        build_error         text,
        next_build_at       timestamptz NOT NULL DEFAULT now(),
        created_at          timestamptz NOT NULL DEFAULT now(),
        built_at            timestamptz,
        UNIQUE (prediction_id, kind)
      )`);
    await q.query(`CREATE INDEX derived_objects_study ON derived_objects (study_instance_uid)`);
    await q.query(`CREATE INDEX derived_objects_unbuilt ON derived_objects (next_build_at) WHERE sha256 IS NULL AND build_error IS NULL`);
    // the store's garbage collector keeps objects a derived object names
    await q.query(`CREATE INDEX derived_objects_sha256 ON derived_objects (sha256)`);
    await q.query(`
      CREATE TABLE result_deliveries (
        id              bigserial PRIMARY KEY,
        object_id       bigint NOT NULL REFERENCES derived_objects (id) ON DELETE CASCADE,
        destination     text NOT NULL,
        status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts        integer NOT NULL DEFAULT 0,
        max_attempts    integer NOT NULL CHECK (max_attempts >= 1),
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_attempt_at timestamptz,
        last_error_code text,
        last_error      text,
        delivered_at    timestamptz,
        created_at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (object_id, destination),
        CHECK (status <> 'failed' OR last_error IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX result_deliveries_due ON result_deliveries (next_attempt_at) WHERE status = 'pending'`);
    // Originals and built derived objects alike, with the columns QIDO-RS and WADO-RS read.
    // A derived object takes its source's sender (a workstation sees the results of what it sent)
    // and sorts right after its source (seq + 0.25 for the SR, + 0.5 for the picture).
    await q.query(`
      CREATE VIEW dicom_instances AS
        SELECT s.id, s.seq::numeric AS seq, s.study_instance_uid, s.series_instance_uid, s.sop_instance_uid, s.sop_class_uid, s.modality,
               s.view_position, s.image_rows, s.image_columns, s.transfer_syntax, s.sha256, s.size_bytes,
               s.accession_number, s.study_date, s.submitted_by, s.received_at, false AS derived
          FROM studies s
        UNION ALL
        SELECT s.id, s.seq + CASE d.kind WHEN 'sr' THEN 0.25 ELSE 0.5 END, d.study_instance_uid, d.series_instance_uid, d.sop_instance_uid, d.sop_class_uid, d.modality,
               NULL, d.image_rows, d.image_columns, '1.2.840.10008.1.2.1', d.sha256, d.size_bytes,
               s.accession_number, s.study_date, s.submitted_by, d.built_at, true
          FROM derived_objects d JOIN studies s ON s.id = d.source_id
         WHERE d.sha256 IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP VIEW dicom_instances`);
    await q.query(`DROP TABLE result_deliveries`);
    await q.query(`DROP TABLE derived_objects`);
  }
}
