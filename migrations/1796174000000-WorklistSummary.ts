import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One kept row per study (StudyInstanceUID) with what the worklist sorts and filters on, so a
 * page is an index scan instead of grouping every instance ever received (1 s at 10,000
 * studies). The row is recomputed from the instances, predictions and reviews by a trigger.
 *
 * The trigger is a deferred constraint trigger: it runs at commit, after everything else the
 * transaction does, and takes a per-study advisory lock before it reads. Two transactions
 * adding instances of one study at once therefore recompute one after the other, the second
 * reading (READ COMMITTED, a fresh snapshot per statement) what the first committed, and a
 * writer never holds the lock while it waits for anything else.
 */
export class WorklistSummary1796174000000 implements MigrationInterface {
  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE study_worklist (
        study_instance_uid text PRIMARY KEY,
        pending            boolean NOT NULL,
        seq                bigint NOT NULL,
        received_at        timestamptz NOT NULL,
        accession_number   text,
        study_date         text,
        scored_images      integer NOT NULL,
        id                 uuid NOT NULL,
        modality           text,
        view_position      text,
        error_code         text,
        status             text NOT NULL,
        probability        double precision,
        threshold          double precision,
        model_version      text,
        decision           text,
        flagged            boolean NOT NULL,
        flag_reasons       text[] NOT NULL,
        qc_flags           text[] NOT NULL,
        rank               double precision NOT NULL,
        review_count       integer NOT NULL,
        last_verdict       text
      )`);
    await q.query(`CREATE INDEX study_worklist_order ON study_worklist (flagged DESC, rank DESC, seq DESC) WHERE NOT pending`);

    // The same rules the worklist applied at read time until now (src/db/studies.ts keeps the
    // description): the most suspicious usable frontal result decides; a study without one,
    // or with an unreadable frontal image, is flagged.
    await q.query(`
      CREATE FUNCTION cxr_refresh_worklist(uid text) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('cxr_worklist'), hashtext(uid));
        DELETE FROM study_worklist WHERE study_instance_uid = uid;
        INSERT INTO study_worklist
        WITH i AS (
          SELECT s.*, pr.probability, pr.threshold, pr.decision, pr.flagged, pr.flag_reasons, pr.qc_flags,
                 (SELECT mv.name || '@' || mv.version FROM model_versions mv WHERE mv.id = pr.classifier_id) AS model_version,
                 (s.status = 'scored' AND s.exclusion_reason IS NULL) AS usable,
                 (s.status = 'failed' AND s.exclusion_reason IS NULL) AS unreadable
            FROM studies s LEFT JOIN predictions pr ON pr.study_id = s.id
           WHERE s.study_instance_uid = uid
        ),
        g AS (
          SELECT bool_or(status = 'queued') AS pending, bool_or(usable) AS any_usable, bool_or(unreadable) AS any_unreadable,
                 count(*) FILTER (WHERE usable)::int AS scored_images, max(seq) AS seq, min(received_at) AS received_at,
                 max(accession_number) AS accession_number, to_char(max(study_date), 'YYYY-MM-DD') AS study_date
            FROM i HAVING count(*) > 0
        ),
        d AS (
          SELECT * FROM i ORDER BY usable DESC, flagged DESC NULLS LAST, probability DESC NULLS LAST, unreadable DESC, seq LIMIT 1
        ),
        r AS (
          SELECT count(*)::int AS review_count,
                 (array_agg(rv.verdict ORDER BY rv.id DESC))[1] AS last_verdict
            FROM reviews rv JOIN studies rs ON rs.id = rv.study_id WHERE rs.study_instance_uid = uid
        )
        SELECT uid, g.pending, g.seq, g.received_at, g.accession_number, g.study_date, g.scored_images,
               d.id, d.modality, d.view_position, d.error_code,
               CASE WHEN g.any_usable THEN 'scored' ELSE 'failed' END,
               CASE WHEN g.any_usable THEN d.probability END,
               CASE WHEN g.any_usable THEN d.threshold END,
               CASE WHEN g.any_usable THEN d.model_version END,
               CASE WHEN g.any_usable THEN d.decision END,
               COALESCE(NOT g.any_usable OR d.flagged OR g.any_unreadable, true),
               CASE WHEN g.any_usable THEN COALESCE(d.flag_reasons, '{}'::text[]) || CASE WHEN g.any_unreadable THEN ARRAY['frontal_image_failed'] ELSE '{}'::text[] END
                    WHEN g.any_unreadable THEN ARRAY['failed'] ELSE ARRAY['no_frontal_image'] END,
               COALESCE(CASE WHEN g.any_usable THEN d.qc_flags END, '{}'::text[]),
               COALESCE(CASE WHEN g.any_usable THEN d.probability END, 2),
               r.review_count, r.last_verdict
          FROM g, d, r;
      END $$`);

    await q.query(`
      CREATE FUNCTION cxr_worklist_touch() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_TABLE_NAME = 'studies' THEN
          PERFORM cxr_refresh_worklist(NEW.study_instance_uid);
          IF TG_OP = 'UPDATE' AND OLD.study_instance_uid IS DISTINCT FROM NEW.study_instance_uid THEN
            PERFORM cxr_refresh_worklist(OLD.study_instance_uid);
          END IF;
        ELSE
          PERFORM cxr_refresh_worklist(s.study_instance_uid) FROM studies s WHERE s.id = NEW.study_id;
        END IF;
        RETURN NULL;
      END $$`);
    for (const [name, table, events] of [
      ['studies_worklist', 'studies', 'INSERT OR UPDATE'],
      ['predictions_worklist', 'predictions', 'INSERT OR UPDATE'],
      ['reviews_worklist', 'reviews', 'INSERT'],
    ] as const) {
      await q.query(
        `CREATE CONSTRAINT TRIGGER ${name} AFTER ${events} ON ${table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cxr_worklist_touch()`,
      );
    }
    await q.query(`SELECT cxr_refresh_worklist(u.study_instance_uid) FROM (SELECT DISTINCT study_instance_uid FROM studies) u`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER reviews_worklist ON reviews`);
    await q.query(`DROP TRIGGER predictions_worklist ON predictions`);
    await q.query(`DROP TRIGGER studies_worklist ON studies`);
    await q.query(`DROP FUNCTION cxr_worklist_touch()`);
    await q.query(`DROP FUNCTION cxr_refresh_worklist(text)`);
    await q.query(`DROP TABLE study_worklist`);
  }
}
