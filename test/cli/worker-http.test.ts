/**
 * `cxr-triage worker` with CXR_WORKER_PORT answers the probes and the Prometheus scrape the
 * deployment files point at it (deploy/k8s/worker-deployment.yaml, deploy/compose.yaml).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { CLI, freePort } from '../support/serve-process.js';

let h: Harness;
let worker: ChildProcess | null = null;
before(async () => {
  // an API without scoring loops: the worker process scores
  h = await startHarness({ workers: 0 });
});
after(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill('SIGTERM');
    await new Promise((r) => worker!.once('close', r));
  }
  await h?.close();
});

test('a worker answers /healthz, /readyz and /metrics on CXR_WORKER_PORT; its metrics count the studies it scored', async () => {
  const port = await freePort();
  await mkdir(join(h.root, 'worker-data'), { recursive: true });
  worker = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: h.db.url,
      CXR_DATA_DIR: join(h.root, 'worker-data'),
      CXR_MODELS_DIR: h.modelsDir,
      CXR_STORE: 'fs',
      CXR_DICOM_DIR: h.settings.dicomDir,
      CXR_HMAC_KEY: h.settings.hmacKey.toString('base64'),
      CXR_TTA: '2',
      CXR_INFER_THREADS: '1',
      CXR_JOB_POLL_MS: '100',
      CXR_WORKER_PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  worker.stdout!.on('data', (c) => (out += c));
  worker.stderr!.on('data', (c) => (out += c));
  const end = Date.now() + 120_000;
  while (!out.includes('"msg":"worker ready"')) {
    assert.ok(Date.now() < end && worker.exitCode === null, `the worker did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready' });
  const posted = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation')}`)
    .set('Content-Type', 'application/dicom')
    .send(study(801));
  assert.equal(posted.status, 202, JSON.stringify(posted.body));
  await waitScored(h, posted.body.id, 120_000);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^cxr_studies_total\{outcome="scored"\} 1$/m);
  assert.match(metrics, /^cxr_inference_duration_seconds_count 1$/m);
  assert.equal((await fetch(`${base}/v1/worklist`)).status, 404);
});
