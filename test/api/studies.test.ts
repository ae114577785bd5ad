/**
 * The study lifecycle through the API with the real engine: submit (body and multipart),
 * idempotent re-posts, refusals that store nothing, reports, images, reviews, the worklist,
 * prediction history and CSV, model versions, and the audit trail of it all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeDicom, newUid } from '../../src/dicom/index.js';
import { pseudonymisePatientId } from '../../src/service/pseudonym.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';

let h: Harness;
let ws: string;
let clin: string;
let aud: string;
before(async () => {
  h = await startHarness();
  ws = `Bearer ${h.token('workstation', 'ws-1')}`;
  clin = `Bearer ${h.token('clinician', 'dr-1')}`;
  aud = `Bearer ${h.token('auditor', 'aud-1')}`;
});
after(async () => {
  await h?.close();
});

const post = (body: Buffer, query = '', auth = ws) =>
  h.http.post(`/v1/studies${query}`).set('Authorization', auth).set('Content-Type', 'application/dicom').send(body);

function storedFiles(): string[] {
  const root = h.settings.dicomDir;
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/**
 * Stored originals: the files of the store less the AI result objects (SR, Secondary Capture)
 * made for scored studies, once every one due has been made (they are built in the background).
 */
async function storedOriginals(): Promise<string[]> {
  for (let i = 0; ; i++) {
    const [r] = await h.db.ds.query(`SELECT count(*)::int AS n FROM derived_objects WHERE sha256 IS NULL AND build_error IS NULL`);
    if (r.n === 0) break;
    if (i > 600) throw new Error('result objects still being made after 30 s');
    await new Promise((done) => setTimeout(done, 50));
  }
  const derived: { sha256: string }[] = await h.db.ds.query(`SELECT sha256 FROM derived_objects WHERE sha256 IS NOT NULL`);
  return storedFiles().filter((f) => !derived.some((d) => f.endsWith(`${d.sha256}.dcm`)));
}

async function counts() {
  const [s] = await h.db.ds.query('SELECT (SELECT count(*) FROM studies)::int AS studies, (SELECT count(*) FROM predictions)::int AS predictions');
  return { ...s, files: (await storedOriginals()).length };
}

let firstId: string;

test('POST application/dicom: 202 with Location, then the study is scored by the engine', async () => {
  const bytes = study(101);
  const r = await post(bytes);
  assert.equal(r.status, 202);
  assert.equal(r.body.status, 'queued');
  assert.equal(r.headers.location, `/v1/studies/${r.body.id}`);
  firstId = r.body.id;
  await waitScored(h, firstId);
  const got = await h.http.get(r.headers.location).set('Authorization', clin);
  assert.equal(got.status, 200);
  assert.equal(got.body.status, 'scored');
  const p = got.body.prediction;
  assert.ok(p.probability > 0 && p.probability < 1, 'p.probability > 0 && p.probability < 1');
  assert.equal(p.decision, p.probability >= p.threshold ? 'positive' : 'negative');
  assert.equal(p.tta.views, 2);
  assert.equal(p.report.models.classifier.version, 'random-small');
  assert.equal(got.body.sizeBytes, bytes.length);
  assert.deepEqual(got.body.reviews, []);
  // the original is stored under its sha256 (beside it, in time, its AI result objects)
  const stored = await storedOriginals();
  assert.equal(stored.length, 1);
  assert.ok(stored[0].endsWith(`${got.body.sha256}.dcm`), 'stored[0].endsWith(`${got.body.sha256}.dcm`)');
});

test('the patient id is stored only as its HMAC pseudonym', async () => {
  const rows: { patient_pseudonym: string }[] = await h.db.ds.query('SELECT patient_pseudonym FROM studies WHERE id = $1', [firstId]);
  assert.equal(rows[0].patient_pseudonym, pseudonymisePatientId(h.settings.hmacKey, 'LAT101'));
  const dump = JSON.stringify(await h.db.ds.query('SELECT * FROM studies'));
  assert.ok(!dump.includes('LAT101'), "!dump.includes('LAT101')");
});

