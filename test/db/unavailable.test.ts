/** Which database errors mean "retry shortly" (503) — taken from a real PostgreSQL, not made up. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

test('a connection terminated by pg_terminate_backend, and a pool that finds no connection in time, are "unavailable"; a bad query is not', async () => {
  const victim = new pg.Client({ connectionString: db.url });
  await victim.connect();
  victim.on('error', () => {});
  const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  const running = victim.query('SELECT pg_sleep(30)').then(
    () => null,
    (e: unknown) => e,
  );
  // terminated while it runs, not before PostgreSQL has started it
  const end = Date.now() + 60_000;
  while ((await db.ds.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`, [pid])).length === 0) {
    assert.ok(Date.now() < end, 'the query started');
    await new Promise((r) => setTimeout(r, 20));
  }
  await db.ds.query('SELECT pg_terminate_backend($1)', [pid]);
  const terminated = await running;
  assert.ok(terminated, 'the query was interrupted');
  assert.equal(isDatabaseUnavailable(terminated), true, String(terminated));
  await victim.end().catch(() => undefined);

  const pool = new pg.Pool({ connectionString: db.url, max: 1, connectionTimeoutMillis: 3000 });
  const held = await pool.connect();
  const timedOut = await pool.query('SELECT 1').then(
    () => null,
    (e: unknown) => e,
  );
  held.release();
  await pool.end();
  assert.equal(isDatabaseUnavailable(timedOut), true, String(timedOut));

  const syntax = await db.ds.query('SELEC 1').then(
    () => null,
    (e: unknown) => e,
  );
  assert.equal(isDatabaseUnavailable(syntax), false);
  assert.equal(isDatabaseUnavailable(new Error('boom')), false);
});
