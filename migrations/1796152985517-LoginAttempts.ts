import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Failed (and in-flight) sign-in attempts per key — a principal name or a remote address —
 * in the database, so that every instance of the service counts against one limit and a
 * restart forgets nothing. One row per key and window; `attempts` is raised before a secret
 * is checked (a reservation) and given back only when the secret was right.
 */
export class LoginAttempts1796152985517 implements MigrationInterface {
  name = 'LoginAttempts1796152985517';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE login_attempts (
        key          text PRIMARY KEY CHECK (length(key) <= 300),
        attempts     integer NOT NULL CHECK (attempts >= 0),
        window_start timestamptz NOT NULL
      )`);
    // the sweep of expired windows scans by age
    await q.query(`CREATE INDEX login_attempts_window_start ON login_attempts (window_start)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE login_attempts`);
  }
}
