/**
 * Issue 10's hostile-input rows, replayed over real HTTP against `cxr-triage serve` (a child
 * process) on real PostgreSQL. Each test names the row it pins; every one also checks that
 * the process is still up and answering.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import { chestDicom, encodeChestCr } from '../../src/data/simple-chest-dicom.js';
import { startServe, type ServeProcess } from '../support/serve-random.js';

let s: ServeProcess;
before(async () => {
  s = await startServe({ CXR_MAX_BODY_MB: '8' });
});
after(async () => {
  await s?.stop();
});

const study = (seed: number, size = 128) => Buffer.from(chestDicom({ size, seed }));

async function call(
  path: string,
  init: { method?: string; token?: string; type?: string; body?: Buffer | string | ReadableStream<Uint8Array>; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; text: string; headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  if (init.type) headers['Content-Type'] = init.type;
  const res = await fetch(`${s.url}${path}`, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // CSV, PNG or an empty body
  }
  return { status: res.status, body, text, headers: res.headers };
}

const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code?: string } | undefined)?.code;

async function assertUp(): Promise<void> {
  assert.ok(s.alive(), `the server process died:\n${s.stderr().slice(-2000)}`);
  assert.equal((await call('/healthz')).status, 200);
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const rows: { n: number }[] = await s.db.ds.query(sql, params);
  return rows[0].n;
}

test('row 1: a multipart/form-data body ending without its closing boundary is 400 E_BAD_REQUEST and the server stays up', async () => {
  const ws = s.token('workstation', 'ws-row1');
  const file = study(1);
  const bodies = [
    // the issue's case: headers, part of the file, no closing boundary
    Buffer.concat([
      Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.dcm"\r\nContent-Type: application/dicom\r\n\r\n'),
      file.subarray(0, 40),
    ]),
    // ends inside the part headers
    Buffer.from('--XyZ\r\nContent-Disposition: form-da'),
    // a whole file, no closing boundary
    Buffer.concat([Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.dcm"\r\n\r\n'), file]),
    // nothing but a preamble
    Buffer.from('no boundary here at all'),
  ];
  for (const body of bodies) {
    const r = await call('/v1/studies', { token: ws, type: 'multipart/form-data; boundary=XyZ', body });
    assert.equal(r.status, 400, r.text);
    assert.equal(code(r), 'E_BAD_REQUEST');
    await assertUp();
  }
  // a client that drops the connection mid-body leaves the server up too
  const { connect } = await import('node:net');
  const u = new URL(s.url);
  await new Promise<void>((resolve) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(
        `POST /v1/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ws}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 100000\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc`,
        () => setTimeout(() => sock.destroy(), 100),
      );
    });
    sock.on('close', () => resolve());
    sock.on('error', () => resolve());
  });
  await new Promise((r) => setTimeout(r, 200));
  await assertUp();
  assert.equal(await count(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-row1'`), 0);
});

test('row 4: a NUL character in a JSON string, a form field or a query value is 400 E_BAD_REQUEST before PostgreSQL sees it', async () => {
  const admin = s.token('admin', 'admin-row4');
  const auditor = s.token('auditor', 'aud-row4');
  const json = 'application/json';
  const cases: [string, Promise<Awaited<ReturnType<typeof call>>>][] = [
    [
      'client description',
      call('/v1/admin/clients', { token: admin, type: json, body: JSON.stringify({ id: 'ws-nul', role: 'workstation', description: 'a\u0000b' }) }),
    ],
    [
      'user display name',
      call('/v1/admin/users', { token: admin, type: json, body: JSON.stringify({ id: 'dr-nul', role: 'clinician', displayName: 'Dr \u0000' }) }),
    ],
    ['a JSON key', call('/v1/admin/users', { token: admin, type: json, body: '{"id":"dr-nul2","role":"clinician","x\\u0000":1}' })],
    [
      'client_id (JSON)',
      call('/v1/auth/token', { type: json, body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'ws\u0000', client_secret: 'x' }) }),
    ],
    [
      'client_id (form)',
      call('/v1/auth/token', { type: 'application/x-www-form-urlencoded', body: 'grant_type=client_credentials&client_id=ws%00&client_secret=x' }),
    ],
    ['web sign-in username (JSON)', call('/v1/auth/session', { type: json, body: '{"username":"a\\u0000b","password":"whatever-password"}' })],
    ['web sign-in username (form)', call('/v1/auth/session', { type: 'application/x-www-form-urlencoded', body: 'username=a%00b&password=x' })],
    // the name goes into the audit row: stored as U+FFFD it would no longer match its hash
    ['web sign-in, an unpaired surrogate', call('/v1/auth/session', { type: json, body: '{"username":"x\\ud800y","password":"whatever-password"}' })],
    [
      'HTTP Basic client id on DICOMweb',
      call('/dicomweb/studies', { headers: { Authorization: `Basic ${Buffer.from('a\u0000b:secret').toString('base64')}` } }),
    ],
    ['?actor=', call('/v1/audit?actor=a%00b', { token: auditor })],
    ['?model=', call('/v1/predictions?model=m%00', { token: auditor })],
    ['?action= (CSV)', call('/v1/predictions.csv?model=%00', { token: auditor })],
    ['a path parameter', call('/v1/admin/clients/ws%00x', { method: 'DELETE', token: admin })],
    ['a malformed query escape', call('/v1/audit?actor=%zz', { token: auditor })],
    ['an unpaired surrogate', call('/v1/admin/clients', { token: admin, type: json, body: '{"id":"ws-sur","role":"workstation","description":"\\ud800"}' })],
    [
      'an integer beyond 2^53',
      call('/v1/admin/clients', { token: admin, type: json, body: '{"id":"ws-big","role":"workstation","description":"x","n":123456789012345678901234}' }),
    ],
  ];
  for (const [what, p] of cases) {
    const r = await p;
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.equal(code(r), 'E_BAD_REQUEST', what);
  }
  // a review note needs a scored study to reach the point where the note is read
  const posted = await call('/v1/studies?wait=true', { token: s.token('workstation', 'ws-row4'), type: 'application/dicom', body: study(4) });
  assert.equal(posted.status, 200, posted.text);
  const id = posted.body.id as string;
  const review = await call(`/v1/studies/${id}/reviews`, {
    token: s.token('clinician', 'dr-row4'),
    type: json,
    body: JSON.stringify({ verdict: 'agree', note: 'fine\u0000' }),
  });
  assert.equal(review.status, 400, review.text);
  assert.equal(code(review), 'E_BAD_REQUEST');
  assert.equal(await count(`SELECT count(*)::int AS n FROM reviews WHERE study_id = $1`, [id]), 0);
  assert.equal(await count(`SELECT count(*)::int AS n FROM api_clients WHERE id IN ('ws-nul', 'ws-sur', 'ws-big')`), 0);
  // nothing of the refused sign-ins reached the audit log, whose chain still verifies
  const verify = await call('/v1/audit/verify', { token: auditor });
  assert.equal(verify.status, 200, verify.text);
  assert.equal(verify.body.ok, true, verify.text);
  await assertUp();
});

test('row 5: a 19-digit pagination cursor beyond bigint is 400 on the worklist, predictions and audit', async () => {
  const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const huge = '9999999999999999999';
  const cases: [string, string][] = [
    [`/v1/worklist?cursor=${cursor({ flagged: true, rank: 0.5, seq: huge })}`, s.token('clinician', 'dr-row5')],
    [`/v1/predictions?cursor=${cursor(huge)}`, s.token('auditor', 'aud-row5')],
    [`/v1/audit?cursor=${cursor(huge)}`, s.token('auditor', 'aud-row5')],
    [`/v1/worklist?limit=99999999999999999999`, s.token('clinician', 'dr-row5')],
  ];
  for (const [path, token] of cases) {
    const r = await call(path, { token });
    assert.equal(r.status, 400, `${path}: ${r.text}`);
    assert.equal(code(r), 'E_BAD_REQUEST');
  }
  // the largest bigint is still a valid cursor (an empty page, not an error)
  const max = await call(`/v1/audit?cursor=${cursor('9223372036854775807')}`, { token: s.token('auditor', 'aud-row5') });
  assert.equal(max.status, 200, max.text);
  await assertUp();
});

test('row 6: HTTP Basic on /v1/auth/token with a malformed % escape in the id is 400, never 500', async () => {
  for (const id of ['%zz', 'ws%', '%E0%A4%A', 'a%00']) {
    const r = await call('/v1/auth/token', {
      type: 'application/x-www-form-urlencoded',
      body: 'grant_type=client_credentials',
      headers: { Authorization: `Basic ${Buffer.from(`${id}:secret`).toString('base64')}` },
    });
    assert.equal(r.status, 400, `${id}: ${r.text}`);
    assert.equal(code(r), 'E_BAD_REQUEST');
  }
  await assertUp();
});

// ---- row 2: deflate bombs -------------------------------------------------------------

const MiB = 1024 * 1024;

/** An explicit-LE element header with a 4-byte length (OB/OW/UN). */
function longElement(group: number, element: number, vr: 'OB' | 'OW', length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  b.write(vr, 4, 'latin1');
  b.writeUInt32LE(length, 8);
  return b;
}

