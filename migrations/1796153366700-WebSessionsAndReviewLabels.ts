import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * People sign in to the web app with a server-side session: the cookie carries a random token,
 * the database keeps only its sha256 (a leaked table does not let anyone in), the CSRF token the
 * page must echo on every state change, and both timeouts. A review gains the clinician's own label
 * and, when it amends an earlier review, a pointer to it: history is appended, never overwritten.
 */
export class WebSessionsAndReviewLabels1796153366700 implements MigrationInterface {
  name = 'WebSessionsAndReviewLabels1796153366700';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE web_sessions (
        token_sha256  char(64) PRIMARY KEY,
        user_id       text NOT NULL REFERENCES users (id),
        csrf_token    text NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        last_seen_at  timestamptz NOT NULL DEFAULT now(),
        expires_at    timestamptz NOT NULL,
        ended_at      timestamptz,
        ended_reason  text CHECK (ended_reason IN ('logout', 'idle', 'absolute', 'disabled'))
      )`);
    await q.query(`CREATE INDEX web_sessions_user ON web_sessions (user_id) WHERE ended_at IS NULL`);
    await q.query(`ALTER TABLE reviews ADD COLUMN label text CHECK (label IN ('pneumonia', 'no_pneumonia', 'uncertain'))`);
    await q.query(`ALTER TABLE reviews ADD COLUMN amends_id bigint REFERENCES reviews (id)`);
    // The worklist updates live (server-sent events) in every API process, whichever process or
    // worker wrote the change: PostgreSQL tells the listeners, so no code path can forget to.
    await q.query(`
      CREATE FUNCTION cxr_notify_study_event() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE sid uuid;
      BEGIN
        IF TG_TABLE_NAME = 'studies' THEN sid := NEW.id; ELSE sid := NEW.study_id; END IF;
        PERFORM pg_notify('cxr_study_events', json_build_object('event', TG_ARGV[0], 'studyId', sid)::text);
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER studies_received AFTER INSERT ON studies FOR EACH ROW EXECUTE FUNCTION cxr_notify_study_event('received')`);
    await q.query(
      `CREATE TRIGGER studies_failed AFTER UPDATE OF status ON studies FOR EACH ROW WHEN (NEW.status = 'failed' AND OLD.status IS DISTINCT FROM 'failed') EXECUTE FUNCTION cxr_notify_study_event('failed')`,
    );
    await q.query(`CREATE TRIGGER predictions_scored AFTER INSERT ON predictions FOR EACH ROW EXECUTE FUNCTION cxr_notify_study_event('scored')`);
    await q.query(`CREATE TRIGGER reviews_added AFTER INSERT ON reviews FOR EACH ROW EXECUTE FUNCTION cxr_notify_study_event('reviewed')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER reviews_added ON reviews`);
    await q.query(`DROP TRIGGER predictions_scored ON predictions`);
    await q.query(`DROP TRIGGER studies_failed ON studies`);
    await q.query(`DROP TRIGGER studies_received ON studies`);
    await q.query(`DROP FUNCTION cxr_notify_study_event()`);
    await q.query(`ALTER TABLE reviews DROP COLUMN amends_id`);
    await q.query(`ALTER TABLE reviews DROP COLUMN label`);
    await q.query(`DROP TABLE web_sessions`);
  }
}
