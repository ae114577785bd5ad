/**
 * Results back to PACS, end to end with real parts: a scored study's AI result objects (a
 * Comprehensive SR and a Secondary Capture) go through the PostgreSQL outbox to two real
 * Orthancs, one by STOW-RS (with an Authorization header) and one by C-STORE, and to a third
 * destination that never answers. The Orthancs are down when the first study is scored: the
 * first attempts fail, are retried with back-off, and the objects arrive once they are up.
 * Every attempt is an audit row; the objects pass dciodvfy and dsrdump as Orthanc returns
 * them; the service serves them by WADO-RS and lists them by QIDO-RS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMetadata } from '../../src/dicom/index.js';
import { formatDS } from '../../src/dicom/write.js';
import { verifyAuditChain } from '../../src/db/audit.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { dciodvfy, dsrdump, freePort, startOrthanc, type Orthanc } from '../support/pacs.js';

let h: Harness;
let web: Orthanc | null = null;
let dimse: Orthanc | null = null;
const ports = { web: { httpPort: 0, dicomPort: 0 }, dimse: { httpPort: 0, dicomPort: 0 } };
let deadPort = 0;
// Orthanc's own users authenticate by HTTP Basic; CXR_RESULTS_STOW_AUTH is the whole header value
const AUTH = `Basic ${Buffer.from('results:results-test-token').toString('base64')}`;
const MAX_ATTEMPTS = 8;

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface DeliveryRow {
  kind: string;
  sop_instance_uid: string;
  destination: string;
  status: string;
  attempts: number;
  last_error_code: string | null;
  last_error: string | null;
}

async function deliveries(studyUid: string): Promise<DeliveryRow[]> {
  return h.db.ds.query(
    `SELECT d.kind, d.sop_instance_uid, r.destination, r.status, r.attempts, r.last_error_code, r.last_error
       FROM result_deliveries r JOIN derived_objects d ON d.id = r.object_id WHERE d.study_instance_uid = $1 ORDER BY d.kind, r.destination`,
    [studyUid],
  );
}

const webDest = () => `stow:http://127.0.0.1:${ports.web.httpPort}/dicom-web/studies`;
const dimseDest = () => `dimse:ORTHANCB@127.0.0.1:${ports.dimse.dicomPort}`;
const deadDest = () => `dimse:NOBODY@127.0.0.1:${deadPort}`;

before(async () => {
  ports.web = { httpPort: await freePort(), dicomPort: await freePort() };
  ports.dimse = { httpPort: await freePort(), dicomPort: await freePort() };
  deadPort = await freePort();
  h = await startHarness({
    results: {
      destinations: [
        { kind: 'stow', url: `http://127.0.0.1:${ports.web.httpPort}/dicom-web/studies`, auth: AUTH },
        { kind: 'dimse', aeTitle: 'ORTHANCB', host: '127.0.0.1', port: ports.dimse.dicomPort },
        { kind: 'dimse', aeTitle: 'NOBODY', host: '127.0.0.1', port: deadPort },
      ],
      maxAttempts: MAX_ATTEMPTS,
      retryDelayMs: 300,
      maxRetryDelayMs: 1500,
      callingAeTitle: 'CXRTRIAGE',
    },
    outboxPollMs: 100,
  });
});

after(async () => {
  await web?.stop();
  await dimse?.stop();
  await h?.close();
});

/** Orthanc for STOW-RS: its REST API (and so the DICOMweb plugin) demands the header the service sends. */
function startWeb(): Promise<Orthanc> {
  return startOrthanc(
    join(h.root, 'orthanc-web'),
    {
      DicomAet: 'ORTHANCA',
      AuthenticationEnabled: true,
      RegisteredUsers: { results: 'results-test-token' },
      DicomWeb: { Enable: true, Root: '/dicom-web/' },
    },
    ports.web,
  );
}

function startDimse(): Promise<Orthanc> {
  return startOrthanc(join(h.root, 'orthanc-dimse'), { DicomAet: 'ORTHANCB', DicomWeb: { Enable: false } }, ports.dimse);
}

async function postStudy(seed: number, accession: string): Promise<{ id: string; studyUid: string; sop: string }> {
  const bytes = study(seed, { accessionNumber: accession, studyDate: '20261201' });
  const meta = readMetadata(bytes);
  const res = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation', 'ws-results')}`)
    .set('Content-Type', 'application/dicom')
    .send(bytes);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await waitScored(h, res.body.id);
  return { id: res.body.id, studyUid: meta.studyInstanceUid!, sop: meta.sopInstanceUid! };
}

let first: { id: string; studyUid: string; sop: string };