test('?wait=true returns the finished report', async () => {
  const r = await post(study(102), '?wait=true');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'scored');
  assert.ok(r.body.prediction.report.timingsMs.total > 0, 'r.body.prediction.report.timingsMs.total > 0');
  assert.equal(r.headers.location, `/v1/studies/${r.body.id}`);
});

test('multipart/form-data with a file part is accepted like a raw body', async () => {
  const r = await h.http
    .post('/v1/studies?wait=true')
    .set('Authorization', ws)
    .attach('file', study(103), { filename: 'cxr.dcm', contentType: 'application/dicom' });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'scored');
  const empty = await h.http.post('/v1/studies').set('Authorization', ws).field('note', 'no file');
  assert.equal(empty.status, 400);
});

test('re-posting the same instance returns the existing study, never a duplicate', async () => {
  const before = await counts();
  const again = await post(study(101));
  assert.equal(again.status, 200);
  assert.equal(again.body.id, firstId);
  assert.equal(again.body.status, 'scored');
  // concurrent re-posts race on the unique SOP Instance UID; still one study
  const fresh = study(104);
  const racers = await Promise.all([post(fresh), post(fresh), post(fresh)]);
  const ids = new Set(racers.map((r) => r.body.id));
  assert.equal(ids.size, 1);
  assert.deepEqual(racers.map((r) => r.status).sort(), [200, 200, 202]);
  await waitScored(h, [...ids][0]);
  const after = await counts();
  assert.deepEqual(after, { studies: before.studies + 1, predictions: before.predictions + 1, files: before.files + 1 });
});

test('the same SOP Instance UID with different content is a 409 conflict', async () => {
  const original = study(105);
  assert.equal((await post(original, '?wait=true')).status, 200);
  const tampered = Buffer.from(original);
  tampered[tampered.length - 1] ^= 0xff; // one pixel differs
  const r = await post(tampered);
  assert.equal(r.status, 409);
  assert.equal(r.body.error.code, 'E_CONFLICT');
});

test('refusals store nothing: wrong type 415, oversize 413, not DICOM / truncated / no pixels 422 with the ingestion code', async () => {
  const before = await counts();
  const wrongType = await h.http.post('/v1/studies').set('Authorization', ws).set('Content-Type', 'image/png').send(study(106));
  assert.equal(wrongType.status, 415);
  assert.equal(wrongType.body.error.code, 'E_UNSUPPORTED_MEDIA_TYPE');
  const noType = await h.http.post('/v1/studies').set('Authorization', ws).send('plain');
  assert.equal(noType.status, 415);

  const oversize = await post(Buffer.alloc(h.settings.maxBodyBytes + 1, 1));
  assert.equal(oversize.status, 413);
  assert.equal(oversize.body.error.code, 'E_PAYLOAD_TOO_LARGE');

  const notDicom = await post(Buffer.from('this is not a DICOM file, just some text that is long enough to have no preamble at all'.repeat(3)));
  assert.equal(notDicom.status, 422);
  assert.equal(notDicom.body.error.code, 'E_NOT_DICOM');

  const full = study(107);
  const truncated = await post(full.subarray(0, full.length - 5000));
  assert.equal(truncated.status, 422);
  assert.ok(['E_TRUNCATED', 'E_MALFORMED'].includes(truncated.body.error.code), truncated.body.error.code);

  const colour = encodeDicom({
    rows: 4,
    columns: 4,
    bitsAllocated: 8,
    bitsStored: 8,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME2',
    pixels: new Uint8Array(16),
    modality: 'CR',
    studyInstanceUid: newUid(['api-test', 'nopix']),
    seriesInstanceUid: newUid(['api-test', 'nopix', 's']),
    sopInstanceUid: newUid(['api-test', 'nopix', 'i']),
    patientId: 'P',
  });
  // cut the pixel data element off entirely: a header without an image
  const pixelTag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const at = Buffer.from(colour).lastIndexOf(pixelTag);
  const noPixels = await post(Buffer.from(colour).subarray(0, at));
  assert.equal(noPixels.status, 422);
  assert.equal(noPixels.body.error.code, 'E_NO_PIXEL_DATA');

  for (const r of [wrongType, oversize, notDicom, truncated, noPixels]) {
    assert.ok(!JSON.stringify(r.body).includes('    at '), 'no stack trace in a response');
  }
  assert.deepEqual(await counts(), before);
});

