/**
 * A request whose audit row is written inside its own transaction, when that transaction does
 * not commit: the failure is still audited, on a real database whose COMMIT fails.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/api.js';
import { failAtCommit } from '../support/database.js';

let h: Harness;
before(async () => {
  h = await startHarness();
  // checked at COMMIT, after the route appended its audit row
  await failAtCommit(h.db, 'api_clients', 'id', 'ws-fails-at-commit');
});
after(async () => {
  await h?.close();
});

test('a change whose transaction fails at COMMIT is audited with its error, though its own audit row rolled back with it', async () => {
  const admin = h.token('admin', 'admin-commit');
  const failed = await h.http.post('/v1/admin/clients').set('Authorization', `Bearer ${admin}`).send({ id: 'ws-fails-at-commit', role: 'workstation' });
  assert.equal(failed.status, 500);
  const ok = await h.http.post('/v1/admin/clients').set('Authorization', `Bearer ${admin}`).send({ id: 'ws-commits', role: 'workstation' });
  assert.equal(ok.status, 201);
  const rows: { outcome: string; detail: { id?: string; status?: number } }[] = await h.db.ds.query(
    `SELECT outcome, detail FROM audit_log WHERE action = 'admin.client.create' AND actor = 'admin-commit' ORDER BY seq`,
  );
  // the failed one once, with its error; the committed one once, from inside its transaction
  assert.deepEqual(
    rows.map((r) => [r.outcome, r.detail.status]),
    [
      ['E_INTERNAL', 500],
      ['ok', 201],
    ],
  );
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM api_clients WHERE id = 'ws-fails-at-commit'`))[0].n, 0);
  const verify = await h.http.get('/v1/audit/verify').set('Authorization', `Bearer ${h.token('auditor', 'aud-commit')}`);
  assert.equal(verify.body.ok, true);
});
