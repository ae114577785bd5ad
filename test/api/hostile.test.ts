/**
 * Issue 10's hostile-input rows, replayed over real HTTP against `cxr-triage serve` (a child
 * process) on real PostgreSQL. Each test names the row it pins; every one also checks that
 * the process is still up and answering.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chestDicom } from '../../bench/latency-dicom.js';
import { startServe, type ServeProcess } from './serve-process.js';

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