test('a workstation reads the studies it sent (no reviews), not those of another workstation', async () => {
  const own = await h.http.get(`/v1/studies/${firstId}`).set('Authorization', ws);
  assert.equal(own.status, 200);
  assert.equal(own.body.reviews, undefined);
  const other = await h.http.get(`/v1/studies/${firstId}`).set('Authorization', `Bearer ${h.token('workstation', 'ws-2')}`);
  assert.equal(other.status, 404);
  assert.equal((await h.http.get('/v1/studies/not-a-uuid').set('Authorization', clin)).status, 404);
  assert.equal((await h.http.get('/v1/studies/00000000-0000-4000-8000-000000000000').set('Authorization', clin)).status, 404);
});

test('images: windowed PNG, mask and heatmap overlays at the native size', async () => {
  for (const [kind, channels] of [
    ['image', 1],
    ['mask', 3],
    ['heatmap', 3],
  ] as const) {
    const r = await h.http
      .get(`/v1/studies/${firstId}/${kind}.png`)
      .set('Authorization', clin)
      .buffer(true)
      .parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      });
    assert.equal(r.status, 200, kind);
    assert.equal(r.headers['content-type'], 'image/png');
    const meta = await sharp(r.body as Buffer).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [256, 256, channels], kind);
  }
  const denied = await h.http.get(`/v1/studies/${firstId}/image.png`).set('Authorization', ws);
  assert.equal(denied.status, 403);
});

test('reviews: a clinician agrees or disagrees with a note; bad verdicts are 400, JSON only', async () => {
  const r = await h.http.post(`/v1/studies/${firstId}/reviews`).set('Authorization', clin).send({ verdict: 'disagree', note: 'no consolidation seen' });
  assert.equal(r.status, 201);
  assert.deepEqual([r.body.verdict, r.body.reviewer, r.body.note], ['disagree', 'dr-1', 'no consolidation seen']);
  assert.equal((await h.http.post(`/v1/studies/${firstId}/reviews`).set('Authorization', clin).send({ verdict: 'maybe' })).status, 400);
  assert.equal(
    (
      await h.http
        .post(`/v1/studies/${firstId}/reviews`)
        .set('Authorization', clin)
        .send({ verdict: 'agree', note: 'x'.repeat(4001) })
    ).status,
    400,
  );
  assert.equal((await h.http.post(`/v1/studies/${firstId}/reviews`).set('Authorization', clin).set('Content-Type', 'text/plain').send('agree')).status, 415);
  const list = await h.http.get(`/v1/studies/${firstId}/reviews`).set('Authorization', aud);
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.items.map((x: { verdict: string }) => x.verdict),
    ['disagree'],
  );
  const view = await h.http.get(`/v1/studies/${firstId}`).set('Authorization', clin);
  assert.equal(view.body.reviews.length, 1);
  const audit: { outcome: string; detail: { verdict: string } }[] = await h.db.ds.query(
    `SELECT outcome, detail FROM audit_log WHERE action = 'review.create' AND study_id = $1 ORDER BY seq`,
    [firstId],
  );
  assert.deepEqual(
    audit.map((a) => [a.outcome, a.detail.verdict ?? null]),
    [
      ['ok', 'disagree'],
      ['E_BAD_REQUEST', null],
      ['E_BAD_REQUEST', null],
      ['E_UNSUPPORTED_MEDIA_TYPE', null],
    ],
  );
});