test('delivery survives the destinations being down: first attempts fail and are retried with back-off, then SR and SC arrive (audited)', async () => {
  first = await postStudy(701, 'RES-DOWN-1');
  const [row] = await h.db.ds.query(`SELECT status FROM studies WHERE id = $1`, [first.id]);
  assert.equal(row.status, 'scored');
  // both Orthancs are down: at least two failed attempts on each of their deliveries
  await waitFor('two failed attempts per delivery while the PACS is down', async () => {
    const rows = (await deliveries(first.studyUid)).filter((r) => r.destination !== deadDest());
    return rows.length === 4 && rows.every((r) => r.attempts >= 2 && r.status === 'pending' && r.last_error_code === 'E_DESTINATION');
  });
  const down = await deliveries(first.studyUid);
  assert.match(down.find((r) => r.destination === webDest())!.last_error!, /ECONNREFUSED/);
  // The Orthancs must be up before the retries run out (MAX_ATTEMPTS, a few seconds of back-off),
  // which a busy machine starting two Orthancs need not manage. While they start, row locks hold
  // the deliveries to them (the outbox claims with SKIP LOCKED): no attempt is spent meanwhile.
  const holder = await h.db.superuser();
  await holder.query('BEGIN');
  try {
    await holder.query(
      `SELECT r.id FROM result_deliveries r JOIN derived_objects d ON d.id = r.object_id WHERE d.study_instance_uid = $1 AND r.destination <> $2 FOR UPDATE OF r`,
      [first.studyUid, deadDest()],
    );
    [web, dimse] = await Promise.all([startWeb(), startDimse()]);
  } finally {
    await holder.query('COMMIT');
  }
  const done = await waitFor('SR and SC delivered to both Orthancs', async () => {
    const rows = (await deliveries(first.studyUid)).filter((r) => r.destination !== deadDest());
    return rows.length === 4 && rows.every((r) => r.status === 'delivered') && rows;
  });
  assert.deepEqual(
    done.map((r) => [r.kind, r.destination]),
    [
      ['sc', dimseDest()],
      ['sc', webDest()],
      ['sr', dimseDest()],
      ['sr', webDest()],
    ],
  );
  for (const r of done) assert.ok(r.attempts >= 3, `${r.kind} to ${r.destination}: ${r.attempts} attempts`);
  // every attempt is an audit row: the failures as 'retry', then one 'delivered'
  const audits: { outcome: string; detail: { destination: string; kind: string; attempt: number; code?: string } }[] = await h.db.ds.query(
    `SELECT outcome, detail FROM audit_log WHERE action = 'result.send' AND study_id = $1 ORDER BY seq`,
    [first.id],
  );
  for (const r of done) {
    const mine = audits.filter((a) => a.detail.destination === r.destination && a.detail.kind === r.kind);
    assert.equal(mine.length, r.attempts, `${r.kind} to ${r.destination}: one audit row per attempt`);
    assert.deepEqual(
      mine.map((a) => a.outcome),
      [...Array(r.attempts - 1).fill('retry'), 'delivered'],
    );
    assert.deepEqual(
      mine.map((a) => a.detail.attempt),
      Array.from({ length: r.attempts }, (_, i) => i + 1),
    );
    assert.ok(mine.slice(0, -1).every((a) => a.detail.code === 'E_DESTINATION'));
  }
  assert.equal((await verifyAuditChain(h.db.ds)).ok, true);
});

/** Orthanc's record of an instance, found by SOP Instance UID. */
async function findInOrthanc(o: Orthanc, sop: string): Promise<{ id: string; origin: string; remoteAet: string | null }> {
  const ids = (await (await fetch(`${o.url}/tools/lookup`, { method: 'POST', body: sop, headers: authFor(o) })).json()) as { ID: string; Type: string }[];
  const inst = ids.find((i) => i.Type === 'Instance');
  assert.ok(inst, `instance ${sop} is in Orthanc ${o.aeTitle}`);
  const origin = (await (await fetch(`${o.url}/instances/${inst.ID}/metadata/Origin`, { headers: authFor(o) })).text()) as string;
  const aet = await fetch(`${o.url}/instances/${inst.ID}/metadata/RemoteAET`, { headers: authFor(o) });
  return { id: inst.ID, origin, remoteAet: aet.ok ? await aet.text() : null };
}

function authFor(o: Orthanc): Record<string, string> {
  return o === web ? { Authorization: AUTH } : {};
}

