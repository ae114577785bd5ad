import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A workstation client may also send by DIMSE C-STORE: its calling AE title is registered with
 * it, and an association from an AE title no active client holds is rejected. AE titles are
 * 1-16 characters of the default character repertoire without backslash or control characters
 * (PS3.5 6.2), stored trimmed and upper-case, since senders differ in case and padding.
 * Unique among active clients, so one caller maps to exactly one client; a revoked client's
 * title can be registered again.
 */
export class ClientAeTitles1796153333948 implements MigrationInterface {
  name = 'ClientAeTitles1796153333948';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE api_clients ADD COLUMN ae_title text
        CHECK (ae_title ~ '^[\\x21-\\x5b\\x5d-\\x7e]([\\x20-\\x5b\\x5d-\\x7e]{0,14}[\\x21-\\x5b\\x5d-\\x7e])?$' AND ae_title = upper(ae_title))`);
    await q.query(`CREATE UNIQUE INDEX api_clients_active_ae_title ON api_clients (ae_title) WHERE revoked_at IS NULL AND ae_title IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX api_clients_active_ae_title`);
    await q.query(`ALTER TABLE api_clients DROP COLUMN ae_title`);
  }
}
