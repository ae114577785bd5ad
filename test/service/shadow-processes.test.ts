/**
 * The shadow setting and promotion reach a scoring process that is not the one they were made
 * from: an API-only service (no workers) in this process, one `cxr-triage worker` process,
 * and the commands run as an operator would, all on one PostgreSQL database. The worker reads
 * the candidate from the database and follows `model promote` without a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createRandomModels } from '../../src/ml/random-models.js';
import { activateOnDisk } from '../../src/ml/model-store/index.js';
import { JOB_SCHEMA } from '../../migrations/1796160000000-JobsAndObjectStore.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { runCli } from '../support/cli.js';

const CLI = join(process.cwd(), 'bin', 'cxr-triage.js');
let h: Harness;
let env: Record<string, string>;
let worker: ChildProcess | null = null;
let output = '';

before(async () => {
  // API only: every study here is scored by the worker process
  h = await startHarness({ workers: 0 });
  await createRandomModels(h.modelsDir, { size: 'small', seed: 7, threshold: 0.55, version: 'random-next' });
  await activateOnDisk(h.modelsDir, 'classifier', 'random-small', { segmenter: 'random-small' });
  env = { DATABASE_URL: h.db.url, CXR_DATA_DIR: join(h.root, 'data'), CXR_MODELS_DIR: h.modelsDir };
  worker = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      ...process.env,
      ...env,
      CXR_STORE: 'fs',
      CXR_DICOM_DIR: h.settings.dicomDir,
      CXR_HMAC_KEY: 'shadow-processes-hmac-key-0123456789',
      CXR_TTA: '2',
      CXR_INFER_THREADS: '1',
      CXR_JOB_POLL_MS: '100',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker did not start in 120 s:\n${output}`)), 120_000);
    const seen = (c: Buffer) => {
      output += c.toString();
      if (output.includes('"msg":"worker ready"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    worker!.stdout!.on('data', seen);
    worker!.stderr!.on('data', seen);
    worker!.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited with ${code}:\n${output}`));
    });
  });
});

after(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    const closed = new Promise((r) => worker!.once('close', r));
    worker.kill('SIGTERM');
    await closed;
  }
  await h?.close();
});

async function postAndScore(seed: number): Promise<string> {
  const r = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation')}`)
    .set('Content-Type', 'application/dicom')
    .send(study(seed));
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await waitScored(h, r.body.id, 60_000);
  // the shadow step runs inside the job, after the study's result
  const end = Date.now() + 60_000;
  for (;;) {
    const [{ n }]: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM ${JOB_SCHEMA}.job WHERE name = 'score-study' AND state < 'completed'`);
    if (n === 0) break;
    assert.ok(Date.now() < end, 'the job completes');
    await new Promise((r) => setTimeout(r, 50));
  }
  return r.body.id as string;
}

test('a worker process scores the candidate set from the command line, and follows model promote without a restart', { timeout: 240_000 }, async () => {
  const set = await runCli(['model', 'shadow', 'classifier@random-next', '--fraction', '1', '--models', h.modelsDir], env);
  assert.equal(set.code, 0, set.stderr);
  const ids = [await postAndScore(5100), await postAndScore(5101)];
  const shadow: { study_id: string; classifier: string }[] = await h.db.ds.query(
    `SELECT sp.study_id, cls.version AS classifier FROM shadow_predictions sp JOIN model_versions cls ON cls.id = sp.classifier_id ORDER BY sp.id`,
  );
  assert.deepEqual(
    shadow.map((s) => [s.study_id, s.classifier]),
    ids.map((id) => [id, 'random-next']),
    'the worker process read the candidate from the database (fraction 1: every study)',
  );
  const served: { classifier: string }[] = await h.db.ds.query(
    `SELECT cls.version AS classifier FROM predictions p JOIN model_versions cls ON cls.id = p.classifier_id WHERE p.study_id = ANY($1::uuid[])`,
    [ids],
  );
  assert.deepEqual(
    served.map((s) => s.classifier),
    ['random-small', 'random-small'],
  );

  const promoted = await runCli(['model', 'promote', 'classifier@random-next', '--models', h.modelsDir], env);
  assert.equal(promoted.code, 0, promoted.stderr);
  const next = await postAndScore(5102);
  const after: { classifier: string }[] = await h.db.ds.query(
    `SELECT cls.version AS classifier FROM predictions p JOIN model_versions cls ON cls.id = p.classifier_id WHERE p.study_id = $1`,
    [next],
  );
  assert.deepEqual(after, [{ classifier: 'random-next' }], 'the worker switched to the promoted version');
  assert.match(output, /serving the versions the registry marks active/);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions WHERE study_id = $1`, [next]))[0].n, 0, 'the shadow run ended');
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'model.promote'`))[0].n, 1);
});