/**
 * A Deflated Explicit VR LE file of about `zeroMiB` KiB that inflates to `zeroMiB` MiB of zeros
 * placed `where` in a small valid image's dataset: built from full-flush deflate blocks, so
 * the bomb is made without ever holding its inflated size.
 */
function deflateBomb(seed: number, where: 'after-pixels' | 'pixel-length' | 'before-pixels', zeroMiB = 1000): Buffer {
  const size = 64;
  const pixels = new Uint16Array(size * size).map((_, i) => (i * 7 + seed) % 4096);
  const file = Buffer.from(encodeChestCr(pixels, size, { uidParts: ['bomb', seed], patientId: `BOMB${seed}` }, { transferSyntax: 'deflated-explicit-le' }));
  const start = (dicomParser.readPart10Header(file) as unknown as { position: number }).position;
  const dataset = inflateRawSync(file.subarray(start));
  const pixelTag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const at = dataset.lastIndexOf(pixelTag);
  assert.ok(at > 0, 'the test image has Pixel Data');
  let head: Buffer;
  let tail: Buffer;
  if (where === 'after-pixels') {
    head = Buffer.concat([dataset, longElement(0xfffc, 0xfffc, 'OB', zeroMiB * MiB)]);
    tail = Buffer.alloc(0);
  } else if (where === 'pixel-length') {
    head = Buffer.concat([dataset.subarray(0, at), longElement(0x7fe0, 0x0010, 'OW', zeroMiB * MiB)]);
    tail = Buffer.alloc(0);
  } else {
    head = Buffer.concat([dataset.subarray(0, at), longElement(0x0029, 0x1010, 'OB', zeroMiB * MiB)]);
    tail = dataset.subarray(at);
  }
  const flush = { finishFlush: zc.Z_FULL_FLUSH };
  const zeros = deflateRawSync(Buffer.alloc(MiB), flush);
  return Buffer.concat([file.subarray(0, start), deflateRawSync(head, flush), ...Array.from({ length: zeroMiB }, () => zeros), deflateRawSync(tail)]);
}