test('the SR and SC are in both Orthancs, in the scored study, in new series; by STOW-RS and by C-STORE from our AE', async () => {
  const objects: { kind: string; sop_instance_uid: string; series_instance_uid: string }[] = await h.db.ds.query(
    `SELECT kind, sop_instance_uid, series_instance_uid FROM derived_objects WHERE study_instance_uid = $1 ORDER BY kind`,
    [first.studyUid],
  );
  assert.deepEqual(
    objects.map((o) => o.kind),
    ['sc', 'sr'],
  );
  for (const o of objects) assert.notEqual(o.series_instance_uid, readMetadata(study(701)).seriesInstanceUid);
  const viaDimse = await findInOrthanc(dimse!, objects[1].sop_instance_uid);
  assert.equal(viaDimse.origin, 'DicomProtocol');
  assert.equal(viaDimse.remoteAet, 'CXRTRIAGE');
  const viaWeb = await findInOrthanc(web!, objects[1].sop_instance_uid);
  assert.notEqual(viaWeb.origin, 'DicomProtocol');
  // what README shows: the result series by the PACS's own QIDO-RS, with the results user
  const qido = (await fetch(`${web!.url}/dicom-web/studies/${first.studyUid}/series`, { headers: authFor(web!) }).then((r) => r.json())) as Record<
    string,
    { Value?: string[] }
  >[];
  assert.deepEqual(qido.map((s) => s['00080060']?.Value?.[0]).sort(), ['OT', 'SR']);
  for (const o of [dimse!, web!]) {
    for (const obj of objects) {
      const found = await findInOrthanc(o, obj.sop_instance_uid);
      const tags = (await fetch(`${o.url}/instances/${found.id}/simplified-tags`, { headers: authFor(o) }).then((r) => r.json())) as Record<string, string>;
      assert.equal(tags.StudyInstanceUID, first.studyUid);
      assert.equal(tags.AccessionNumber, 'RES-DOWN-1');
      assert.equal(tags.SeriesDescription, 'AI RESULT - NOT FOR DIAGNOSTIC USE');
      assert.equal(tags.Modality, obj.kind === 'sr' ? 'SR' : 'OT');
    }
  }
});

test('as Orthanc returns them, the SR and SC pass dciodvfy with no errors and dsrdump prints the findings with the stored values', async () => {
  const [pred] = await h.db.ds.query(`SELECT probability, threshold, target_recall, decision FROM predictions WHERE study_id = $1`, [first.id]);
  const objects: { kind: string; sop_instance_uid: string }[] = await h.db.ds.query(
    `SELECT kind, sop_instance_uid FROM derived_objects WHERE study_instance_uid = $1 ORDER BY kind`,
    [first.studyUid],
  );
  for (const o of objects) {
    const found = await findInOrthanc(dimse!, o.sop_instance_uid);
    const bytes = Buffer.from(await (await fetch(`${dimse!.url}/instances/${found.id}/file`)).arrayBuffer());
    const path = join(h.root, `${o.kind}-from-orthanc.dcm`);
    writeFileSync(path, bytes);
    const v = dciodvfy(path);
    assert.equal(v.iod, o.kind === 'sr' ? 'ComprehensiveSR' : 'SCImage');
    assert.deepEqual(v.errors, [], `${o.kind}: ${v.errors.join('\n')}`);
    if (o.kind !== 'sr') continue;
    const dump = dsrdump(path);
    assert.match(dump, /CODE:\(,,"Finding"\)=\(233604007,SCT,"Pneumonia"\)/);
    assert.ok(dump.includes(`NUM:(,,"Probability of pneumonia")="${formatDS(pred.probability)}"`), dump);
    assert.ok(dump.includes(`NUM:(,,"Decision threshold")="${formatDS(pred.threshold)}"`));
    assert.ok(dump.includes(`NUM:(,,"Target recall")="${formatDS(pred.target_recall)}"`));
    assert.match(dump, pred.decision === 'positive' ? /"AI decision"\)=\(10828004,SCT,"Positive"\)/ : /"AI decision"\)=\(260385009,SCT,"Negative"\)/);
    assert.match(dump, /TEXT:\(,,"Algorithm Name"\)="[^"]+"/);
  }
});

test('with the PACS up, a newly scored study is delivered at the first attempt', async () => {
  const second = await postStudy(702, 'RES-UP-1');
  const rows = await waitFor('second study delivered', async () => {
    const r = (await deliveries(second.studyUid)).filter((x) => x.destination !== deadDest());
    return r.length === 4 && r.every((x) => x.status === 'delivered') && r;
  });
  assert.deepEqual(
    rows.map((r) => r.attempts),
    [1, 1, 1, 1],
  );
});