test('the worklist pages through every scored study, flagged first, then by probability', async () => {
  const seen: { studyId: string; flagged: boolean; probability: number }[] = [];
  let cursor: string | null = null;
  do {
    const r: { status: number; body: { items: typeof seen; nextCursor: string | null } } = await h.http
      .get('/v1/worklist')
      .query({ limit: 2, ...(cursor ? { cursor } : {}) })
      .set('Authorization', clin);
    assert.equal(r.status, 200);
    assert.ok(r.body.items.length <= 2, 'r.body.items.length <= 2');
    seen.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  const [{ n }] = await h.db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE status = 'scored'`);
  assert.equal(seen.length, n);
  assert.equal(new Set(seen.map((s) => s.studyId)).size, n);
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1], seen[i]];
    assert.ok(Number(a.flagged) > Number(b.flagged) || (a.flagged === b.flagged && a.probability >= b.probability), `order at ${i}`);
  }
  const reviewed = await h.http.get('/v1/worklist?reviewed=true').set('Authorization', clin);
  assert.deepEqual(
    reviewed.body.items.map((s: { studyId: string }) => s.studyId),
    [firstId],
  );
  assert.equal((await h.http.get('/v1/worklist?flagged=maybe').set('Authorization', clin)).status, 400);
  assert.equal((await h.http.get('/v1/worklist?cursor=garbage').set('Authorization', clin)).status, 400);
  assert.equal((await h.http.get('/v1/worklist?limit=0').set('Authorization', clin)).status, 400);
});

test('prediction history: filters, pagination and the CSV export agree with each other', async () => {
  const all = await h.http.get('/v1/predictions?limit=200').set('Authorization', aud);
  assert.equal(all.status, 200);
  const [{ n }] = await h.db.ds.query('SELECT count(*)::int AS n FROM predictions');
  assert.equal(all.body.items.length, n);
  const disagreed = await h.http.get('/v1/predictions?agreement=disagree').set('Authorization', aud);
  assert.deepEqual(
    disagreed.body.items.map((p: { studyId: string }) => p.studyId),
    [firstId],
  );
  const byModel = await h.http.get('/v1/predictions?model=classifier@random-small&reviewed=false').set('Authorization', aud);
  assert.equal(byModel.body.items.length, n - 1);
  const none = await h.http.get('/v1/predictions?model=classifier@other').set('Authorization', aud);
  assert.deepEqual(none.body.items, []);
  const future = await h.http.get(`/v1/predictions?from=${new Date(Date.now() + 3_600_000).toISOString()}`).set('Authorization', aud);
  assert.deepEqual(future.body.items, []);
  assert.equal((await h.http.get('/v1/predictions?from=yesterday').set('Authorization', aud)).status, 400);

  const page1 = await h.http.get('/v1/predictions?limit=2').set('Authorization', aud);
  const page2 = await h.http.get(`/v1/predictions?limit=2&cursor=${page1.body.nextCursor}`).set('Authorization', aud);
  assert.deepEqual(
    [...page1.body.items, ...page2.body.items].map((p: { predictionId: string }) => p.predictionId),
    all.body.items.slice(0, 4).map((p: { predictionId: string }) => p.predictionId),
  );

  const csv = await h.http.get('/v1/predictions.csv').set('Authorization', aud);
  assert.equal(csv.status, 200);
  assert.match(csv.headers['content-type'], /^text\/csv/);
  const lines = csv.text.trimEnd().split('\r\n');
  assert.equal(lines.length, n + 1);
  const header = lines[0].split(',');
  assert.deepEqual(header.slice(0, 3), ['predictionId', 'studyId', 'studyInstanceUid']);
  const first = lines[1].split(',');
  assert.equal(first[header.indexOf('predictionId')], all.body.items[0].predictionId);
  assert.equal(Number(first[header.indexOf('probability')]), all.body.items[0].probability);
  const filtered = await h.http.get('/v1/predictions.csv?agreement=disagree').set('Authorization', aud);
  const rows = filtered.text.trimEnd().split('\r\n');
  assert.equal(rows.length, 2);
  assert.equal(rows[1].split(',')[header.indexOf('lastVerdict')], 'disagree');
});

test('model versions list the active segmenter and classifier with their hashes', async () => {
  const r = await h.http.get('/v1/models').set('Authorization', aud);
  assert.equal(r.status, 200);
  const items = r.body.items as { kind: string; name: string; version: string; active: boolean; sha256: string; manifest: { version: string } }[];
  assert.deepEqual(items.map((m) => [m.kind, m.name, m.version, m.active]).sort(), [
    ['classifier', 'classifier', 'random-small', true],
    ['segmenter', 'segmenter', 'random-small', true],
  ]);
  assert.equal(items[0].sha256, h.engine.models[items[0].name as 'segmenter' | 'classifier'].sha256);
  assert.equal(items[0].manifest.version, 'random-small');
});

test('every study read and write is in the audit log, and the chain verifies', async () => {
  const rows: { action: string; actor: string; role: string; study_id: string | null; request_id: string; outcome: string }[] = await h.db.ds.query(
    `SELECT action, actor, role, study_id, request_id, outcome FROM audit_log WHERE study_id = $1 ORDER BY seq`,
    [firstId],
  );
  const actions = rows.map((r) => `${r.action}:${r.actor}:${r.outcome}`);
  assert.equal(actions[0], 'study.create:ws-1:ok');
  assert.ok(actions.includes('study.create:ws-1:ok') && actions.filter((a) => a === 'study.create:ws-1:ok').length === 2, 'create and re-post');
  assert.ok(actions.includes('study.read:dr-1:ok'), "actions.includes('study.read:dr-1:ok')");
  assert.ok(actions.includes('study.read:ws-2:E_NOT_FOUND'), "actions.includes('study.read:ws-2:E_NOT_FOUND')");
  assert.equal(actions.filter((a) => a.startsWith('study.image.read:dr-1:ok')).length, 3);
  assert.ok(actions.includes('study.image.read:ws-1:E_FORBIDDEN'), 'denied image read linked to the study');
  for (const r of rows) assert.ok(r.request_id.length > 0, 'r.request_id.length > 0');
  // list reads record which studies were shown
  const shown: { detail: { studyIds: string[] } }[] = await h.db.ds.query(
    `SELECT detail FROM audit_log WHERE action = 'worklist.read' AND actor = 'dr-1' AND outcome = 'ok'`,
  );
  assert.ok(
    shown.some((r) => r.detail.studyIds.includes(firstId)),
    'the worklist read that showed the study is recorded',
  );

  const page = await h.http.get(`/v1/audit?studyId=${firstId}&limit=3`).set('Authorization', aud);
  assert.equal(page.status, 200);
  assert.equal(page.body.items.length, 3);
  assert.ok(page.body.nextCursor, 'page.body.nextCursor');
  const next = await h.http.get(`/v1/audit?studyId=${firstId}&limit=3&cursor=${page.body.nextCursor}`).set('Authorization', aud);
  assert.equal(next.body.items[0].action, rows[3].action);

  const v = await h.http.get('/v1/audit/verify').set('Authorization', aud);
  assert.equal(v.status, 200);
  assert.equal(v.body.ok, true);
  assert.equal(v.body.firstBroken, null);
  const [{ n }] = await h.db.ds.query('SELECT count(*)::int AS n FROM audit_log');
  // the verify request audits itself after counting
  assert.equal(v.body.checked, n - 1);
});

test('after tampering in SQL, GET /v1/audit/verify names the broken row', async () => {
  const [{ seq }] = await h.db.ds.query(`SELECT seq FROM audit_log WHERE action = 'review.create' AND outcome = 'ok'`);
  const su = await h.db.superuser();
  await su.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
  await su.query(`UPDATE audit_log SET detail = jsonb_set(detail, '{verdict}', '"agree"') WHERE seq = $1`, [seq]);
  await su.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
  const v = await h.http.get('/v1/audit/verify').set('Authorization', aud);
  assert.equal(v.body.ok, false);
  assert.equal(v.body.firstBroken.seq, String(seq));
  assert.equal(v.body.firstBroken.reason, 'hash_mismatch');
  // and the service account itself cannot rewrite it
  await assert.rejects(h.db.ds.query(`UPDATE audit_log SET outcome = 'ok' WHERE seq = $1`, [seq]), /append-only/);
  await assert.rejects(h.db.ds.query(`DELETE FROM audit_log WHERE seq = $1`, [seq]), /append-only/);
});
