/**
 * The DIMSE Storage SCP against DCMTK's real `echoscu` and `storescu`: registered callers
 * store into the same ingestion path as HTTP, unknown callers are rejected at association and
 * audited, bad instances get a failure status with the stable code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DimseServer } from '../../src/api/dimse/scp.js';
import { insertClient } from '../../src/db/principals.js';
import dimse from 'dcmjs-dimse';
import { readMetadata } from '../../src/dicom/index.js';
import { datasetOf } from '../../src/service/result-senders.js';
import { startHarness, startHarnessScp, study, waitScored, type Harness } from '../support/api.js';
import { failAtCommit } from '../support/database.js';

let h: Harness;
let scp: DimseServer;
before(async () => {
  h = await startHarness();
  await insertClient(h.db.ds, { id: 'ws-dx-1', role: 'workstation', secretHash: 'x', description: '', createdBy: 'test', aeTitle: 'WS-DX-1' });
  await insertClient(h.db.ds, { id: 'ws-gone', role: 'workstation', secretHash: 'x', description: '', createdBy: 'test', aeTitle: 'WS-GONE' });
  await h.db.ds.query(`UPDATE api_clients SET revoked_at = now() WHERE id = 'ws-gone'`);
  scp = await startHarnessScp(h);
});
after(async () => {
  await scp?.close(1000);
  await h?.close();
});

/** Runs a DCMTK tool asynchronously enough for the in-process SCP to answer (spawnSync would block it). */
async function dcmtk(tool: string, args: string[]): Promise<{ status: number | null; out: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const p = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, out }));
  });
}

const echo = (aet: string, aec = 'CXRTRIAGE') => dcmtk('echoscu', ['-v', '-aet', aet, '-aec', aec, '127.0.0.1', String(scp.port)]);
const store = (aet: string, ...files: string[]) => dcmtk('storescu', ['-v', '-aet', aet, '-aec', 'CXRTRIAGE', '127.0.0.1', String(scp.port), ...files]);

function file(name: string, bytes: Uint8Array): string {
  const p = join(h.root, name);
  writeFileSync(p, bytes);
  return p;
}

async function instanceRows(sop: string): Promise<{ id: string; submitted_by: string; transfer_syntax: string }[]> {
  return h.db.ds.query('SELECT id, submitted_by, transfer_syntax FROM studies WHERE sop_instance_uid = $1', [sop]);
}

test('the DCMTK tools are installed (CI installs dcmtk)', () => {
  for (const tool of ['echoscu', 'storescu']) assert.equal(spawnSync(tool, ['--version']).status, 0, `${tool} missing`);
});

test('C-ECHO from a registered AE title succeeds, and its case and padding do not matter', async () => {
  const r = await echo('WS-DX-1');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /Received Echo Response \(Success\)/);
  assert.equal((await echo('ws-dx-1 ')).status, 0);
});

test('C-ECHO from an unknown or revoked AE title, or to another called AE, is rejected at association and audited', async () => {
  const unknown = await echo('STRANGER');
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.out, /Association Rejected/);
  assert.match(unknown.out, /Calling AE Title Not Recognized/i);
  const revoked = await echo('WS-GONE');
  assert.notEqual(revoked.status, 0);
  const wrongCalled = await echo('WS-DX-1', 'OTHERAE');
  assert.notEqual(wrongCalled.status, 0);
  assert.match(wrongCalled.out, /Called AE Title Not Recognized/i);
  const rows: { actor: string; outcome: string; detail: Record<string, unknown> }[] = await h.db.ds.query(
    `SELECT actor, outcome, detail FROM audit_log WHERE action = 'dimse.associate' ORDER BY seq`,
  );
  assert.deepEqual(
    rows.map((r) => [r.actor, r.outcome]),
    [
      ['ae:STRANGER', 'E_UNAUTHENTICATED'],
      ['ae:WS-GONE', 'E_UNAUTHENTICATED'],
      ['ae:WS-DX-1', 'E_NOT_FOUND'],
    ],
  );
  assert.equal(rows[2].detail.calledAe, 'OTHERAE');
  const metrics = await h.parts.metrics.registry.getSingleMetricAsString('cxr_dimse_operations_total');
  assert.match(metrics, /operation="associate",outcome="E_UNAUTHENTICATED"} 2/);
});

