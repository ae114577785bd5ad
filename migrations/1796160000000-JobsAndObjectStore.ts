import PgBoss from 'pg-boss';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Where pg-boss keeps its jobs; the service names it in one place (src/service/jobs.ts reads it from here). */
export const JOB_SCHEMA = 'pgboss';

/**
 * The job queue and the PostgreSQL object store.
 *
 * pg-boss's own tables come from its construction plan for the exact version this package pins
 * (package.json), run here inside this migration's transaction instead of by pg-boss at start,
 * so the schema still only ever comes from migrations/. A later pg-boss upgrade adds a migration
 * that runs `PgBoss.getMigrationPlans`.
 *
 * `objects` + `object_chunks` hold stored files (CXR_STORE=pg) content-addressed by sha256, as
 * rows of at most 1 MiB, so no statement ever carries a whole file and a reader streams them.
 */
export class JobsAndObjectStore1796160000000 implements MigrationInterface {
  name = 'JobsAndObjectStore1796160000000';

  async up(q: QueryRunner): Promise<void> {
    const plan = PgBoss.getConstructionPlans(JOB_SCHEMA)
      // the migration runs in a transaction of its own; the plan's BEGIN/COMMIT would end it early
      .replace(/^\s*BEGIN;\s*$/m, '')
      .replace(/^\s*COMMIT;\s*$/m, '');
    await q.query(plan);

    await q.query(`
      CREATE TABLE objects (
        sha256      char(64) PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
        chunk_count integer NOT NULL CHECK (chunk_count >= 0),
        created_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE object_chunks (
        sha256 char(64) NOT NULL REFERENCES objects (sha256) ON DELETE CASCADE,
        idx    integer NOT NULL CHECK (idx >= 0),
        data   bytea NOT NULL,
        PRIMARY KEY (sha256, idx)
      )`);
    // Pixel data barely compresses; storing chunks uncompressed saves the CPU on every write and read.
    await q.query(`ALTER TABLE object_chunks ALTER COLUMN data SET STORAGE EXTERNAL`);
    // The garbage collector looks for objects no study names.
    await q.query(`CREATE INDEX studies_sha256 ON studies (sha256)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX studies_sha256`);
    await q.query(`DROP TABLE object_chunks`);
    await q.query(`DROP TABLE objects`);
    await q.query(`DROP SCHEMA ${JOB_SCHEMA} CASCADE`);
  }
}