test('a destination that never answers: failed after the last attempt, with the reason, every attempt audited', async () => {
  const rows = await waitFor(
    'deliveries to the dead destination failed',
    async () => {
      const r = (await deliveries(first.studyUid)).filter((x) => x.destination === deadDest());
      return r.length === 2 && r.every((x) => x.status === 'failed') && r;
    },
    90_000,
  );
  for (const r of rows) {
    assert.equal(r.attempts, MAX_ATTEMPTS);
    assert.equal(r.last_error_code, 'E_DESTINATION');
    assert.match(r.last_error!, /NOBODY@127\.0\.0\.1.*ECONNREFUSED/);
  }
  const [a] = await h.db.ds.query(
    `SELECT count(*) FILTER (WHERE outcome = 'retry')::int AS retry, count(*) FILTER (WHERE outcome = 'failed')::int AS failed
       FROM audit_log WHERE action = 'result.send' AND study_id = $1 AND detail->>'destination' = $2`,
    [first.id, deadDest()],
  );
  assert.deepEqual(a, { retry: 2 * (MAX_ATTEMPTS - 1), failed: 2 });
  // /metrics counts this process's attempts by outcome; each is counted after its audit row commits
  const metrics = (await h.http.get('/metrics')).text;
  const counted = (outcome: string) => Number(new RegExp(`cxr_result_sends_total\\{outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
  const [all] = await h.db.ds.query(
    `SELECT count(*) FILTER (WHERE outcome = 'delivered')::int AS delivered, count(*) FILTER (WHERE outcome = 'failed')::int AS failed
       FROM audit_log WHERE action = 'result.send'`,
  );
  // every delivery to the Orthancs is done; failures to the dead destination may still be happening
  assert.equal(counted('delivered'), 8);
  assert.equal(all.delivered, 8);
  assert.ok(counted('failed') >= 2 && counted('failed') <= all.failed, `failed: ${counted('failed')} counted, ${all.failed} audited`);
});

test('delivery status in the API: by study id and by StudyInstanceUID, a workstation sees only what it sent', async () => {
  const clin = `Bearer ${h.token('clinician')}`;
  const byId = await h.http.get(`/v1/studies/${first.id}/deliveries`).set('Authorization', clin);
  assert.equal(byId.status, 200);
  assert.equal(byId.body.studyInstanceUid, first.studyUid);
  assert.deepEqual(byId.body.counts, { pending: 0, delivered: 4, failed: 2 });
  const failed = byId.body.items.filter((i: { status: string }) => i.status === 'failed');
  assert.ok(failed.every((i: { error: { code: string } }) => i.error.code === 'E_DESTINATION'));
  const byUid = await h.http.get(`/v1/studies/${first.studyUid}/deliveries`).set('Authorization', `Bearer ${h.token('workstation', 'ws-results')}`);
  assert.equal(byUid.status, 200);
  assert.deepEqual(byUid.body.items, byId.body.items);
  const other = await h.http.get(`/v1/studies/${first.studyUid}/deliveries`).set('Authorization', `Bearer ${h.token('workstation', 'ws-other')}`);
  assert.equal(other.status, 404);
  const view = await h.http.get(`/v1/studies/${first.id}`).set('Authorization', clin);
  assert.equal(view.body.links.deliveries, `/v1/studies/${first.id}/deliveries`);
  assert.deepEqual(view.body.results, { objects: 2, built: 2, pending: 0, delivered: 4, failed: 2 });
});

test('the service lists the result series by QIDO-RS and returns the SR and SC by WADO-RS, byte for byte as sent', async () => {
  const clin = `Bearer ${h.token('clinician')}`;
  const series = await h.http.get(`/dicomweb/studies/${first.studyUid}/series`).set('Authorization', clin);
  assert.equal(series.status, 200);
  const modalities = (series.body as Record<string, { Value?: string[] }>[]).map((s) => s['00080060']?.Value?.[0]);
  // the film's series, then the two result series
  assert.equal(modalities.length, 3, `series modalities: ${modalities.join(', ')}`);
  assert.deepEqual(modalities.slice(1).sort(), ['OT', 'SR']);
  const objects: { sop_instance_uid: string; series_instance_uid: string; sha256: string }[] = await h.db.ds.query(
    `SELECT sop_instance_uid, series_instance_uid, sha256 FROM derived_objects WHERE study_instance_uid = $1`,
    [first.studyUid],
  );
  for (const o of objects) {
    const res = await h.http
      .get(`/dicomweb/studies/${first.studyUid}/series/${o.series_instance_uid}/instances/${o.sop_instance_uid}`)
      .set('Authorization', clin)
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      });
    assert.equal(res.status, 200);
    const body = res.body as Buffer;
    const start = body.indexOf('\r\n\r\n') + 4;
    const end = body.lastIndexOf(Buffer.from('\r\n--'));
    const part = body.subarray(start, end);
    assert.equal(createHash('sha256').update(part).digest('hex'), o.sha256);
    assert.equal(readMetadata(part).sopInstanceUid, o.sop_instance_uid);
  }
});
