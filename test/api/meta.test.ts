/**
 * Operations and hygiene: health, readiness, metrics, the OpenAPI document covering every
 * route, security headers, JSON errors, configuration validation, development keys, CSV.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApiDocument, routes } from '../../src/api/app.js';
import { loadConfig } from '../../src/app/config.js';
import { hashSecret, verifySecret } from '../../src/service/credentials.js';
import { toCsv } from '../../src/api/csv.js';
import { openApiPath } from '../../src/api/openapi.js';
import { verifyToken, signToken } from '../../src/api/tokens.js';
import { FsObjectStore } from '../../src/service/fs-store.js';
import { sha256Hex } from '../../src/service/object-store.js';
import { pseudonymisePatientId } from '../../src/service/pseudonym.js';
import { startHarness, study, type Harness } from '../support/api.js';

let h: Harness;
let scratch: string;
before(async () => {
  h = await startHarness();
  scratch = await mkdtemp(join(tmpdir(), 'cxr-meta-'));
});
after(async () => {
  await h?.close();
  await rm(scratch, { recursive: true, force: true });
});

test('healthz is up; readyz reports the database, the models and the storage', async () => {
  const live = await h.http.get('/healthz');
  assert.deepEqual([live.status, live.body], [200, { status: 'ok' }]);
  const ready = await h.http.get('/readyz');
  assert.deepEqual([ready.status, ready.body], [200, { status: 'ready', checks: { database: 'ok', models: 'ok', storage: 'ok' } }]);
});

test('metrics expose request counts and latencies, studies by outcome, queue depth and inference time', async () => {
  const ws = `Bearer ${h.token('workstation')}`;
  await h.http.post('/v1/studies?wait=true').set('Authorization', ws).set('Content-Type', 'application/dicom').send(study(401));
  await h.http.post('/v1/studies').set('Authorization', ws).set('Content-Type', 'application/dicom').send(Buffer.from('nope'));
  const r = await h.http.get('/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain/);
  const m = r.text;
  assert.match(m, /cxr_http_requests_total\{method="POST",route="\/v1\/studies",status="200"\} 1/);
  assert.match(m, /cxr_http_requests_total\{method="POST",route="\/v1\/studies",status="422"\} 1/);
  assert.match(m, /cxr_http_request_duration_seconds_bucket\{le="\+Inf",method="POST",route="\/v1\/studies"\} 2/);
  assert.match(m, /cxr_studies_total\{outcome="accepted"\} 1/);
  assert.match(m, /cxr_studies_total\{outcome="rejected"\} 1/);
  assert.match(m, /cxr_studies_total\{outcome="scored"\} 1/);
  assert.match(m, /cxr_inference_queue_depth 0/);
  assert.match(m, /cxr_inference_duration_seconds_count 1/);
});

test('the OpenAPI document describes every route the app serves, with roles and error responses', async () => {
  const r = await h.http.get('/v1/openapi.json');
  assert.equal(r.status, 200);
  const doc = r.body as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>> };
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(doc, JSON.parse(JSON.stringify(openApiDocument())));
  const documented = Object.entries(doc.paths)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`))
    .sort();
  const served = routes.map((x) => `${x.method} ${openApiPath(x.path)}`).sort();
  assert.deepEqual(documented, served);
  for (const required of [
    'post /v1/studies',
    'post /dicomweb/studies',
    'get /v1/worklist',
    'get /v1/studies/{id}/heatmap.png',
    'post /v1/studies/{id}/reviews',
    'get /v1/predictions.csv',
    'get /v1/audit/verify',
    'post /v1/admin/models/{name}/{version}/activate',
    'post /v1/admin/models/{name}/{version}/shadow',
    'delete /v1/admin/models/shadow',
    'delete /v1/admin/clients/{id}',
    'post /v1/auth/token',
    'get /readyz',
  ]) {
    assert.ok(documented.includes(required), required);
  }
  for (const x of routes) {
    const op = doc.paths[openApiPath(x.path)][x.method];
    if (x.roles === 'public') assert.deepEqual(op.security, [], `${x.path} is public`);
    else assert.ok(op.responses['401'] && op.responses['403'], `${x.path} documents 401/403`);
  }
  // every $ref resolves
  const schemas = (r.body.components.schemas ?? {}) as Record<string, unknown>;
  for (const ref of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([A-Za-z]+)"/g)) assert.ok(ref[1] in schemas, `schema ${ref[1]}`);
});

test('security headers are set and responses are not cacheable', async () => {
  const r = await h.http.get('/healthz');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
  assert.match(r.headers['content-security-policy'], /default-src 'none'/);
  assert.match(r.headers['strict-transport-security'], /max-age=/);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal(r.headers['x-powered-by'], undefined);
});

test('unknown routes are JSON 404s and a request id is echoed or generated', async () => {
  const r = await h.http.get('/v1/nothing-here').set('X-Request-Id', 'trace-123');
  assert.equal(r.status, 404);
  assert.deepEqual(r.body, { error: { code: 'E_NOT_FOUND', message: 'no route GET /v1/nothing-here', requestId: 'trace-123' } });
  assert.equal(r.headers['x-request-id'], 'trace-123');
  const gen = await h.http.get('/healthz').set('X-Request-Id', 'bad id with spaces');
  assert.match(gen.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  const badPath = await h.http.get('/v1/studies/%E0%A4%A').set('Authorization', `Bearer ${h.token('clinician')}`);
  assert.equal(badPath.status, 400);
  assert.equal(badPath.body.error.code, 'E_BAD_REQUEST');
});

test('configuration: defaults, every invalid variable reported at once, development keys generated once', async () => {
  const dir = join(scratch, 'data');
  const cfg = loadConfig({ CXR_DATA_DIR: dir });
  assert.deepEqual([cfg.port, cfg.host, cfg.databaseUrl, cfg.queueSize, cfg.maxBodyBytes], [8080, '127.0.0.1', null, 64, 64 * 1024 * 1024]);
  assert.equal(cfg.dicomDir, join(dir, 'dicom'));
  assert.equal(cfg.notices.length, 2);
  assert.match(cfg.notices[0], /CXR_JWT_SECRET is not set: using a newly generated development JWT signing key/);
  assert.equal((await stat(join(dir, 'secrets', 'jwt-secret'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'secrets'))).mode & 0o777, 0o700);
  const again = loadConfig({ CXR_DATA_DIR: dir });
  assert.deepEqual(again.jwt.secret, cfg.jwt.secret);
  assert.deepEqual(again.hmacKey, cfg.hmacKey);
  assert.match(again.notices[0], /using a generated development/);
  // a token minted with one process's config verifies in another's
  assert.equal(verifyToken(again.jwt, signToken(cfg.jwt, { sub: 'x', role: 'auditor', kind: 'operator' }).token).role, 'auditor');

  assert.throws(
    () => loadConfig({ CXR_DATA_DIR: dir, PORT: 'eighty', CXR_QUEUE_SIZE: '0', CXR_JWT_SECRET: 'short', DATABASE_URL: 'mysql://x', CXR_MAX_BODY_MB: '1.5' }),
    (e: Error & { code?: string }) =>
      e.code === 'E_CONFIG' &&
      /PORT must be an integer from 0 to 65535 \(got 'eighty'\)/.test(e.message) &&
      /CXR_QUEUE_SIZE must be an integer from 1/.test(e.message) &&
      /CXR_JWT_SECRET must be at least 32 characters/.test(e.message) &&
      /DATABASE_URL must be a postgres:\/\/ URL/.test(e.message) &&
      /CXR_MAX_BODY_MB must be an integer/.test(e.message),
  );
  assert.equal(cfg.sitePrevalence, null, "without CXR_SITE_PREVALENCE the validation split's prevalence is used");
  assert.equal(loadConfig({ CXR_DATA_DIR: dir, CXR_SITE_PREVALENCE: '0.15' }).sitePrevalence, 0.15);
  for (const bad of ['0', '1', '15%', 'NaN', '-0.1'])
    assert.throws(
      () => loadConfig({ CXR_DATA_DIR: dir, CXR_SITE_PREVALENCE: bad }),
      (e: Error & { code?: string }) => e.code === 'E_CONFIG' && /CXR_SITE_PREVALENCE must be a share between 0 and 1/.test(e.message),
      bad,
    );
  const env = loadConfig({
    CXR_DATA_DIR: dir,
    CXR_JWT_SECRET: 'j'.repeat(32),
    CXR_HMAC_KEY: 'h'.repeat(40),
    PORT: '9000',
    DATABASE_URL: 'postgres://u:p@db/x',
  });
  assert.deepEqual([env.notices, env.port, env.jwt.secret.toString(), env.databaseUrl], [[], 9000, 'j'.repeat(32), 'postgres://u:p@db/x']);
});

test('secrets hash with scrypt and verify only the right secret', async () => {
  const stored = await hashSecret('s3cret');
  assert.match(stored, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.equal(await verifySecret('s3cret', stored), true);
  assert.equal(await verifySecret('s3cret!', stored), false);
  assert.notEqual(await hashSecret('s3cret'), stored);
  assert.equal(await verifySecret('s3cret', 'plain'), false);
});

test('pseudonyms are keyed HMAC-SHA256 of the trimmed patient id; empty ids stay empty', () => {
  const key = Buffer.from('k'.repeat(32));
  // value from Python: hmac.new(b'k'*32, b'12345', hashlib.sha256).hexdigest()
  assert.equal(pseudonymisePatientId(key, ' 12345 '), '7c31bca0bf1101e136e7a1afc4ad3c166a446b4842fea1554a69d638c1f0477d');
  assert.notEqual(pseudonymisePatientId(key, '12345'), pseudonymisePatientId(Buffer.from('x'.repeat(32)), '12345'));
  assert.equal(pseudonymisePatientId(key, ''), null);
  assert.equal(pseudonymisePatientId(key, null), null);
});

test('the DICOM store names files by content, writes them once, and detects corruption', async () => {
  const store = new FsObjectStore(join(scratch, 'store'));
  const bytes = Buffer.from('some bytes');
  const a = await store.put(bytes);
  assert.equal(a.sha256, sha256Hex(bytes));
  assert.equal(a.path, join(scratch, 'store', a.sha256.slice(0, 2), `${a.sha256}.dcm`));
  const b = await store.put(bytes);
  assert.equal(b.path, a.path);
  assert.deepEqual(await store.get(a.sha256), bytes);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(a.path, 'other bytes');
  await assert.rejects(store.get(a.sha256), /corrupt/);
  await assert.rejects(store.get('f'.repeat(64)), (e: Error & { code?: string }) => e.code === 'E_NOT_FOUND');
  assert.equal(await readFile(a.path, 'utf8'), 'other bytes');
});

test('CSV cells are quoted when needed and formula-like text is neutralised', () => {
  const csv = toCsv<{ a: unknown; b: unknown; c: unknown }>(
    ['a', 'b', 'c'],
    [
      { a: 'x,y', b: 'say "hi"', c: ['p', 'q'] },
      { a: '=HYPERLINK("evil")', b: -1.5, c: null },
    ],
  );
  assert.equal(csv, 'a,b,c\r\n"x,y","say ""hi""",p;q\r\n"\'=HYPERLINK(""evil"")",-1.5,\r\n');
});