test('C-STORE from a registered AE: stored before success, scored, audited, and a re-send is a duplicate, not a second row', async () => {
  const bytes = study(401);
  const sop = readMetadata(bytes).sopInstanceUid!;
  const path = file('cr-401.dcm', bytes);
  const r = await store('WS-DX-1', path);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /Received Store Response \(Success\)/);
  // Success means durably recorded: the row exists the moment storescu returns.
  const rows = await instanceRows(sop);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].submitted_by, 'ws-dx-1');
  await waitScored(h, rows[0].id);
  const again = await store('WS-DX-1', path);
  assert.match(again.out, /Received Store Response \(Success\)/);
  assert.equal((await instanceRows(sop)).length, 1);
  const audit: { outcome: string; detail: Record<string, unknown> }[] = await h.db.ds.query(
    `SELECT outcome, detail FROM audit_log WHERE action = 'study.create' AND detail->>'sopInstanceUid' = $1 ORDER BY seq`,
    [sop],
  );
  assert.deepEqual(
    audit.map((a) => [a.outcome, a.detail.via, a.detail.callingAe, a.detail.duplicate]),
    [
      ['ok', 'dimse', 'WS-DX-1', false],
      ['ok', 'dimse', 'WS-DX-1', true],
    ],
  );
  const pred: { n: number }[] = await h.db.ds.query('SELECT count(*)::int AS n FROM predictions WHERE study_id = $1', [rows[0].id]);
  assert.equal(pred[0].n, 1);
});

test('C-STORE of compressed fixtures negotiates their transfer syntax and stores the bytes as sent', async () => {
  const cases = [
    ['cr-mono1-u12.jpeg-ls.dcm', '-xt'],
    ['dx-u8.rle.dcm', '-xr'],
  ];
  for (const [name, propose] of cases) {
    const path = join('fixtures', 'dicom', name);
    const meta = readMetadata(new Uint8Array(readFileSync(path)));
    // Each proposes the file's own (compressed) syntax beside the uncompressed ones, combined
    // in one presentation context as a PACS forwarding it unchanged does: the SCP must pick
    // the compressed one, since storescu has no codec to decompress with.
    const r = await dcmtk('storescu', ['-v', propose, '+C', '-aet', 'WS-DX-1', '-aec', 'CXRTRIAGE', '127.0.0.1', String(scp.port), path]);
    assert.match(r.out, /Received Store Response \(Success\)/, `${name}: ${r.out}`);
    const rows = await instanceRows(meta.sopInstanceUid!);
    assert.equal(rows.length, 1, name);
    assert.equal(rows[0].transfer_syntax, meta.transferSyntaxUid, name);
  }
  // The same image in another encoding carries the same SOP Instance UID with other bytes:
  // refused as a conflicting duplicate (0x0111), the stored one untouched.
  const conflict = await dcmtk('storescu', [
    '-v',
    '-xs',
    '+C',
    '-aet',
    'WS-DX-1',
    '-aec',
    'CXRTRIAGE',
    '127.0.0.1',
    String(scp.port),
    join('fixtures', 'dicom', 'cr-mono1-u12.jpeg-lossless-sv1.dcm'),
  ]);
  assert.match(conflict.out, /Received Store Response \(Unknown Status: 0x111\)/, conflict.out);
});