const storedFiles = () => (existsSync(s.dicomDir) ? readdirSync(s.dicomDir, { recursive: true }).filter((f) => String(f).endsWith('.dcm')) : []);

test('row 2: a 1 MB deflated file inflating to 1000 MiB is refused with 413 E_TOO_LARGE, memory bounded, nothing stored', async (t) => {
  const ws = s.token('workstation', 'ws-row2');
  // studies scored by earlier rows get their AI result objects stored in the background: let that finish first
  while ((await count(`SELECT count(*)::int AS n FROM derived_objects WHERE sha256 IS NULL AND build_error IS NULL`)) > 0)
    await new Promise((r) => setTimeout(r, 50));
  const filesBefore = storedFiles().length;
  const before = s.memory();
  for (const where of ['after-pixels', 'pixel-length', 'before-pixels'] as const) {
    const bomb = deflateBomb(20 + where.length, where);
    assert.ok(bomb.length < 1.2 * MiB, `the bomb is small (${bomb.length} bytes)`);
    const t0 = performance.now();
    const r = await call('/v1/studies', { token: ws, type: 'application/dicom', body: bomb });
    t.diagnostic(`${where}: ${bomb.length} bytes -> ${r.status} ${code(r)} in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(r.status, 413, r.text);
    assert.equal(code(r), 'E_TOO_LARGE');
  }
  // three at once, by STOW-RS and by plain POST: none stored, every refusal audited
  const auditBefore = await count(`SELECT count(*)::int AS n FROM audit_log WHERE actor = 'ws-row2'`);
  const three = await Promise.all(
    [1, 2, 3].map((i) => call('/v1/studies', { token: ws, type: 'application/dicom', body: deflateBomb(30 + i, i === 2 ? 'before-pixels' : 'after-pixels') })),
  );
  assert.deepEqual(
    three.map((r) => [r.status, code(r)]),
    [
      [413, 'E_TOO_LARGE'],
      [413, 'E_TOO_LARGE'],
      [413, 'E_TOO_LARGE'],
    ],
  );
  const after = s.memory();
  t.diagnostic(`RSS ${before.rssKiB} KiB -> ${after.rssKiB} KiB; peak ${before.peakKiB} -> ${after.peakKiB} KiB`);
  // each bomb would take 1000 MiB to hold; the bound is the declared image + 16 MiB slack
  assert.ok(after.peakKiB - before.peakKiB < 300 * 1024, `peak RSS grew by ${after.peakKiB - before.peakKiB} KiB`);
  assert.equal(storedFiles().length, filesBefore, 'no file stored');
  assert.equal(await count(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-row2'`), 0);
  assert.equal((await count(`SELECT count(*)::int AS n FROM audit_log WHERE actor = 'ws-row2' AND outcome = 'E_TOO_LARGE'`)) - auditBefore, 3);
  await assertUp();
});

