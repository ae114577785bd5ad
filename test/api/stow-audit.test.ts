/**
 * STOW-RS stores several instances in one request: every instance it stores is named by an audit
 * row that committed with it, whatever fails later in the same request (a later instance's
 * COMMIT, or the audit log itself), on a real database whose COMMIT fails. An instance that fails
 * unexpectedly fails alone (Processing Failure); only an audit log that refuses its rows fails
 * the request.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import supertest from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import { FAILURE_REASON } from '../../src/api/routes/stow.js';
import { buildService } from '../../src/app/server.js';
import { readMetadata } from '../../src/dicom/index.js';
import { FsObjectStore } from '../../src/service/fs-store.js';
import { jsonLogger } from '../../src/service/log.js';
import { sha256Hex } from '../../src/service/object-store.js';
import { startHarness, study, type Harness } from '../support/api.js';
import { failAtCommit } from '../support/database.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

const BOUNDARY = 'cxr-stow-audit';

function related(bodies: Buffer[]): Buffer {
  const chunks: Buffer[] = [];
  for (const b of bodies) chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`), b, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const stow = (sender: string, bodies: Buffer[], http: TestAgent = h.http) =>
  http
    .post('/dicomweb/studies')
    .set('Authorization', `Bearer ${h.token('workstation', sender)}`)
    .set('Content-Type', `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`)
    .set('Accept', 'application/dicom+json')
    .send(related(bodies));

/** The sender's stored studies that no successful study.create row names. */
async function storedWithoutAuditRow(sender: string): Promise<string[]> {
  const rows: { sop_instance_uid: string }[] = await h.db.ds.query(
    `SELECT s.sop_instance_uid FROM studies s WHERE s.submitted_by = $1 AND NOT EXISTS (
       SELECT 1 FROM audit_log a WHERE a.action = 'study.create' AND a.outcome = 'ok' AND a.study_id = s.id)`,
    [sender],
  );
  return rows.map((r) => r.sop_instance_uid);
}

type Item = Record<string, { vr: string; Value?: unknown[] }>;
const uid = (item: Item) => item['00081155']?.Value?.[0];

const auditRows = (sender: string): Promise<{ outcome: string; study_id: string | null; detail: Record<string, unknown> }[]> =>
  h.db.ds.query(`SELECT outcome, study_id, detail FROM audit_log WHERE action = 'study.create' AND actor = $1 ORDER BY seq`, [sender]);

