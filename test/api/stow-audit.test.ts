/**
 * STOW-RS stores several instances in one request: every instance it stores is named by an audit
 * row that committed with it, whatever fails later in the same request (a later instance's
 * COMMIT, or the audit log itself), on a real database whose COMMIT fails.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readMetadata } from '../../src/dicom/index.js';
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

const stow = (sender: string, bodies: Buffer[]) =>
  h.http
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

const studiesOf = async (sender: string): Promise<number> =>
  (await h.db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = $1`, [sender]))[0].n;

test('an instance whose COMMIT fails midway through a request: the instances stored before it keep their audit rows, and the failure is audited', async () => {
  const sender = 'ws-stow-midway';
  const bodies = [study(801), study(802), study(803)];
  const sops = bodies.map((b) => readMetadata(b).sopInstanceUid!);
  // the second instance's transaction fails at COMMIT, after the first one committed
  await failAtCommit(h.db, 'studies', 'sop_instance_uid', sops[1]);
  const res = await stow(sender, bodies);
  assert.equal(res.status, 500);
  assert.equal(await studiesOf(sender), 1, 'the first instance was stored');
  assert.deepEqual(await storedWithoutAuditRow(sender), [], 'every stored instance is named by its audit row');
  const rows: { outcome: string; study_id: string | null; detail: Record<string, unknown> }[] = await h.db.ds.query(
    `SELECT outcome, study_id, detail FROM audit_log WHERE action = 'study.create' AND actor = $1 ORDER BY seq`,
    [sender],
  );
  assert.deepEqual(
    rows.map((r) => [r.outcome, r.detail.sopInstanceUid ?? null]),
    [
      ['ok', sops[0]],
      ['E_INTERNAL', null],
    ],
  );
  assert.equal(rows[1].detail.status, 500);
  const verify = await h.http.get('/v1/audit/verify').set('Authorization', `Bearer ${h.token('auditor', 'aud-stow')}`);
  assert.equal(verify.body.ok, true);
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