test('C-STORE of an instance ingestion refuses: failure status with the code in the Error Comment, nothing stored', async () => {
  // A CR whose Rows says twice what the pixel data holds: valid framing, undecodable pixels.
  const bytes = Buffer.from(study(402));
  const rowsTag = Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]);
  const at = bytes.indexOf(rowsTag);
  assert.ok(at > 0);
  bytes.writeUInt16LE(bytes.readUInt16LE(at + 8) * 2, at + 8);
  const sop = readMetadata(bytes).sopInstanceUid!;
  const r = await dcmtk('storescu', ['-d', '-aet', 'WS-DX-1', '-aec', 'CXRTRIAGE', '127.0.0.1', String(scp.port), file('bad-402.dcm', bytes)]);
  assert.match(r.out, /DIMSE Status\s*: 0xc000: Error: Cannot understand/, r.out);
  // The response's Error Comment (0000,0902) starts with the stable code.
  assert.match(r.out, /\(0000,0902\) LO \[E_(TRUNCATED|BAD_PIXEL_FORMAT|MALFORMED)/, r.out);
  assert.equal((await instanceRows(sop)).length, 0);
  const audit: { outcome: string }[] = await h.db.ds.query(`SELECT outcome FROM audit_log WHERE action = 'study.create' AND detail->>'sopInstanceUid' = $1`, [
    sop,
  ]);
  assert.equal(audit.length, 1);
  assert.match(audit[0].outcome, /^E_/);
});

test('C-STORE from an unknown AE stores nothing; a CT image has no accepted presentation context', async () => {
  const bytes = study(403);
  const sop = readMetadata(bytes).sopInstanceUid!;
  const r = await store('STRANGER', file('cr-403.dcm', bytes));
  assert.notEqual(r.status, 0);
  assert.match(r.out, /Association Rejected/);
  assert.equal((await instanceRows(sop)).length, 0);
  const ct = await store('WS-DX-1', join('fixtures', 'dicom', 'ct-s16-hu.dcm'));
  assert.doesNotMatch(ct.out, /Store Response \(Success\)/);
  assert.match(ct.out, /no presentation context|No presentation context/i, ct.out);
});

test('a PA, an AP and a lateral of one study in separate associations: one worklist row, two scored images, the lateral listed as not scored', async () => {
  const studyUid = '2.25.4711000000000000000000000000000001';
  const opts = { studyInstanceUid: studyUid, accessionNumber: 'ACC-4711', studyDate: '20261130' };
  const files = [
    file('pa.dcm', study(411, { ...opts, viewPosition: 'PA' })),
    file('ap.dcm', study(412, { ...opts, viewPosition: 'AP' })),
    file('lat.dcm', study(413, { ...opts, viewPosition: 'LL' })),
  ];
  for (const f of files) {
    const r = await store('WS-DX-1', f);
    assert.match(r.out, /Received Store Response \(Success\)/, r.out);
  }
  const ids: { id: string }[] = await h.db.ds.query('SELECT id FROM studies WHERE study_instance_uid = $1 ORDER BY seq', [studyUid]);
  assert.equal(ids.length, 3);
  for (const { id } of ids) await waitScored(h, id);

  const res = await h.http.get('/v1/worklist?limit=200').set('Authorization', `Bearer ${h.token('clinician')}`);
  assert.equal(res.status, 200);
  const rows = (res.body.items as { studyInstanceUid: string }[]).filter((i) => i.studyInstanceUid === studyUid);
  assert.equal(rows.length, 1, 'one row for the study');
  const row = rows[0] as unknown as {
    studyId: string;
    status: string;
    accessionNumber: string;
    studyDate: string;
    probability: number;
    scoredImages: number;
    instances: { id: string; viewPosition: string; status: string; probability: number | null; reason: string | null; decisive: boolean }[];
  };
  assert.equal(row.status, 'scored');
  assert.equal(row.accessionNumber, 'ACC-4711');
  assert.equal(row.studyDate, '2026-11-30');
  assert.equal(row.scoredImages, 2);
  assert.deepEqual(
    row.instances.map((i) => [i.viewPosition, i.status]),
    [
      ['PA', 'scored'],
      ['AP', 'scored'],
      ['LL', 'not_scored'],
    ],
  );
  assert.equal(row.instances[2].reason, 'lateral view (ViewPosition LL)');
  assert.equal(row.instances[2].probability, null);
  const preds: { n: number }[] = await h.db.ds.query('SELECT count(*)::int AS n FROM predictions WHERE study_id = $1', [row.instances[2].id]);
  assert.equal(preds[0].n, 0, 'the lateral never went through the model');
  // The study's decision is its most suspicious frontal result.
  const frontal = row.instances.filter((i) => i.status === 'scored');
  const top = frontal.reduce((a, b) => ((b.probability ?? 0) > (a.probability ?? 0) ? b : a));
  assert.equal(row.probability, top.probability);
  assert.equal(row.studyId, top.id);
  assert.deepEqual(
    row.instances.filter((i) => i.decisive).map((i) => i.id),
    [top.id],
  );
});