const studiesOf = async (sender: string): Promise<number> =>
  (await h.db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = $1`, [sender]))[0].n;

/** The harness's own service logs nowhere: a second one on the same database keeps its log lines. */
async function loggingService() {
  const logged: Record<string, unknown>[] = [];
  const logging = await buildService({
    ds: h.db.ds,
    engine: h.engine,
    settings: h.settings,
    log: jsonLogger((line) => logged.push(JSON.parse(line))),
    defaultMetrics: false,
  });
  return { logging, logged };
}

test('an instance whose processing fails unexpectedly (its COMMIT fails) is a Processing Failure (0x0110) of its own: 202, the instances around it stored and audited, nothing of it left, the error logged with its stack', async () => {
  const sender = 'ws-stow-midway';
  const bodies = [study(801), study(802), study(803)];
  const sops = bodies.map((b) => readMetadata(b).sopInstanceUid!);
  // the second instance's transaction fails at COMMIT (a database error, not a refusal), after the first one committed
  await failAtCommit(h.db, 'studies', 'sop_instance_uid', sops[1]);
  const { logging, logged } = await loggingService();
  try {
    const res = await stow(sender, bodies, supertest(logging.app));
    assert.equal(res.status, 202);
    assert.deepEqual(res.body['00081199'].Value.map(uid), [sops[0], sops[2]]);
    const failed: Item[] = res.body['00081198'].Value;
    assert.equal(failed.length, 1);
    assert.equal(uid(failed[0]), sops[1]);
    assert.deepEqual(failed[0]['00081197'], { vr: 'US', Value: [FAILURE_REASON.processingFailure] });
    const comment = String(failed[0]['00000902'].Value?.[0]);
    assert.match(comment, /^E_INTERNAL: /);
    assert.doesNotMatch(comment, /refused at commit/, 'the database error stays in the log');
    const line = logged.find((l) => l.msg === 'stow-rs instance failed');
    assert.ok(line, 'the unexpected error is logged');
    assert.equal(line.part, 2);
    assert.match(String(line.error), /refused at commit[\s\S]*\n\s+at /, 'with its stack');
  } finally {
    await logging.close();
  }
  // nothing of the broken instance is left: no study, no stored file
  assert.deepEqual(await h.db.ds.query('SELECT id FROM studies WHERE sop_instance_uid = $1', [sops[1]]), []);
  assert.equal(existsSync(new FsObjectStore(h.settings.dicomDir).pathFor(sha256Hex(bodies[1]))), false);
  assert.equal(existsSync(new FsObjectStore(h.settings.dicomDir).pathFor(sha256Hex(bodies[0]))), true);
  assert.equal(await studiesOf(sender), 2, 'the instances before and after it were stored');
  assert.deepEqual(await storedWithoutAuditRow(sender), [], 'every stored instance is named by its audit row');
  const rows = await auditRows(sender);
  assert.deepEqual(
    rows.map((r) => [r.outcome, r.detail.sopInstanceUid ?? null, r.detail.part]),
    [
      ['ok', sops[0], 1],
      ['E_INTERNAL', sops[1], 2],
      ['ok', sops[2], 3],
    ],
  );
  assert.equal(rows[1].study_id, null);
  const verify = await h.http.get('/v1/audit/verify').set('Authorization', `Bearer ${h.token('auditor', 'aud-stow')}`);
  assert.equal(verify.body.ok, true);
});

test('what follows a committed accept (handing the film to the workers) failing is logged, not answered: the instance is reported stored, its file and audit row kept, and it is scored', async () => {
  const sender = 'ws-stow-after-commit';
  const bodies = [study(831), study(832)];
  const sops = bodies.map((b) => readMetadata(b).sopInstanceUid!);
  const { logging, logged } = await loggingService();
  // the in-memory hand-over to this process's workers breaks after each study has committed
  (logging.service as unknown as { recentFilms: { keep(): void } }).recentFilms.keep = () => {
    throw new Error('film cache broken');
  };
  try {
    const res = await stow(sender, bodies, supertest(logging.app));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body['00081199'].Value.map(uid), sops);
    assert.equal(res.body['00081198'], undefined);
    const lines = logged.filter((l) => String(l.msg).startsWith('after an accept, could not keep the film'));
    assert.equal(lines.length, 2, JSON.stringify(logged));
    assert.match(String(lines[0].error), /film cache broken[\s\S]*\n\s+at /);
    for (const b of bodies) assert.equal(existsSync(new FsObjectStore(h.settings.dicomDir).pathFor(sha256Hex(b))), true);
    // the workers still find the jobs (from the database, not the hand-over) and score them
    const until = Date.now() + 60_000;
    for (;;) {
      const [row] = await h.db.ds.query(`SELECT count(*)::int AS n FROM predictions p JOIN studies s ON s.id = p.study_id WHERE s.submitted_by = $1`, [sender]);
      if (row.n === 2) break;
      assert.ok(Date.now() < until, 'both studies scored');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await logging.close();
  }
  assert.deepEqual(await storedWithoutAuditRow(sender), []);
  assert.deepEqual(
    (await auditRows(sender)).map((r) => [r.outcome, r.detail.sopInstanceUid]),
    sops.map((sop) => ['ok', sop]),
  );
});

test('a request whose every instance fails unexpectedly: 409 as for any request that stored nothing, each a Processing Failure (0x0110), audited', async () => {
  const sender = 'ws-stow-all-broken';
  const bodies = [study(821), study(822)];
  const sops = bodies.map((b) => readMetadata(b).sopInstanceUid!);
  for (const sop of sops) await failAtCommit(h.db, 'studies', 'sop_instance_uid', sop);
  const res = await stow(sender, bodies);
  assert.equal(res.status, 409);
  assert.equal(res.body['00081199'], undefined);
  assert.deepEqual(res.body['00081198'].Value.map(uid), sops);
  for (const item of res.body['00081198'].Value as Item[]) assert.deepEqual(item['00081197'].Value, [FAILURE_REASON.processingFailure]);
  assert.equal(await studiesOf(sender), 0);
  assert.deepEqual(
    (await auditRows(sender)).map((r) => [r.outcome, r.detail.sopInstanceUid]),
    sops.map((sop) => ['E_INTERNAL', sop]),
  );
});

test('when the audit log refuses the rows, no instance of the request is stored without one', async () => {
  const sender = 'ws-stow-unaudited';
  // every audit row of this sender fails at COMMIT: the instances' rows and the failure's own
  await failAtCommit(h.db, 'audit_log', 'actor', sender);
  const res = await stow(sender, [study(811), study(812)]);
  assert.equal(res.status, 500);
  assert.deepEqual(await storedWithoutAuditRow(sender), []);
  assert.equal(await studiesOf(sender), 0);
  // the same instances from a sender the log accepts are stored, each with its row
  const ok = await stow('ws-stow-audited', [study(811), study(812)]);
  assert.equal(ok.status, 200);
  assert.equal(await studiesOf('ws-stow-audited'), 2);
  assert.deepEqual(await storedWithoutAuditRow('ws-stow-audited'), []);
});
