/**
 * Seeded HTTP fuzzing of `cxr-triage serve` on real PostgreSQL (issue 10): mutated DICOM,
 * multipart and JSON bodies, odd headers and query strings, and a few raw malformed requests.
 * Client mistakes must never be a 5xx (503 E_QUEUE_FULL is load, not a mistake), the process
 * must stay up, and its memory must stay bounded. A failure names the seed and the request,
 * so `CXR_FUZZ_SEED=<seed>` replays it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { startServe, type ServeProcess } from '../support/serve-random.js';

const SEED = Number(process.env.CXR_FUZZ_SEED ?? 20261201);
const ITERATIONS = Number(process.env.CXR_FUZZ_ITERATIONS ?? 200);
const CONCURRENCY = 4;
/** generous: the server idles around 300-500 MiB; a leak or a bomb would pass this */
const RSS_BOUND_KIB = 1536 * 1024;

let s: ServeProcess;
before(async () => {
  s = await startServe({ CXR_MAX_BODY_MB: '4', CXR_QUEUE_SIZE: '32' });
});
after(async () => {
  await s?.stop();
});

/** xorshift32: the same seed gives the same requests on every machine. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const WEIRD_STRINGS = [
  '',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff x',
  '%zz',
  '%',
  '%00',
  '%E0%A4%A',
  "'; DROP TABLE studies; --",
  '"quoted"',
  '9999999999999999999',
  '-1',
  '1e309',
  'NaN',
  '0000-01-01',
  '275760-09-13',
  '2026-13-45',
  '../../etc/passwd',
  '😀',
  'x'.repeat(5000),
  '\r\nX-Injected: 1',
];

function weirdString(r: Rng): string {
  if (r.next() < 0.6) return r.pick(WEIRD_STRINGS);
  return Array.from({ length: r.int(40) }, () => String.fromCharCode(r.int(r.next() < 0.8 ? 128 : 0x10000))).join('');
}

/** encodeURIComponent, except that a lone surrogate goes out as its WTF-8 bytes (what a hostile client can send). */
function enc(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return [...v].map((ch) => (/[\ud800-\udfff]/.test(ch) ? '%ED%A0%80' : encodeURIComponent(ch))).join('');
  }
}

function weirdJson(r: Rng, depth = 0): unknown {
  const k = r.int(depth > 3 ? 4 : 7);
  if (k === 0) return weirdString(r);
  if (k === 1) return r.pick([0, -1, 1.5, 2 ** 53 + 2, -(2 ** 63), 1e308, 1.2345678901234568e29]);
  if (k === 2) return r.pick([true, false, null]);
  if (k === 3) return r.pick(['agree', 'disagree', 'workstation', 'admin', 'client_credentials', 'password']);
  if (k === 4) return Array.from({ length: r.int(4) }, () => weirdJson(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = r.int(5); i > 0; i--)
    o[
      r.next() < 0.7
        ? r.pick(['id', 'role', 'description', 'displayName', 'password', 'verdict', 'note', 'grant_type', 'client_id', 'client_secret', 'username'])
        : weirdString(r)
    ] = weirdJson(r, depth + 1);
  return o;
}

function mutate(r: Rng, base: Buffer): Buffer {
  const b = Buffer.from(base);
  switch (r.int(6)) {
    case 0: // flip bytes
      for (let i = 1 + r.int(16); i > 0; i--) b[r.int(b.length)] ^= 1 << r.int(8);
      return b;
    case 1: // truncate
      return b.subarray(0, r.int(b.length));
    case 2: // a random 16/32-bit length field somewhere after the preamble
      if (b.length > 140) {
        const at = 132 + r.int(Math.min(b.length - 136, 2000));
        if (r.next() < 0.5) b.writeUInt32LE(r.pick([0xffffffff, 0x7fffffff, r.int(2 ** 32)]), at);
        else b.writeUInt16LE(r.int(65536), at);
      }
      return b;
    case 3: // insert garbage
      {
        const at = r.int(b.length);
        return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256))), b.subarray(at)]);
      }
    case 4: // duplicate a slice
      {
        const at = r.int(b.length);
        return Buffer.concat([b, b.subarray(at, at + r.int(4096))]);
      }
    default:
      return b;
  }
}

