import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The whole service schema, written by hand so that what runs in production is exactly what a
 * reviewer reads here. The audit log refuses UPDATE, DELETE and TRUNCATE in the database
 * itself, so that not even a bug in the service (or an operator with the service's account
 * and a psql prompt) can rewrite history without first disabling the trigger — which the
 * hash chain then exposes.
 */
export class InitialSchema1764320000000 implements MigrationInterface {
  name = 'InitialSchema1764320000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE model_versions (
        id            serial PRIMARY KEY,
        kind          text NOT NULL CHECK (kind IN ('segmenter', 'classifier')),
        name          text NOT NULL,
        version       text NOT NULL,
        sha256        char(64) NOT NULL,
        manifest      jsonb NOT NULL DEFAULT '{}'::jsonb,
        active        boolean NOT NULL DEFAULT false,
        registered_at timestamptz NOT NULL DEFAULT now(),
        activated_at  timestamptz,
        CONSTRAINT model_versions_name_version UNIQUE (name, version)
      )`);
    // At most one active version of each kind: activation is a swap, never two live models.
    await q.query(`CREATE UNIQUE INDEX model_versions_one_active ON model_versions (kind) WHERE active`);

    await q.query(`
      CREATE TABLE studies (
        id                  uuid PRIMARY KEY,
        seq                 bigserial NOT NULL UNIQUE,
        study_instance_uid  text NOT NULL,
        series_instance_uid text NOT NULL,
        sop_instance_uid    text NOT NULL UNIQUE,
        sop_class_uid       text,
        patient_pseudonym   char(64),
        modality            text,
        view_position       text,
        body_part           text,
        transfer_syntax     text,
        image_rows          integer,
        image_columns       integer,
        sha256              char(64) NOT NULL,
        size_bytes          bigint NOT NULL CHECK (size_bytes > 0),
        status              text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'scored', 'failed')),
        error_code          text,
        error_message       text,
        submitted_by        text NOT NULL,
        received_at         timestamptz NOT NULL,
        scored_at           timestamptz
      )`);
    // Restart recovery scans exactly this set; it stays small however large history grows.
    await q.query(`CREATE INDEX studies_queued ON studies (seq) WHERE status = 'queued'`);
    await q.query(`CREATE INDEX studies_study_instance_uid ON studies (study_instance_uid)`);
    await q.query(`CREATE INDEX studies_received_at ON studies (received_at)`);

    await q.query(`
      CREATE TABLE predictions (
        id                 bigserial PRIMARY KEY,
        study_id           uuid NOT NULL UNIQUE REFERENCES studies (id),
        segmenter_id       integer NOT NULL REFERENCES model_versions (id),
        classifier_id      integer NOT NULL REFERENCES model_versions (id),
        probability        double precision NOT NULL CHECK (probability >= 0 AND probability <= 1),
        threshold          double precision NOT NULL,
        target_recall      double precision NOT NULL,
        decision           text NOT NULL CHECK (decision IN ('positive', 'negative')),
        flagged            boolean NOT NULL,
        flag_reasons       text[] NOT NULL,
        tta_views          integer NOT NULL,
        tta_spread         double precision NOT NULL,
        qc_flags           text[] NOT NULL,
        lung_area_fraction double precision NOT NULL,
        timings_ms         jsonb NOT NULL,
        report             jsonb NOT NULL,
        created_at         timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX predictions_created_at ON predictions (created_at)`);
    await q.query(`CREATE INDEX predictions_worklist ON predictions (flagged DESC, probability DESC)`);

    await q.query(`
      CREATE TABLE reviews (
        id            bigserial PRIMARY KEY,
        study_id      uuid NOT NULL REFERENCES studies (id),
        prediction_id bigint NOT NULL REFERENCES predictions (id),
        reviewer      text NOT NULL,
        verdict       text NOT NULL CHECK (verdict IN ('agree', 'disagree')),
        note          text NOT NULL DEFAULT '' CHECK (char_length(note) <= 4000),
        created_at    timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX reviews_study ON reviews (study_id, id)`);

    const roleCheck = `role IN ('workstation', 'clinician', 'auditor', 'admin')`;
    await q.query(`
      CREATE TABLE api_clients (
        id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{3,64}$'),
        role        text NOT NULL CHECK (${roleCheck}),
        secret_hash text NOT NULL,
        description text NOT NULL DEFAULT '',
        created_by  text NOT NULL,
        created_at  timestamptz NOT NULL,
        revoked_at  timestamptz
      )`);
    await q.query(`
      CREATE TABLE users (
        id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._@-]{3,64}$'),
        display_name  text NOT NULL DEFAULT '',
        role          text NOT NULL CHECK (${roleCheck}),
        password_hash text NOT NULL,
        created_by    text NOT NULL,
        created_at    timestamptz NOT NULL,
        disabled_at   timestamptz
      )`);

    await q.query(`
      CREATE TABLE audit_log (
        seq        bigserial PRIMARY KEY,
        at         timestamptz NOT NULL,
        actor      text NOT NULL,
        role       text,
        action     text NOT NULL,
        study_id   uuid,
        request_id text NOT NULL,
        outcome    text NOT NULL,
        detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
        prev_hash  char(64) NOT NULL,
        hash       char(64) NOT NULL UNIQUE
      )`);
    await q.query(`CREATE INDEX audit_log_study ON audit_log (study_id) WHERE study_id IS NOT NULL`);
    await q.query(`
      CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await q.query(`
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
    await q.query(`
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Dropping the schema is the only way an audit log goes away: deliberately, as a whole.
    await q.query(`DROP TABLE audit_log`);
    await q.query(`DROP FUNCTION audit_log_refuse_change()`);
    await q.query(`DROP TABLE users`);
    await q.query(`DROP TABLE api_clients`);
    await q.query(`DROP TABLE reviews`);
    await q.query(`DROP TABLE predictions`);
    await q.query(`DROP TABLE studies`);
    await q.query(`DROP TABLE model_versions`);
  }
}
