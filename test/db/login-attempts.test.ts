/** The attempt counters below the HTTP layer: all keys or none, windows, giving back, sweeping. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clearAttempts, deleteExpiredAttempts, releaseAttempt, reserveAttempts } from '../../src/db/login-attempts.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

const attempts = async (): Promise<Record<string, number>> =>
  Object.fromEntries(((await db.ds.query('SELECT key, attempts FROM login_attempts')) as { key: string; attempts: number }[]).map((r) => [r.key, r.attempts]));

test('a reservation counts on every key or on none: a locked key leaves the other keys uncounted', async () => {
  for (let i = 0; i < 2; i++) assert.equal((await reserveAttempts(db.ds, ['name:a', 'addr:x'], 2, 60_000)).ok, true);
  const refused = await reserveAttempts(db.ds, ['name:b', 'addr:x'], 2, 60_000);
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.retryAfterSeconds > 55 && refused.retryAfterSeconds <= 60);
  assert.deepEqual(await attempts(), { 'name:a': 2, 'addr:x': 2 }, 'name:b was not counted');
});

test('a given-back reservation frees its slot; a cleared key starts again; expired windows restart and are swept', async () => {
  await db.ds.query('DELETE FROM login_attempts');
  const r = await reserveAttempts(db.ds, ['name:c', 'addr:y'], 2, 60_000);
  assert.ok(r.ok);
  await releaseAttempt(db.ds, r.reserved.find((x) => x.key === 'addr:y')!);
  await clearAttempts(db.ds, 'name:c');
  assert.deepEqual(await attempts(), { 'addr:y': 0 });
  await reserveAttempts(db.ds, ['addr:y'], 1, 60_000);
  assert.equal((await reserveAttempts(db.ds, ['addr:y'], 1, 60_000)).ok, false);
  // a minute later the window has passed: a new one starts with this attempt
  await db.ds.query(`UPDATE login_attempts SET window_start = window_start - interval '61 seconds'`);
  assert.equal((await reserveAttempts(db.ds, ['addr:y'], 1, 60_000)).ok, true);
  assert.deepEqual(await attempts(), { 'addr:y': 1 });
  await reserveAttempts(db.ds, ['name:old'], 5, 60_000);
  await db.ds.query(`UPDATE login_attempts SET window_start = window_start - interval '2 minutes' WHERE key = 'name:old'`);
  assert.equal(await deleteExpiredAttempts(db.ds, 60_000), 1);
  assert.deepEqual(await attempts(), { 'addr:y': 1 });
});