test('C-STORE whose transaction fails at COMMIT: failure status, no study, and the failure audited (the row appended inside the transaction rolled back with it)', async () => {
  const bytes = study(403);
  const sop = readMetadata(bytes).sopInstanceUid!;
  // checked at COMMIT, after the study and its audit row were written
  await failAtCommit(h.db, 'studies', 'sop_instance_uid', sop);
  const r = await dcmtk('storescu', ['-d', '-aet', 'WS-DX-1', '-aec', 'CXRTRIAGE', '127.0.0.1', String(scp.port), file('commit-403.dcm', bytes)]);
  assert.match(r.out, /DIMSE Status\s*: 0x0110/, r.out);
  assert.match(r.out, /\(0000,0902\) LO \[E_INTERNAL/, r.out);
  assert.equal((await instanceRows(sop)).length, 0);
  const audit: { outcome: string }[] = await h.db.ds.query(`SELECT outcome FROM audit_log WHERE action = 'study.create' AND detail->>'sopInstanceUid' = $1`, [
    sop,
  ]);
  assert.deepEqual(
    audit.map((a) => a.outcome),
    ['E_INTERNAL'],
  );
});

test('a client revoked while its association stays open stores nothing more: its later C-STOREs are refused (0x0124 Not Authorized)', async () => {
  await insertClient(h.db.ds, { id: 'ws-revoke', role: 'workstation', secretHash: 'x', description: '', createdBy: 'test', aeTitle: 'WS-REVOKE' });
  const client = new dimse.Client();
  const statuses: number[] = [];
  const sops: string[] = [];
  for (let i = 0; i < 6; i++) {
    const bytes = study(410 + i);
    sops.push(readMetadata(bytes).sopInstanceUid!);
    const r = new dimse.requests.CStoreRequest(datasetOf(bytes));
    r.on('response', async (resp: { getStatus(): number }) => {
      statuses.push(resp.getStatus());
      // revoked after the first store, as an admin would while the modality keeps sending
      if (statuses.length === 1) await h.db.ds.query(`UPDATE api_clients SET revoked_at = now() WHERE id = 'ws-revoke'`);
    });
    client.addRequest(r);
  }
  await new Promise<void>((resolve) => {
    client.on('closed', () => resolve());
    client.send('127.0.0.1', scp.port, 'WS-REVOKE', 'CXRTRIAGE');
  });
  assert.equal(statuses.length, 6);
  assert.equal(statuses[0], 0);
  // by the last request the revocation has long committed
  assert.equal(statuses[5], 0x0124);
  assert.equal((await instanceRows(sops[5])).length, 0);
  const refused: { outcome: string }[] = await h.db.ds.query(`SELECT outcome FROM audit_log WHERE action = 'study.create' AND detail->>'sopInstanceUid' = $1`, [
    sops[5],
  ]);
  assert.deepEqual(
    refused.map((a) => a.outcome),
    ['E_UNAUTHENTICATED'],
  );
});
