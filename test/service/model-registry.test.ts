/**
 * The registry in PostgreSQL and the version folders never disagree: a real `cxr-triage serve`
 * registers what it serves, and refuses the next start (exit 3, E_MODEL_INVALID, every
 * disagreement named) once a registered version's model.onnx was rewritten or its folder is
 * gone (and so does `cxr-triage worker`); `models list --registry` shows both sides.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerModel } from '../../src/db/models.js';
import { randomModels } from '../support/random-models.js';
import { registryDisagreements } from '../../src/service/model-registry.js';
import { runCli, spawnCliSync } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startServe } from '../support/serve-process.js';

let root: string;
let models: string;
let db: TestDatabase;
let env: NodeJS.ProcessEnv;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-registry-'));
  models = join(root, 'models');
  await tf.setBackend('cpu');
  await randomModels(models, { size: 'small', seed: 1, threshold: 0.4, version: 'v1' });
  db = await createTestDatabase();
  env = {
    ...process.env,
    DATABASE_URL: db.url,
    CXR_DATA_DIR: join(root, 'data'),
    CXR_MODELS_DIR: models,
    CXR_JWT_SECRET: randomBytes(32).toString('hex'),
    CXR_HMAC_KEY: randomBytes(32).toString('hex'),
    CXR_TTA: '2',
    CXR_INFER_THREADS: '1',
  };
});

after(async () => {
  await db?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function serveOnce(): Promise<void> {
  const s = await startServe(env);
  s.proc.kill('SIGTERM');
  assert.equal((await s.exited).code, 0, s.stderr());
}

interface Listed {
  name: string;
  version: string;
  active: boolean;
  summary: string;
  registry: string | null;
  disagreements: string[] | null;
}

async function listRegistry(): Promise<Listed[]> {
  const r = await runCli(['models', 'list', '--models', models, '--registry', '--json'], { DATABASE_URL: db.url });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Listed[];
}

test('models list --registry shows which versions the service registered and which are only on disk', async () => {
  await serveOnce();
  // a version trained after the start: on disk, never served
  await randomModels(join(root, 'later'), { size: 'small', seed: 2, threshold: 0.45, version: 'v2' });
  const { cp } = await import('node:fs/promises');
  await cp(join(root, 'later', 'classifier', 'v2'), join(models, 'classifier', 'v2'), { recursive: true });
  // ACTIVE keeps v1 served (without it the newest, v2, would be)
  assert.equal((await runCli(['models', 'activate', 'classifier', 'v1', '--models', models])).code, 0);
  const rows = await listRegistry();
  const at = (name: string, version: string) => rows.find((r) => r.name === name && r.version === version);
  assert.equal(at('segmenter', 'v1')?.registry, 'active');
  assert.equal(at('classifier', 'v1')?.registry, 'active');
  assert.equal(at('classifier', 'v1')?.active, true);
  assert.equal(at('classifier', 'v2')?.registry, 'not registered');
  assert.equal(at('classifier', 'v2')?.active, false);
  const text = await runCli(['models', 'list', '--models', models, '--registry'], { DATABASE_URL: db.url });
  assert.match(text.stdout, /^\* classifier\s+v1 .*\[ACTIVE, registry: active\]$/m);
  assert.match(text.stdout, /^ {2}classifier\s+v2 .*\[registry: not registered\]$/m);
  assert.deepEqual(await registryDisagreements(db.ds, models), []);
  assert.ok(rows.every((r) => Array.isArray(r.disagreements) && r.disagreements.length === 0));
});

test('serve and worker refuse to start when a registered model.onnx was rewritten or a registered version folder is gone, naming both', async () => {
  // v2 served once: v1 stays registered, no longer served (the engine's own load check does not read it).
  // The registry names v1 active by now, so ACTIVE alone would not switch a restart: promote does.
  const promoted = await runCli(['model', 'promote', 'classifier@v2', '--models', models], { DATABASE_URL: db.url });
  assert.equal(promoted.code, 0, promoted.stderr);
  await serveOnce();
  const onnx = join(models, 'classifier', 'v1', 'model.onnx');
  await copyFile(onnx, join(root, 'model.onnx.orig'));
  await appendFile(onnx, Buffer.from([0]));
  // registered by an earlier deployment whose folder was deleted since
  await registerModel(db.ds, { kind: 'classifier', name: 'classifier', version: 'v0', sha256: 'c'.repeat(64), manifest: {} });

  const listed = await listRegistry();
  assert.equal(listed.find((r) => r.name === 'classifier' && r.version === 'v1')?.registry, 'registered');
  assert.equal(listed.find((r) => r.name === 'classifier' && r.version === 'v2')?.registry, 'active');
  const gone = listed.find((r) => r.version === 'v0');
  assert.equal(gone?.summary, '(not on disk)');
  assert.equal(gone?.registry, 'registered');
  // the list names what serve will refuse, per version
  assert.match(gone?.disagreements?.join('\n') ?? '', /classifier@v0 is registered but its folder .* is gone/);
  assert.match(
    listed.find((r) => r.name === 'classifier' && r.version === 'v1')?.disagreements?.join('\n') ?? '',
    /files changed since the manifest was written: model\.onnx/,
  );
  assert.deepEqual(listed.find((r) => r.name === 'classifier' && r.version === 'v2')?.disagreements, []);
  const text = await runCli(['models', 'list', '--models', models, '--registry'], { DATABASE_URL: db.url });
  assert.match(text.stdout, /^ {2}classifier\s+v1 .*DISAGREES WITH THE REGISTRY\]$/m);
  assert.match(text.stderr, /the registry and .* disagree \(serve and worker will not start until the registered files are back\)/);

  await assert.rejects(startServe(env), (e: Error) => {
    assert.match(e.message, /serve exited \(3\) before listening/);
    assert.match(e.message, /error E_MODEL_INVALID: the model registry \(model_versions in PostgreSQL\) and the files under .* disagree/);
    assert.match(e.message, /classifier@v1: files changed since the manifest was written: model\.onnx/);
    assert.match(e.message, /classifier@v0 is registered but its folder .*classifier\/v0 .* is gone/);
    return true;
  });

  // a scoring-only process runs the same check (it would otherwise run until the time limit)
  const worker = spawnCliSync(['worker'], { env, timeoutMs: 120_000 });
  assert.equal(worker.status, 3, worker.stderr);
  assert.match(worker.stderr, /error E_MODEL_INVALID: the model registry .* disagree.*\n(.*\n)*.*classifier@v1: files changed/);

  // put the registered files back and forget the deleted version: the service starts again
  await copyFile(join(root, 'model.onnx.orig'), onnx);
  await db.ds.query(`DELETE FROM model_versions WHERE version = 'v0'`);
  assert.deepEqual(await registryDisagreements(db.ds, models), []);
  await serveOnce();
});
