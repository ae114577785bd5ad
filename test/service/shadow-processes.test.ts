/**
 * The shadow setting and promotion reach a scoring process that is not the one they were made
 * from: an API-only service (no workers) in this process, one `cxr-triage worker` process,
 * and the commands run as an operator would, all on one PostgreSQL database. The worker reads
 * the candidate from the database and follows `model promote` without a restart; a worker started
 * later from a models folder shipped before the promotion serves the promoted version (the
 * registry decides, not its ACTIVE file) and never flips the registry back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomModels } from '../support/random-models.js';
import { activateOnDisk } from '../../src/ml/model-store/index.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { runCli } from '../support/cli.js';
import { waitJobsDone } from '../support/jobs.js';
import { CLI } from '../support/serve-process.js';

let h: Harness;
let env: Record<string, string>;
/** the worker processes started here, stopped at the end */
const workers: Worker[] = [];

interface Worker {
  proc: ChildProcess;
  output(): string;
  closed: Promise<number | null>;
}

/** Starts `cxr-triage worker` on the harness's database and store with this models folder; resolves once it is ready. */
async function startWorker(modelsDir: string): Promise<Worker> {
  const proc = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      ...process.env,
      ...env,
      CXR_MODELS_DIR: modelsDir,
      CXR_STORE: 'fs',
      CXR_DICOM_DIR: h.settings.dicomDir,
      CXR_HMAC_KEY: 'shadow-processes-hmac-key-0123456789',
      CXR_TTA: '2',
      CXR_INFER_THREADS: '1',
      CXR_JOB_POLL_MS: '100',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const closed = new Promise<number | null>((r) => proc.once('close', (code) => r(code)));
  const w: Worker = { proc, output: () => output, closed };
  workers.push(w);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker did not start in 120 s:\n${output}`)), 120_000);
    const seen = (c: Buffer) => {
      output += c.toString();
      if (output.includes('"msg":"worker ready"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', seen);
    proc.stderr!.on('data', seen);
    void closed.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited with ${code}:\n${output}`));
    });
  });
  return w;
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
  await w.closed;
}

before(async () => {
  // API only: every study here is scored by a worker process
  h = await startHarness({ workers: 0 });
  await randomModels(h.modelsDir, { size: 'small', seed: 7, threshold: 0.55, version: 'random-next' });
  await activateOnDisk(h.modelsDir, 'classifier', 'random-small', { segmenter: 'random-small' });
  env = { DATABASE_URL: h.db.url, CXR_DATA_DIR: join(h.root, 'data'), CXR_MODELS_DIR: h.modelsDir };
  await startWorker(h.modelsDir);
});

after(async () => {
  for (const w of workers) await stopWorker(w);
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
  await waitJobsDone(h.db.ds);
  return r.body.id as string;
}

async function classifierOf(id: string): Promise<string> {
  const rows: { classifier: string }[] = await h.db.ds.query(
    `SELECT cls.version AS classifier FROM predictions p JOIN model_versions cls ON cls.id = p.classifier_id WHERE p.study_id = $1`,
    [id],
  );
  return rows[0]?.classifier;
}

const activeInRegistry = async (): Promise<string[]> =>
  (await h.db.ds.query(`SELECT name || '@' || version AS v FROM model_versions WHERE active ORDER BY 1`)).map((r: { v: string }) => r.v);

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
  assert.match(workers[0].output(), /serving the versions the registry marks active/);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions WHERE study_id = $1`, [next]))[0].n, 0, 'the shadow run ended');
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'model.promote'`))[0].n, 1);
});

test('a process started after the promotion with a stale models folder (ACTIVE names the old version) serves the promoted one and leaves the registry alone', {
  timeout: 240_000,
}, async () => {
  assert.deepEqual(await activeInRegistry(), ['classifier@random-next', 'segmenter@random-small'], 'promoted by the test before');
  // a copy of the models folder as it was shipped before the promotion
  const stale = join(h.root, 'models-stale');
  await cp(h.modelsDir, stale, { recursive: true });
  await activateOnDisk(stale, 'classifier', 'random-small', { segmenter: 'random-small' });
  await stopWorker(workers[0]);
  const late = await startWorker(stale);
  assert.match(late.output(), /"classifier":"classifier@random-next"/, "it loaded the registry's version, not ACTIVE's");
  assert.match(late.output(), /ACTIVE names random-small, the registry classifier@random-next: serving the registry's/);
  assert.deepEqual(await activeInRegistry(), ['classifier@random-next', 'segmenter@random-small'], 'its start did not flip the registry back');
  const id = await postAndScore(5103);
  assert.equal(await classifierOf(id), 'random-next', 'it scores with the promoted version');
  assert.deepEqual(await activeInRegistry(), ['classifier@random-next', 'segmenter@random-small']);

  // a folder without the promoted version: it refuses to start, naming it, and serves nothing
  const older = join(h.root, 'models-older');
  await cp(stale, older, { recursive: true });
  await rm(join(older, 'classifier', 'random-next'), { recursive: true });
  const refused = spawnSync(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, ...env, CXR_MODELS_DIR: older, CXR_HMAC_KEY: 'shadow-processes-hmac-key-0123456789' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(refused.status, 3, refused.stderr);
  assert.match(refused.stderr, /E_MODEL_MISSING: the registry \(model_versions in PostgreSQL\) marks classifier@random-next active/);
  assert.deepEqual(await activeInRegistry(), ['classifier@random-next', 'segmenter@random-small']);
});