// ---- rows 10-13 -----------------------------------------------------------------------

const BOUNDARY = 'cxr-hostile-boundary';
function related(parts: Buffer[], boundary = BOUNDARY, partType: string | null = 'application/dicom'): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\n${partType ? `Content-Type: ${partType}\r\n` : ''}\r\n`), p, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}
const stowType = (boundary = BOUNDARY) => `multipart/related; type="application/dicom"; boundary=${boundary}`;
type Item = Record<string, { vr: string; Value?: unknown[] }>;

test("row 10: workstation B posting the file workstation A posted learns nothing of A's study", async () => {
  const file = study(10);
  const a = await call('/v1/studies?wait=true', { token: s.token('workstation', 'ws-a'), type: 'application/dicom', body: file });
  assert.equal(a.status, 200, a.text);
  const id = a.body.id as string;
  const b = await call('/v1/studies', { token: s.token('workstation', 'ws-b'), type: 'application/dicom', body: file });
  assert.equal(b.status, 409, b.text);
  assert.equal(code(b), 'E_CONFLICT');
  for (const secret of [id, 'ws-a', 'probability', 'submittedBy']) assert.ok(!b.text.includes(secret), `B's answer mentions ${secret}`);
  const bStow = await call('/dicomweb/studies', { token: s.token('workstation', 'ws-b'), type: stowType(), body: related([file]) });
  assert.equal(bStow.status, 409, bStow.text);
  assert.ok(!bStow.text.includes(id) && !bStow.text.includes('/v1/studies/'), "no RetrieveURL of A's study");
  assert.equal(((bStow.body['00081198'] as { Value: Item[] }).Value[0]['00081197'].Value ?? [])[0], 0x0111);
  // A re-posting its own file still gets its study back (idempotent retry)
  const again = await call('/v1/studies', { token: s.token('workstation', 'ws-a'), type: 'application/dicom', body: file });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, id);
  assert.equal(await count(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-b'`), 0);
});