interface FuzzRequest {
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** sent on a raw socket, exactly these bytes */
  raw?: Buffer;
}

const ROLE_OF_GET: Record<string, 'workstation' | 'clinician' | 'auditor' | 'admin'> = {
  '/v1/worklist': 'clinician',
  '/v1/predictions': 'auditor',
  '/v1/predictions.csv': 'auditor',
  '/v1/audit': 'auditor',
  '/v1/models': 'auditor',
  '/v1/admin/clients': 'admin',
  '/v1/studies/x': 'clinician',
  '/healthz': 'clinician',
};
const ROUTES_GET = Object.keys(ROLE_OF_GET);
const ROLE_OF_POST: Record<string, 'workstation' | 'clinician' | 'auditor' | 'admin'> = {
  '/v1/auth/token': 'workstation',
  '/v1/admin/clients': 'admin',
  '/v1/admin/users': 'admin',
};
const QUERY_NAMES = ['cursor', 'limit', 'from', 'to', 'model', 'actor', 'action', 'studyId', 'flagged', 'decision', 'reviewed', 'status', 'agreement', 'wait'];

function makeRequest(
  r: Rng,
  i: number,
  bases: Buffer[],
  token: (role: 'workstation' | 'clinician' | 'auditor' | 'admin') => string,
  studyId: string,
): FuzzRequest {
  const dicom = () => mutate(r, r.pick(bases));
  type Role = 'workstation' | 'clinician' | 'auditor' | 'admin';
  // mostly the route's own role, so that most requests get past the role check to the input
  const auth = (role?: Role) => {
    const p = r.next();
    if (p < 0.7 && role) return `Bearer ${token(role)}`;
    if (p < 0.8) return `Bearer ${token(r.pick(['workstation', 'clinician', 'auditor', 'admin'] as const))}`;
    if (p < 0.85) return `Bearer ${weirdString(r).replace(/[^\x21-\x7e]/g, 'a')}`;
    if (p < 0.95) return `Basic ${Buffer.from(`${weirdString(r)}:${weirdString(r)}`).toString('base64')}`;
    return 'Digest x';
  };
  const kind = r.int(9);
  const boundary = r.pick(['b', 'x'.repeat(73), 'cxr-fuzz-boundary', '----=_Part_0.1']);
  switch (kind) {
    case 0:
      return {
        what: `${i}: POST /v1/studies mutated DICOM`,
        method: 'POST',
        path: r.next() < 0.2 ? '/v1/studies?wait=true' : '/v1/studies',
        headers: { Authorization: auth('workstation'), 'Content-Type': 'application/dicom' },
        body: dicom(),
      };
    case 1: {
      const file = dicom();
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.dcm"\r\nContent-Type: application/dicom\r\n\r\n`),
        file,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      return {
        what: `${i}: POST /v1/studies multipart/form-data`,
        method: 'POST',
        path: '/v1/studies',
        headers: { Authorization: auth('workstation'), 'Content-Type': `multipart/form-data; boundary=${boundary}` },
        body: r.next() < 0.6 ? mutate(r, body) : body,
      };
    }
    case 2: {
      const parts = Array.from({ length: 1 + r.int(3) }, () =>
        Buffer.concat([
          Buffer.from(
            `--${boundary}\r\nContent-Type: ${r.pick(['application/dicom', 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1', 'image/jpeg', ''])}\r\n\r\n`,
          ),
          dicom(),
          Buffer.from('\r\n'),
        ]),
      );
      const body = Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]);
      const type = r.pick([
        `multipart/related; type="application/dicom"; boundary=${boundary}`,
        `multipart/related; boundary="${boundary}"`,
        `multipart/related; type=application/dicom+xml; boundary=${boundary}`,
        'multipart/related',
        `multipart/related; boundary=${weirdString(r).replace(/[^\x20-\x7e]/g, '')}`,
      ]);
      return {
        what: `${i}: POST /dicomweb/studies`,
        method: 'POST',
        path: '/dicomweb/studies',
        headers: { Authorization: auth('workstation'), 'Content-Type': type },
        body: r.next() < 0.5 ? mutate(r, body) : body,
      };
    }
    case 3: {
      const path = r.pick(['/v1/auth/token', '/v1/admin/clients', '/v1/admin/users', `/v1/studies/${studyId}/reviews`]);
      ROLE_OF_POST[path] ??= 'clinician';
      const text = JSON.stringify(weirdJson(r));
      const body = r.next() < 0.2 ? text.slice(0, r.int(text.length + 1)) : text;
      const type = r.pick(['application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', 'text/plain', '']);
      return {
        what: `${i}: POST ${path} JSON`,
        method: 'POST',
        path,
        headers: { Authorization: auth(ROLE_OF_POST[path]), ...(type ? { 'Content-Type': type } : {}) },
        body,
      };
    }
    case 4: {
      const form = Array.from(
        { length: 1 + r.int(4) },
        () =>
          `${encodeURIComponent(r.pick(['grant_type', 'client_id', 'client_secret', 'username', 'password']))}=${r.next() < 0.5 ? enc(weirdString(r)) : weirdString(r).replace(/[&\s]/g, '')}`,
      ).join('&');
      return {
        what: `${i}: POST /v1/auth/token form`,
        method: 'POST',
        path: '/v1/auth/token',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(r.next() < 0.5 ? { Authorization: auth() } : {}) },
        body: form,
      };
    }
    case 5:
    case 6: {
      const q = Array.from({ length: 1 + r.int(4) }, () => {
        const name = r.next() < 0.9 ? r.pick(QUERY_NAMES) : weirdString(r);
        let value = weirdString(r);
        if (name === 'cursor' && r.next() < 0.5) value = Buffer.from(JSON.stringify(weirdJson(r))).toString('base64url');
        return `${enc(name)}=${r.next() < 0.7 ? enc(value) : value.replace(/[#&\s]/g, '')}`;
      }).join('&');
      const route = r.pick(ROUTES_GET);
      const path = `${route}?${q}`;
      return { what: `${i}: GET ${path.slice(0, 120)}`, method: 'GET', path, headers: { Authorization: auth(ROLE_OF_GET[route]) } };
    }
    case 7: {
      const path = r.pick([
        `/v1/studies/${enc(weirdString(r))}`,
        `/v1/admin/clients/${enc(weirdString(r))}`,
        `/v1/studies/${studyId}/${r.pick(['image.png', 'mask.png', 'heatmap.png', 'reviews'])}`,
        '/v1/studies/%zz',
        '/%00',
      ]);
      return {
        what: `${i}: ${path.slice(0, 120)}`,
        method: r.pick(['GET', 'DELETE', 'POST', 'PUT', 'PATCH', 'OPTIONS']),
        path,
        headers: {
          Authorization: auth(r.pick(['clinician', 'admin'] as const)),
          'Content-Type': r.pick(['application/json', 'application/dicom', '*/*', ';;;', 'multipart/form-data']),
        },
        body: r.next() < 0.5 ? '{}' : undefined,
      };
    }
    default: {
      const garbage = [
        `POST /v1/studies HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
        `GET /v1/worklist HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('clinician')}\r\nX-Request-Id: ${'a'.repeat(500)}\r\n\r\n`,
        `POST /v1/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('workstation')}\r\nContent-Type: application/dicom\r\nContent-Length: 999999999\r\n\r\nabc`,
        `POST /v1/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('workstation')}\r\nContent-Type: application/dicom\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nDICM\r\nZZ\r\n`,
        `GARBAGE\r\n\r\n`,
        `GET /${'%'.repeat(100)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      ];
      return { what: `${i}: raw request`, method: 'RAW', path: '', headers: {}, raw: Buffer.from(r.pick(garbage), 'latin1') };
    }
  }
}

