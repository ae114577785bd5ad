/**
 * Issue 10 row 8, replayed against `cxr-triage serve` on a real PostgreSQL: the directory
 * where originals are stored is a real, small file system (a 6 MiB tmpfs mounted for the test;
 * this needs root, as this project's machines and CI run) which the test fills. While it is
 * full every new study gets 507 E_STORAGE_FULL with Retry-After, /readyz is not ready, the log
 * says so once (not once per request, and no stack traces), nothing half-written is left; when
 * room comes back the service notices by itself and accepts studies again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { randomModels } from '../support/random-models.js';
import { startServe, type ServeProcess } from '../support/serve-process.js';
import { signToken } from '../../src/api/tokens.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { study } from '../support/api.js';
import { until } from '../support/until.js';

let root: string;
let mnt: string;
let mounted = false;
let db: TestDatabase;
let server: ServeProcess | null = null;
const jwtSecret = randomBytes(32).toString('hex');

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-diskfull-'));
  mnt = join(root, 'dicom');
  await mkdir(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0755', 'tmpfs', mnt], { encoding: 'utf8' });
  assert.equal(m.status, 0, `this test mounts a small tmpfs and needs root: ${m.stderr}`);
  mounted = true;
  await tf.setBackend('cpu');
  await randomModels(join(root, 'models'), { size: 'small', seed: 1, threshold: 0.4 });
  db = await createTestDatabase();
});

after(async () => {
  if (server && server.proc.exitCode === null) {
    server.proc.kill('SIGKILL');
    await server.exited;
  }
  if (mounted) spawnSync('umount', [mnt]);
  await db?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Writes zeros until the file system refuses (ENOSPC); returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler.bin');
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) await fh.write(chunk);
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    await fh.close();
  }
  return path;
}

const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

test('a full data directory: 507 E_STORAGE_FULL with Retry-After, /readyz not ready, one log line per change, nothing half-written, recovers by itself', {
  timeout: 180_000,
}, async () => {
  const { DATABASE_URL: _d, ...rest } = process.env;
  server = await startServe({
    ...rest,
    DATABASE_URL: db.url,
    CXR_DATA_DIR: join(root, 'data'),
    CXR_DICOM_DIR: mnt,
    CXR_MODELS_DIR: join(root, 'models'),
    CXR_JWT_SECRET: jwtSecret,
    CXR_HMAC_KEY: randomBytes(32).toString('hex'),
    CXR_MAX_BODY_MB: '1',
    CXR_TTA: '2',
    // no DIMSE listener: test files run in parallel and would race for port 11112
    CXR_DIMSE_PORT: '0',
  });
  const url = server.url;
  const token = signToken(
    { secret: Buffer.from(jwtSecret), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 },
    { sub: 'ws-disk', role: 'workstation', kind: 'operator' },
  ).token;
  const post = (seed: number) =>
    fetch(`${url}/v1/studies`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/dicom' }, body: study(seed) });

  assert.equal((await post(1)).status, 202);
  const filler = await fill(mnt);

  const refused = await Promise.all([2, 3, 4, 5, 6, 7].map(post));
  for (const r of refused) {
    assert.equal(r.status, 507);
    const body = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'E_STORAGE_FULL');
    assert.doesNotMatch(body.error.message, /at .*\.ts:\d+/, 'no stack in the answer');
    assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After says when to come back');
  }
  // STOW-RS too: every instance refused for lack of room is a 507, each named with Out of Resources (A700)
  const boundary = 'fault-disk-full';
  const stowBody = Buffer.concat([
    ...[9, 10].flatMap((seed) => [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), study(seed), Buffer.from('\r\n')]),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
  const stow = await fetch(`${url}/dicomweb/studies`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}` },
    body: stowBody,
  });
  assert.equal(stow.status, 507);
  assert.ok(Number(stow.headers.get('retry-after')) > 0);
  const failedSops = ((await stow.json()) as Record<string, { Value: Record<string, { Value: unknown[] }>[] }>)['00081198'].Value;
  assert.deepEqual(
    failedSops.map((f) => f['00081197'].Value[0]),
    [0xa700, 0xa700],
  );

  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 503);
  assert.deepEqual(((await ready.json()) as { checks: Record<string, string> }).checks, { database: 'ok', models: 'ok', storage: 'full' });
  // liveness is unaffected: the process is fine, it has nowhere to write
  assert.equal((await fetch(`${url}/healthz`)).status, 200);

  // nothing half-written: no rows for the refused studies, no temporary files on the full disk
  const rows: { n: number }[] = await db.ds.query('SELECT count(*)::int AS n FROM studies');
  assert.equal(rows[0].n, 1);
  // (the accepted study's own result objects may be mid-write, and fail, as the disk fills: a
  // temporary file of a write still in flight is not one left behind, so look until it is gone)
  const leftovers = async () => (await readdir(mnt, { recursive: true })).filter((f) => String(f).endsWith('.tmp'));
  await until('no temporary file left on the full disk', async () => (await leftovers()).length === 0, 60_000).catch(() => undefined);
  assert.deepEqual(await leftovers(), []);
  const audit: { outcome: string }[] = await db.ds.query(`SELECT outcome FROM audit_log WHERE action = 'study.create' ORDER BY seq`);
  assert.deepEqual(
    audit.map((a) => a.outcome),
    ['ok', ...refused.map(() => 'E_STORAGE_FULL'), 'E_STORAGE_FULL', 'E_STORAGE_FULL'],
    'every refusal is audited with its code',
  );

  const log = server.stderr();
  assert.equal(count(log, /storage full/), 1, `one line for the change, not one per request:\n${log}`);
  assert.equal(count(log, /request failed/), 0, 'no per-request error lines (stack traces)');

  // room comes back: the service sees it without being told
  await rm(filler);
  await until('/readyz ready again', async () => (await fetch(`${url}/readyz`)).status === 200);
  assert.equal(count(server.stderr(), /storage available again/), 1);
  assert.equal((await post(8)).status, 202);

  server.proc.kill('SIGTERM');
  assert.equal((await server.exited).code, 0);
  assert.equal(count(server.stderr(), /storage full/), 1);
});