test('row 11: a STOW-RS request of 20,000 one-byte parts is refused whole (413), with one audit row and nothing stored', async () => {
  const ws = s.token('workstation', 'ws-row11');
  const parts = Array.from({ length: 20_000 }, () => Buffer.from('x'));
  const r = await call('/dicomweb/studies', { token: ws, type: stowType(), body: related(parts) });
  assert.equal(r.status, 413, r.text);
  assert.equal(code(r), 'E_PAYLOAD_TOO_LARGE');
  assert.match((r.body.error as { message: string }).message, /more than 256 parts/);
  assert.equal(await count(`SELECT count(*)::int AS n FROM audit_log WHERE actor = 'ws-row11'`), 1);
  // 256 parts are still taken, each answered on its own
  const ok = await call('/dicomweb/studies', { token: ws, type: stowType(), body: related(Array.from({ length: 256 }, () => Buffer.from('x'))) });
  assert.equal(ok.status, 409);
  assert.equal((ok.body['00081198'] as { Value: Item[] }).Value.length, 256);
  assert.equal(await count(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-row11'`), 0);
  await assertUp();
});

/** Rewrites one UI element's value in an Explicit VR LE file (the length field is 2 bytes). */
function withUid(file: Uint8Array, group: number, element: number, value: string): Buffer {
  const b = Buffer.from(file);
  const tag = Buffer.from([group & 0xff, group >> 8, element & 0xff, element >> 8, 0x55, 0x49]);
  const at = b.indexOf(tag, 132);
  assert.ok(at > 0, 'element present');
  const len = b.readUInt16LE(at + 6);
  const v = Buffer.from(value.length % 2 ? `${value}\0` : value, 'latin1');
  const head = Buffer.from(b.subarray(0, at + 8));
  head.writeUInt16LE(v.length, at + 6);
  return Buffer.concat([head, v, b.subarray(at + 8 + len)]);
}

test('row 12: SOP, Study and Series Instance UIDs with quotes or over 64 characters are refused with E_MALFORMED', async () => {
  const ws = s.token('workstation', 'ws-row12');
  const base = study(12, 64);
  const bad = [
    withUid(base, 0x0008, 0x0018, '1.2.3"4'),
    withUid(base, 0x0020, 0x000d, `1.${'2'.repeat(3000)}`),
    withUid(base, 0x0020, 0x000e, `1.${'2'.repeat(63)}`),
    withUid(base, 0x0008, 0x0018, "1.2.3';DROP"),
  ];
  for (const file of bad) {
    const r = await call('/v1/studies', { token: ws, type: 'application/dicom', body: file });
    assert.equal(r.status, 422, r.text);
    assert.equal(code(r), 'E_MALFORMED');
    assert.match((r.body.error as { message: string }).message, /is not a UID/);
  }
  const ok = await call('/v1/studies', { token: ws, type: 'application/dicom', body: withUid(base, 0x0008, 0x0018, `1.${'2'.repeat(62)}`) });
  assert.equal(ok.status, 202, '64 characters is a UID');
  assert.equal(await count(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-row12'`), 1);
});

test("row 13: the CSV export's audit row names the studies it exported", async () => {
  const posted = await call('/v1/studies?wait=true', { token: s.token('workstation', 'ws-row13'), type: 'application/dicom', body: study(13) });
  assert.equal(posted.status, 200, posted.text);
  const r = await call('/v1/predictions.csv', { token: s.token('auditor', 'aud-row13') });
  assert.equal(r.status, 200);
  const rows: { detail: { studyIds: string[]; count: number } }[] = await s.db.ds.query(
    `SELECT detail FROM audit_log WHERE actor = 'aud-row13' AND action = 'predictions.export'`,
  );
  assert.equal(rows.length, 1);
  assert.ok(rows[0].detail.studyIds.includes(posted.body.id as string));
  assert.equal(rows[0].detail.studyIds.length, rows[0].detail.count);
  assert.equal(rows[0].detail.count, r.text.trim().split('\n').length - 1);
});

// ---- issue 11 item 3: STOW-RS as real clients send it -----------------------------------

test('STOW-RS takes what real clients send: a 73-character boundary, unquoted or absent type, type with a transfer-syntax, part types with parameters, a chunked body', async () => {
  const ws = s.token('workstation', 'ws-liberal');
  const orthanc = `${'-'.repeat(9)}${'a1b2c3d4e5'.repeat(6)}abcd`; // 73 characters, as Orthanc 1.10 sends
  assert.equal(orthanc.length, 73);
  const variants: { type: string; body: Buffer; chunked?: boolean }[] = [
    { type: `multipart/related; type="application/dicom"; boundary=${orthanc}`, body: related([study(301)], orthanc) },
    { type: `multipart/related; type=application/dicom; boundary="${orthanc}"`, body: related([study(302)], orthanc) },
    { type: `Multipart/Related; boundary=${BOUNDARY}`, body: related([study(303)]) },
    {
      type: `multipart/related; type="application/dicom; transfer-syntax=1.2.840.10008.1.2.1"; boundary=${BOUNDARY}`,
      body: related([study(304)], BOUNDARY, 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1'),
    },
    { type: `multipart/related;type="Application/DICOM";boundary="${BOUNDARY}"`, body: related([study(305)], BOUNDARY, null) },
    { type: stowType(), body: related([study(306), study(307)]), chunked: true },
  ];
  for (const v of variants) {
    let body: Buffer | ReadableStream<Uint8Array> = v.body;
    if (v.chunked) {
      const pieces = [v.body.subarray(0, 1000), v.body.subarray(1000, 5000), v.body.subarray(5000)];
      body = new ReadableStream({
        pull(ctl) {
          const p = pieces.shift();
          if (p) ctl.enqueue(new Uint8Array(p));
          else ctl.close();
        },
      });
    }
    const res = await fetch(`${s.url}/dicomweb/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ws}`, 'Content-Type': v.type },
      body,
      ...(v.chunked ? { duplex: 'half' } : {}),
    } as RequestInit);
    const text = await res.text();
    assert.equal(res.status, 200, `${v.type}: ${text}`);
    assert.ok(JSON.parse(text)['00081199'].Value.length >= 1);
  }
  assert.equal(await count(`SELECT count(*)::int AS n FROM studies WHERE submitted_by = 'ws-liberal'`), 7);
});

// ---- issue 11 item 5: refusals are logged and counted ------------------------------------

test('every refused request logs one structured line (code, client, route) and counts in /metrics by code; every request has an access line without patient data', async () => {
  const ws = s.token('workstation', 'ws-logs');
  const r = await call('/v1/studies', { token: ws, type: 'application/dicom', body: Buffer.from('not dicom') });
  assert.equal(code(r), 'E_NOT_DICOM');
  const requestId = r.headers.get('x-request-id');
  // the lines are written when the response has finished on the server's side, which may be after
  // this client has read it, and reach this process through a pipe: wait for them, not a fixed time
  const linesOf = () => s.logLines().filter((l) => l.requestId === requestId);
  const end = Date.now() + 60_000;
  while (!(linesOf().some((l) => l.msg === 'request') && linesOf().some((l) => l.msg === 'request refused'))) {
    assert.ok(Date.now() < end, `the request's log lines: ${JSON.stringify(linesOf())}`);
    await new Promise((res) => setTimeout(res, 20));
  }
  const lines = linesOf();
  const refused = lines.filter((l) => l.msg === 'request refused');
  assert.equal(refused.length, 1, JSON.stringify(lines));
  assert.equal(refused[0].code, 'E_NOT_DICOM');
  assert.equal(refused[0].client, 'ws-logs');
  assert.equal(refused[0].route, '/v1/studies');
  const access = lines.filter((l) => l.msg === 'request');
  assert.equal(access.length, 1);
  assert.equal(access[0].status, 422);
  assert.equal(typeof access[0].ms, 'number');
  const metrics = await call('/metrics');
  assert.match(metrics.text, /cxr_http_refusals_total\{code="E_NOT_DICOM",route="\/v1\/studies"\} [1-9]/);
  assert.match(metrics.text, /cxr_http_refusals_total\{code="E_BAD_REQUEST",route="\/v1\/studies"\} [1-9]/);
  // the patient ids of the studies posted in this file never reach the log
  assert.ok(!/LAT\d+|BOMB\d+/.test(s.stderr()), 'no patient id in the log');
});
