/**
 * A process whose engine threads have all stopped: it says it is not ready and takes no job
 * (other processes score them) until a replacement thread has loaded; then it scores again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { loadEnginePool, type EnginePool } from '../../src/inference/engine-pool.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { until as waitUntil } from '../support/until.js';

const until = (what: string, ok: () => boolean | Promise<boolean>) => waitUntil(what, ok, 120_000, 10);

let h: Harness;
let pool: EnginePool;
/** the pool's own copy of the harness's models: moved away, no replacement thread can load */
let poolModels: string;
const warnings: string[] = [];
before(async () => {
  h = await startHarness();
  poolModels = join(h.root, 'pool-models');
  await cp(h.modelsDir, poolModels, { recursive: true });
  pool = await loadEnginePool({ modelsDir: poolModels, tta: 2, threads: 1, engines: 1, onWarning: (m) => warnings.push(m) });
  await h.parts.service.swapEngine(pool);
});
after(async () => {
  await h?.close();
});

test('with no engine thread alive /readyz is not ready and no job is taken; once one is replaced the study queued meanwhile is scored', async () => {
  assert.equal((await h.http.get('/readyz')).status, 200);
  // two stops within a minute: the second replacement waits out a back-off
  pool.stopOneThread();
  await until('the pool saw the first stop', () => warnings.filter((w) => /starting another/.test(w)).length === 1);
  await until('first replacement loaded', () => pool.threadsReady === 1);
  // The second replacement starts after a 1 s back-off, which a busy machine can spend before
  // the checks below are done. With its models moved away it cannot load (it is retried after
  // a longer back-off), so no thread is alive until they are put back, whatever the machine's speed.
  await rename(poolModels, `${poolModels}.away`);
  pool.stopOneThread();
  await until('the pool saw the second stop', () => warnings.filter((w) => /starting another in 1 s/.test(w)).length === 1);
  assert.equal(pool.threadsReady, 0);
  const ready = await h.http.get('/readyz');
  assert.equal(ready.status, 503, JSON.stringify(ready.body));
  assert.equal(ready.body.checks.models, 'not_loaded');
  const posted = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation')}`)
    .set('Content-Type', 'application/dicom')
    .send(study(501));
  assert.equal(posted.status, 202, JSON.stringify(posted.body));
  // while no thread is alive the job stays in the queue for any process, not taken and failed here
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(pool.threadsReady, 0);
  const [job]: { state: string; retry_count: number }[] = await h.db.ds.query(`SELECT state, retry_count FROM pgboss.job WHERE data->>'studyId' = $1`, [
    posted.body.id,
  ]);
  assert.equal(job.state, 'created');
  assert.equal(job.retry_count, 0);
  await rename(`${poolModels}.away`, poolModels);
  await waitScored(h, posted.body.id, 120_000);
  const scored = await h.http.get(`/v1/studies/${posted.body.id}`).set('Authorization', `Bearer ${h.token('clinician')}`);
  assert.equal(scored.body.status, 'scored', JSON.stringify(scored.body));
  assert.equal((await h.http.get('/readyz')).status, 200);
});
