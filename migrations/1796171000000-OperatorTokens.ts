import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Operator tokens (`cxr-triage token`) on record by their JWT id, so a long-lived one (a PACS
 * that can send only a static header) can be listed and revoked: the service looks the id up
 * on every request that carries such a token. Rows are kept after revocation and expiry, so
 * the audit trail's token ids stay resolvable.
 */
export class OperatorTokens1796171000000 implements MigrationInterface {
  name = 'OperatorTokens1796171000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE operator_tokens (
        id          uuid PRIMARY KEY,
        subject     text NOT NULL CHECK (subject ~ '^[A-Za-z0-9._@-]{1,64}$'),
        role        text NOT NULL CHECK (role IN ('workstation', 'clinician', 'auditor', 'admin')),
        description text NOT NULL DEFAULT '',
        created_by  text NOT NULL,
        issued_at   timestamptz NOT NULL,
        expires_at  timestamptz NOT NULL CHECK (expires_at > issued_at),
        revoked_at  timestamptz,
        revoked_by  text,
        CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
      )`);
    await q.query(`CREATE INDEX operator_tokens_issued ON operator_tokens (issued_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE operator_tokens`);
  }
}
