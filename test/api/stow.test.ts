/** DICOMweb STOW-RS: several instances per request, each stored or refused on its own. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { closeServer, listen } from '../../src/app/server.js';
import { splitMultipart, parseContentType } from '../../src/api/multipart.js';
import { FAILURE_REASON } from '../../src/api/routes/stow.js';
import { readMetadata } from '../../src/dicom/index.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';

let h: Harness;
let ws: string;
before(async () => {
  h = await startHarness();
  ws = `Bearer ${h.token('workstation', 'ws-stow')}`;
});
after(async () => {
  await h?.close();
});

const BOUNDARY = 'cxr-boundary-7d1f';

function related(parts: { body: Buffer; type?: string | null }[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [Buffer.from('preamble is ignored\r\n')];
  for (const p of parts) {
    const type = p.type === undefined ? 'application/dicom' : p.type;
    chunks.push(Buffer.from(`--${boundary}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`), p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const stow = (body: Buffer, contentType = `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`) =>
  h.http.post('/dicomweb/studies').set('Authorization', ws).set('Content-Type', contentType).set('Accept', 'application/dicom+json').send(body);

type Item = Record<string, { vr: string; Value?: unknown[] }>;
const uid = (item: Item) => item['00081155']?.Value?.[0];

test('splitMultipart: parts with and without headers, transport padding, preamble and epilogue', () => {
  const body = Buffer.from('pre\r\n--b  \r\nContent-Type: application/dicom\r\nX-A: 1\r\n\r\nAAA\r\n--b\r\n\r\nB\r\nB\r\n--b--\r\nepilogue');
  const parts = splitMultipart(body, 'b');
  assert.equal(parts.length, 2);
  assert.equal(parts[0].headers.get('content-type'), 'application/dicom');
  assert.equal(parts[0].headers.get('x-a'), '1');
  assert.equal(parts[0].body.toString(), 'AAA');
  assert.equal(parts[1].headers.size, 0);
  assert.equal(parts[1].body.toString(), 'B\r\nB');
  assert.throws(() => splitMultipart(Buffer.from('--b\r\n\r\nno end'), 'b'), /closing boundary/);
  assert.throws(() => splitMultipart(Buffer.from('nothing here'), 'b'), /opening boundary/);
  assert.deepEqual(parseContentType('multipart/related; type="application/dicom"; boundary=abc')?.params.get('type'), 'application/dicom');
});

test('three good instances and a bad one: 202, three referenced, one failed with its reason and code', async () => {
  const good = [study(201), study(202), study(203)];
  const res = await stow(related([{ body: good[0] }, { body: Buffer.from('not dicom at all') }, { body: good[1] }, { body: good[2] }]));
  assert.equal(res.status, 202);
  assert.match(res.headers['content-type'], /^application\/dicom\+json/);
  const stored = res.body['00081199'].Value as Item[];
  const failed = res.body['00081198'].Value as Item[];
  assert.deepEqual(
    stored.map(uid),
    good.map((b) => readMetadata(b).sopInstanceUid),
  );
  for (const [k, item] of stored.entries()) {
    assert.equal(item['00081150'].Value?.[0], '1.2.840.10008.5.1.4.1.1.1');
    // RetrieveURL is the instance's WADO-RS URL
    const m = readMetadata(good[k]);
    assert.match(
      String(item['00081190'].Value?.[0]),
      new RegExp(`^http://127\\.0\\.0\\.1:\\d+/dicomweb/studies/${m.studyInstanceUid}/series/${m.seriesInstanceUid}/instances/${m.sopInstanceUid}$`),
    );
  }
  assert.equal(failed.length, 1);
  assert.deepEqual(failed[0]['00081197'], { vr: 'US', Value: [FAILURE_REASON.cannotUnderstand] });
  assert.match(String(failed[0]['00000902'].Value?.[0]), /^E_NOT_DICOM/);
  for (const item of stored) {
    const [row] = await h.db.ds.query('SELECT id FROM studies WHERE sop_instance_uid = $1', [uid(item)]);
    await waitScored(h, row.id);
  }
  const rows: { n: number }[] = await h.db.ds.query(
    `SELECT count(*)::int AS n FROM predictions p JOIN studies s ON s.id = p.study_id WHERE s.submitted_by = 'ws-stow'`,
  );
  assert.equal(rows[0].n, 3);
  const audit: { outcome: string; n: number }[] = await h.db.ds.query(
    `SELECT outcome, count(*)::int AS n FROM audit_log WHERE actor = 'ws-stow' AND action = 'study.create' GROUP BY outcome ORDER BY outcome`,
  );
  assert.deepEqual(audit, [
    { outcome: 'E_NOT_DICOM', n: 1 },
    { outcome: 'ok', n: 3 },
  ]);
});

test('all stored: 200; re-sent instances are referenced again, not duplicated', async () => {
  const res = await stow(related([{ body: study(201) }, { body: study(204) }]));
  assert.equal(res.status, 200);
  assert.equal(res.body['00081198'], undefined);
  assert.equal((res.body['00081199'].Value as Item[]).length, 2);
  const rows: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-stow'`);
  assert.equal(rows[0].n, 4);
});

test('nothing stored: 409 with every failure listed, including a wrong part type and a conflicting re-send', async () => {
  const tampered = study(202);
  tampered[tampered.length - 1] ^= 0xff;
  const res = await stow(related([{ body: Buffer.from('garbage') }, { body: study(205), type: 'image/jpeg' }, { body: tampered }]));
  assert.equal(res.status, 409);
  const failed = res.body['00081198'].Value as Item[];
  assert.deepEqual(
    failed.map((f) => f['00081197'].Value?.[0]),
    [FAILURE_REASON.cannotUnderstand, FAILURE_REASON.cannotUnderstand, FAILURE_REASON.duplicateSopInstance],
  );
  assert.equal(uid(failed[2]), readMetadata(tampered).sopInstanceUid);
  const rows: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE sop_instance_uid = $1`, [
    readMetadata(study(205)).sopInstanceUid,
  ]);
  assert.equal(rows[0].n, 0);
});

test('a full inference queue refuses every instance with Out of Resources and 503', async () => {
  // The queue's depth is the number of accepted-but-unscored studies in PostgreSQL, shared by
  // every process: rows without a job fill it the way a stalled fleet of workers would.
  // A full queue's worth on top of whatever is waiting: studies of earlier tests may finish
  // scoring meanwhile, and the queue must stay full regardless.
  const fill = h.settings.queueSize;
  await h.db.ds.query(
    `INSERT INTO studies (id, study_instance_uid, series_instance_uid, sop_instance_uid, sha256, size_bytes, submitted_by, received_at)
     SELECT gen_random_uuid(), '1.9', '1.9.1', '1.9.1.' || i, repeat('a', 64), 1, 'ws-filler', now() FROM generate_series(1, $1) i`,
    [fill],
  );
  // the queue filled while the body was read (the check before reading it passed): each instance meets the full queue
  const service = h.parts.service;
  const early = service.refuseIfQueueFull;
  service.refuseIfQueueFull = async () => {};
  try {
    const res = await stow(related([{ body: study(206) }]));
    service.refuseIfQueueFull = early;
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '5');
    assert.equal((res.body['00081198'].Value as Item[])[0]['00081197'].Value?.[0], FAILURE_REASON.outOfResources);
    const single = await h.http.post('/v1/studies').set('Authorization', ws).set('Content-Type', 'application/dicom').send(study(206));
    assert.equal(single.status, 503);
    assert.equal(single.body.error.code, 'E_QUEUE_FULL');
  } finally {
    service.refuseIfQueueFull = early;
    await h.db.ds.query(`DELETE FROM studies WHERE submitted_by = 'ws-filler'`);
  }
  const after = await h.http.post('/v1/studies').set('Authorization', ws).set('Content-Type', 'application/dicom').send(study(206));
  assert.equal(after.status, 202);
});

test('against a full queue a STOW-RS request is refused before its body is read: 503 Out of Resources with Retry-After and Connection: close', async () => {
  const fill = h.settings.queueSize;
  await h.db.ds.query(
    `INSERT INTO studies (id, study_instance_uid, series_instance_uid, sop_instance_uid, sha256, size_bytes, submitted_by, received_at)
     SELECT gen_random_uuid(), '1.9', '1.9.1', '1.9.2.' || i, repeat('a', 64), 1, 'ws-filler-unread', now() FROM generate_series(1, $1) i`,
    [fill],
  );
  const { server, url } = await listen(h.parts.app, 0, '127.0.0.1');
  try {
    // headers promising a body the size limit admits, and not one byte of it sent: an answer can only come from before the body
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error('no answer before the body was sent'));
      }, 5000);
      const req = request(`${url}/dicomweb/studies`, {
        method: 'POST',
        headers: {
          Authorization: ws,
          'Content-Type': `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`,
          Accept: 'application/dicom+json',
          'Content-Length': String(h.settings.maxBodyBytes),
        },
      });
      req.on('response', (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    let text = '';
    for await (const chunk of res) text += chunk;
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^application\/dicom\+json/);
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(res.headers.connection, 'close');
    // no instance was read, so none is named: the refusal is in Other Failures Sequence (0008,119A)
    const body = JSON.parse(text) as Record<string, { vr: string; Value: Item[] }>;
    assert.equal(body['00081198'], undefined);
    const [other] = body['0008119A'].Value;
    assert.equal(other['00081197'].Value?.[0], FAILURE_REASON.outOfResources);
    assert.match(String(other['00000902'].Value?.[0]), /^E_QUEUE_FULL: /);
  } finally {
    await closeServer(server, 1000);
    await h.db.ds.query(`DELETE FROM studies WHERE submitted_by = 'ws-filler-unread'`);
  }
  const [row] = await h.db.ds.query(`SELECT outcome, detail FROM audit_log WHERE action = 'study.create' AND actor = 'ws-stow' ORDER BY seq DESC LIMIT 1`);
  assert.equal(row.outcome, 'E_QUEUE_FULL');
  assert.equal(row.detail.via, 'stow-rs');
});

test('wrong media types are 415, broken framing 400, and a non-workstation 403', async () => {
  assert.equal((await stow(related([{ body: study(207) }]), `multipart/related; type="application/dicom+json"; boundary=${BOUNDARY}`)).status, 415);
  assert.equal((await stow(related([{ body: study(207) }]), 'application/dicom')).status, 415);
  assert.equal((await stow(related([{ body: study(207) }]), 'multipart/related; type="application/dicom"')).status, 400);
  assert.equal((await stow(Buffer.from(`--${BOUNDARY}\r\n\r\nunterminated`))).status, 400);
  const clin = await h.http
    .post('/dicomweb/studies')
    .set('Authorization', `Bearer ${h.token('clinician')}`)
    .set('Content-Type', 'multipart/related; type="application/dicom"; boundary=x')
    .send('--x--');
  assert.equal(clin.status, 403);
});

test('WADO-RS returns a stored instance byte for byte at its RetrieveURL; another sender gets 404', async () => {
  const bytes = study(231);
  const res = await stow(related([{ body: bytes }]));
  assert.equal(res.status, 200);
  const url = new URL(String((res.body['00081199'].Value as Item[])[0]['00081190'].Value?.[0]));
  const m = readMetadata(bytes);
  assert.equal(res.body['00081190'].Value[0], `${url.origin}/dicomweb/studies/${m.studyInstanceUid}`);
  const got = await h.http
    .get(url.pathname)
    .set('Authorization', ws)
    .buffer(true)
    .parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
  assert.equal(got.status, 200);
  const ct = parseContentType(got.headers['content-type']);
  assert.equal(ct?.type, 'multipart/related');
  const parts = splitMultipart(got.body as Buffer, ct!.params.get('boundary')!);
  assert.equal(parts.length, 1);
  assert.ok(parts[0].body.equals(bytes));
  const other = await h.http.get(url.pathname).set('Authorization', `Bearer ${h.token('workstation', 'ws-other')}`);
  assert.equal(other.status, 404);
});

test('STOW-RS to /dicomweb/studies/{uid} refuses an instance of another study; HTTP Basic with a client id and secret is accepted', async () => {
  const { createClient } = await import('../../src/service/clients.js');
  const { secret } = await createClient(h.db.ds, { id: 'pacs-fwd', role: 'workstation', description: '', createdBy: 'test' }, async () => {});
  const basic = `Basic ${Buffer.from(`pacs-fwd:${secret}`).toString('base64')}`;
  const mine = study(232);
  const other = study(233);
  const target = readMetadata(mine).studyInstanceUid;
  const res = await h.http
    .post(`/dicomweb/studies/${target}`)
    .set('Authorization', basic)
    .set('Content-Type', `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`)
    .send(related([{ body: mine }, { body: other }]));
  assert.equal(res.status, 202);
  assert.deepEqual((res.body['00081199'].Value as Item[]).map(uid), [readMetadata(mine).sopInstanceUid]);
  const failed = res.body['00081198'].Value as Item[];
  assert.deepEqual(failed.map(uid), [readMetadata(other).sopInstanceUid]);
  assert.match(String(failed[0]['00000902'].Value?.[0]), /^E_BAD_REQUEST/);
  const [row] = await h.db.ds.query('SELECT submitted_by FROM studies WHERE sop_instance_uid = $1', [readMetadata(mine).sopInstanceUid]);
  assert.equal(row.submitted_by, 'pacs-fwd');
  const wrong = await h.http
    .post('/dicomweb/studies')
    .set('Authorization', `Basic ${Buffer.from('pacs-fwd:nope').toString('base64')}`)
    .set('Content-Type', `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`)
    .send(related([{ body: study(234) }]));
  assert.equal(wrong.status, 401);
  assert.match(String(wrong.headers['www-authenticate']), /Basic/);
  // Basic is for DICOMweb routes only
  const elsewhere = await h.http.get('/v1/worklist').set('Authorization', basic);
  assert.equal(elsewhere.status, 401);
});
