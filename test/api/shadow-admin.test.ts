/**
 * Admins start and stop a shadow run over HTTP (a real listening server, fetch): the same service
 * step as `cxr-triage model shadow`, the same audit actions, refused to other roles and for
 * versions that cannot run in shadow; the workers follow a run started this way.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { verifyAuditChain } from '../../src/db/audit.js';
import { randomModels } from '../support/random-models.js';
import { activateOnDisk } from '../../src/ml/model-store/index.js';
import { closeServer, listen } from '../../src/app/server.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { waitJobsDone } from '../support/jobs.js';

let h: Harness;
let server: Server;
let base: string;

before(async () => {
  h = await startHarness({ jobPollMs: 50 });
  await randomModels(h.modelsDir, { size: 'small', seed: 8, threshold: 0.5, version: 'random-cand' });
  // the candidate is newer: without ACTIVE it would be what a process loads
  await activateOnDisk(h.modelsDir, 'classifier', 'random-small', { segmenter: 'random-small' });
  const l = await listen(h.parts.app, 0, '127.0.0.1');
  server = l.server;
  base = l.url;
});

after(async () => {
  if (server) await closeServer(server, 1000);
  await h?.close();
});

/** A JSON answer of any of the shapes asserted here. */
// biome-ignore lint/suspicious/noExplicitAny: the tests read several response shapes field by field
type Body = Record<string, any>;

async function call(method: string, path: string, role: Parameters<Harness['token']>[0], body?: unknown, type = 'application/json') {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${h.token(role, `${role}-http`)}`, ...(body === undefined ? {} : { 'Content-Type': type }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Body };
}

const audits = async (action: string): Promise<{ actor: string; outcome: string; detail: Record<string, unknown> }[]> =>
  h.db.ds.query(`SELECT actor, outcome, detail FROM audit_log WHERE action = $1 ORDER BY seq`, [action]);

test('an admin starts a shadow run over HTTP; the workers score with it; others and unservable versions are refused; each try is audited', async () => {
  for (const role of ['clinician', 'auditor', 'workstation'] as const) {
    const r = await call('POST', '/v1/admin/models/classifier/random-cand/shadow', role, { fraction: 1 });
    assert.equal(r.status, 403, role);
  }
  assert.equal((await call('POST', '/v1/admin/models/classifier/random-cand/shadow', 'admin', { fraction: 1.5 })).status, 400);
  assert.equal((await call('POST', '/v1/admin/models/classifier/random-cand/shadow', 'admin', { fraction: 'half' })).status, 400);
  assert.equal((await call('POST', '/v1/admin/models/classifier/random-cand/shadow', 'admin', 'fraction=1', 'text/plain')).status, 415);
  assert.equal((await call('POST', '/v1/admin/models/classifier/never-built/shadow', 'admin', { fraction: 1 })).status, 404);
  const active = await call('POST', '/v1/admin/models/classifier/random-small/shadow', 'admin', { fraction: 1 });
  assert.equal(active.status, 409);
  assert.match(active.body.error.message, /is the active version/);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_settings`))[0].n, 0, 'no refused try left a setting');

  const r = await call('POST', '/v1/admin/models/classifier/random-cand/shadow', 'admin', { fraction: 1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.running.candidate, 'classifier@random-cand');
  assert.equal(r.body.running.fraction, 1);
  assert.equal(r.body.running.running, true);
  assert.equal(r.body.running.startedBy, 'admin-http');
  assert.equal(r.body.replaced, null);

  const rows = await audits('model.shadow.start');
  const ok = rows.filter((a) => a.outcome === 'ok');
  assert.equal(ok.length, 1, 'one row for the start, written with it');
  assert.deepEqual([ok[0].actor, ok[0].detail.candidate, ok[0].detail.fraction, ok[0].detail.via], ['admin-http', 'classifier@random-cand', 1, 'api']);
  assert.deepEqual(
    rows
      .filter((a) => a.outcome !== 'ok')
      .map((a) => a.outcome)
      .sort(),
    ['E_BAD_ARGUMENT', 'E_BAD_ARGUMENT', 'E_CONFLICT', 'E_FORBIDDEN', 'E_FORBIDDEN', 'E_FORBIDDEN', 'E_NOT_FOUND', 'E_UNSUPPORTED_MEDIA_TYPE'],
    'refused tries are audited with their code',
  );

  // the in-process worker reads the setting from the database: fraction 1 scores every study in shadow
  const posted = await fetch(`${base}/v1/studies`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${h.token('workstation')}`, 'Content-Type': 'application/dicom' },
    body: study(6100),
  });
  assert.equal(posted.status, 202);
  const id = ((await posted.json()) as { id: string }).id;
  await waitScored(h, id);
  await waitJobsDone(h.db.ds);
  const shadow: { classifier: string }[] = await h.db.ds.query(
    `SELECT cls.version AS classifier FROM shadow_predictions sp JOIN model_versions cls ON cls.id = sp.classifier_id WHERE sp.study_id = $1`,
    [id],
  );
  assert.deepEqual(shadow, [{ classifier: 'random-cand' }]);
  const listed = await call('GET', '/v1/models/shadow', 'auditor');
  assert.equal(listed.body.running.candidate, 'classifier@random-cand');
});

test('an admin stops the shadow run over HTTP; stopping again says none ran; both are audited and the chain verifies', async () => {
  assert.equal((await call('DELETE', '/v1/admin/models/shadow', 'clinician')).status, 403);
  const r = await call('DELETE', '/v1/admin/models/shadow', 'admin');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.stopped.candidate, 'classifier@random-cand');
  assert.equal(r.body.stopped.running, false);
  assert.equal(r.body.stopped.stoppedBy, 'admin-http');
  const again = await call('DELETE', '/v1/admin/models/shadow', 'admin');
  assert.equal(again.status, 200);
  assert.equal(again.body.stopped, null);
  assert.equal((await call('GET', '/v1/models/shadow', 'auditor')).body.running, null);

  const rows = await audits('model.shadow.stop');
  assert.deepEqual(
    rows.map((a) => [a.actor, a.outcome, a.detail.stopped ?? null, a.detail.via ?? null]),
    [
      ['clinician-http', 'E_FORBIDDEN', null, null],
      ['admin-http', 'ok', 'classifier@random-cand', 'api'],
      ['admin-http', 'ok', null, 'api'],
    ],
  );
  // a study after the stop is not shadow-scored
  const before = (await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions`))[0].n;
  const posted = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation')}`)
    .set('Content-Type', 'application/dicom')
    .send(study(6101));
  await waitScored(h, posted.body.id);
  await waitJobsDone(h.db.ds);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions`))[0].n, before);
  assert.equal((await verifyAuditChain(h.db.ds)).ok, true);
});
