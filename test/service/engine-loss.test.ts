/**
 * A process whose engine threads have all stopped: it says it is not ready and takes no job
 * (other processes score them) until a replacement thread has loaded; then it scores again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadEnginePool, type EnginePool } from '../../src/inference/engine-pool.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';

let h: Harness;
let pool: EnginePool;
before(async () => {
  h = await startHarness();
  pool = await loadEnginePool({ modelsDir: h.modelsDir, tta: 2, threads: 1, engines: 1 });
  await h.parts.service.swapEngine(pool);
});
after(async () => {
  await h?.close();
});

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 120_000;
  while (!(await ok())) {
    assert.ok(Date.now() < end, what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('with no engine thread alive /readyz is not ready and no job is taken; once one is replaced the study queued meanwhile is scored', async () => {
  assert.equal((await h.http.get('/readyz')).status, 200);
  // two stops within a minute: the second replacement waits out a back-off
  pool.stopOneThread();
  await until('first replacement', () => pool.threadsReady === 0);
  await until('first replacement loaded', () => pool.threadsReady === 1);
  pool.stopOneThread();
  await until('no thread alive', () => pool.threadsReady === 0);
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
  if (pool.threadsReady === 0) {
    const [job]: { state: string; retry_count: number }[] = await h.db.ds.query(`SELECT state, retry_count FROM pgboss.job WHERE data->>'studyId' = $1`, [
      posted.body.id,
    ]);
    assert.equal(job.state, 'created');
    assert.equal(job.retry_count, 0);
  }
  await waitScored(h, posted.body.id, 120_000);
  const scored = await h.http.get(`/v1/studies/${posted.body.id}`).set('Authorization', `Bearer ${h.token('clinician')}`);
  assert.equal(scored.body.status, 'scored', JSON.stringify(scored.body));
  assert.equal((await h.http.get('/readyz')).status, 200);
});