/** A raw request's status line, or null when the server closed without one (also fine: no crash). */
function sendRaw(bytes: Buffer): Promise<number | null> {
  const u = new URL(s.url);
  return new Promise((resolve) => {
    const sock = connect(Number(u.port), u.hostname);
    let got = '';
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('data', (c) => {
      got += c.toString('latin1');
      if (/^HTTP\/1\.[01] \d{3}/.test(got)) sock.destroy();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      resolve(m ? Number(m[1]) : null);
    });
    sock.write(bytes);
  });
}

async function send(q: FuzzRequest): Promise<{ status: number | null; code?: string }> {
  if (q.raw) return { status: await sendRaw(q.raw) };
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 60_000);
  try {
    const res = await fetch(`${s.url}${q.path}`, { method: q.method, headers: q.headers, body: q.method === 'GET' ? undefined : q.body, signal: ctl.signal });
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      // not JSON
    }
    return { status: res.status, code };
  } finally {
    clearTimeout(timer);
  }
}

test(`seeded HTTP fuzz (seed ${SEED}, ${ITERATIONS} requests): no 5xx for client mistakes, the process stays up, memory bounded`, {
  timeout: 180_000,
}, async (t) => {
  const r = rng(SEED);
  const bases = [Buffer.from(chestDicom({ size: 64, seed: 1 })), Buffer.from(chestDicom({ size: 96, seed: 2 }))];
  const token = (role: 'workstation' | 'clinician' | 'auditor' | 'admin') => s.token(role, `fuzz-${role}`);
  // one scored study, so review and image routes reach their own checks
  const first = await fetch(`${s.url}/v1/studies?wait=true`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token('workstation')}`, 'Content-Type': 'application/dicom' },
    body: bases[0],
  });
  assert.equal(first.status, 200);
  const studyId = ((await first.json()) as { id: string }).id;
  const requests = Array.from({ length: ITERATIONS }, (_, i) => makeRequest(r, i, bases, token, studyId));
  const failures: string[] = [];
  const statuses = new Map<string, number>();
  let peak = 0;
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const q = requests[next++];
      let res: { status: number | null; code?: string };
      try {
        res = await send(q);
      } catch (e) {
        failures.push(`${q.what}: no answer (${(e as Error).message})`);
        continue;
      }
      const key = `${res.status ?? 'closed'}${res.code ? ` ${res.code}` : ''}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (res.status !== null && res.status >= 500 && !(res.status === 503 && res.code === 'E_QUEUE_FULL'))
        failures.push(`${q.what}: ${res.status} ${res.code ?? ''}`);
      if (!s.alive()) {
        failures.push(`${q.what}: the server died`);
        return;
      }
      peak = Math.max(peak, s.memory().rssKiB);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  t.diagnostic(
    `statuses: ${[...statuses]
      .sort()
      .map(([k, n]) => `${k} x${n}`)
      .join(', ')}`,
  );
  t.diagnostic(`peak sampled RSS ${Math.round(peak / 1024)} MiB, VmHWM ${Math.round(s.memory().peakKiB / 1024)} MiB`);
  assert.deepEqual(failures, [], `seed ${SEED}`);
  assert.ok(s.alive(), s.stderr().slice(-2000));
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
  assert.ok(s.memory().peakKiB < RSS_BOUND_KIB, `peak RSS ${s.memory().peakKiB} KiB`);
  // nothing the fuzzer did broke the audit chain
  const verify = await fetch(`${s.url}/v1/audit/verify`, { headers: { Authorization: `Bearer ${token('auditor')}` } });
  assert.equal(((await verify.json()) as { ok: boolean }).ok, true);
});
