/**
 * Issue 10 row 9, replayed against `cxr-triage serve` on a real PostgreSQL: SIGTERM while
 * clients wait with ?wait=true. Every accepted request gets an answer before the process
 * exits — its result, or 202 with the study's location — new connections are refused at
 * once, the process exits 0, and the studies answered 202 are scored after the next start.
 * A drain time of 0 (CXR_DRAIN_TIMEOUT_S) answers even the client whose study is being
 * scored at that moment, with 202.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
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
let db: TestDatabase;
const running = new Set<ServeProcess>();
const jwtSecret = randomBytes(32).toString('hex');
const hmacKey = randomBytes(32).toString('hex');
const token = signToken(
  { secret: Buffer.from(jwtSecret), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 },
  { sub: 'ws-term', role: 'workstation', kind: 'operator' },
).token;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-sigterm-'));
  await tf.setBackend('cpu');
  await randomModels(join(root, 'models'), { size: 'small', seed: 1, threshold: 0.4 });
  db = await createTestDatabase();
});

after(async () => {
  for (const s of running) {
    s.proc.kill('SIGKILL');
    await s.exited;
  }
  await db?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function serve(extra: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const { DATABASE_URL: _d, ...rest } = process.env;
  const s = await startServe({
    ...rest,
    DATABASE_URL: db.url,
    CXR_DATA_DIR: join(root, 'data'),
    CXR_MODELS_DIR: join(root, 'models'),
    CXR_JWT_SECRET: jwtSecret,
    CXR_HMAC_KEY: hmacKey,
    CXR_INFER_CONCURRENCY: '1',
    // many views, so that scoring (in its own thread) is slow: with a drain time of 0 a study is likely still being scored at SIGTERM
    CXR_TTA: '32',
    // no DIMSE listener: test files run in parallel and would race for port 11112
    CXR_DIMSE_PORT: '0',
    ...extra,
  });
  running.add(s);
  void s.exited.then(() => running.delete(s));
  return s;
}

interface Answer {
  status: number;
  location: string | null;
  body: { id?: string; status?: string };
}

/** One ?wait=true post on its own connection (no keep-alive), so an answer or a reset is unambiguous. */
function postWaiting(url: string, seed: number): Promise<Answer> {
  const bytes = study(seed, { size: 512 });
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/studies?wait=true`,
      { method: 'POST', agent: false, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/dicom', 'Content-Length': bytes.length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: (res.headers.location as string | undefined) ?? null, body: JSON.parse(text) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

const studyCount = async (): Promise<number> => ((await db.ds.query('SELECT count(*)::int AS n FROM studies')) as { n: number }[])[0].n;

async function statuses(): Promise<Map<string, string>> {
  const rows: { id: string; status: string }[] = await db.ds.query('SELECT id, status FROM studies');
  return new Map(rows.map((r) => [r.id, r.status]));
}

function checkAnswers(answers: PromiseSettledResult<Answer>[], dbStatus: Map<string, string>): { scored: number; deferred: number } {
  let scored = 0;
  let deferred = 0;
  for (const a of answers) {
    assert.equal(a.status, 'fulfilled', `every accepted request is answered, none reset: ${a.status === 'rejected' ? String(a.reason) : ''}`);
    const { status, location, body } = (a as PromiseFulfilledResult<Answer>).value;
    assert.ok(status === 200 || status === 202, `answer ${status} ${JSON.stringify(body)}`);
    assert.equal(location, `/v1/studies/${body.id}`);
    if (status === 200) {
      assert.equal(body.status, 'scored');
      scored++;
    } else {
      assert.equal(body.status, 'queued');
      deferred++;
    }
    // a result is what the database holds; a 202 names a stored study (its inference may
    // still have finished after the answer, when the drain time ran out while it ran)
    if (status === 200) assert.equal(dbStatus.get(body.id!), 'scored');
    else assert.ok(['queued', 'scored'].includes(dbStatus.get(body.id!) ?? ''), `study ${body.id} is stored`);
  }
  return { scored, deferred };
}

test('SIGTERM with clients waiting: every one is answered (result, or 202 with the location), new connections are refused, exit 0, deferred studies are scored after restart', {
  timeout: 300_000,
}, async () => {
  const s = await serve();
  const n = 10;
  // Timing alone cannot keep studies queued until SIGTERM: on a busy machine storing is slow
  // enough for scoring to catch up. A lock on the predictions table holds the jobs being scored
  // at their final write (after inference), so at SIGTERM only those are in flight and the rest
  // are queued, whatever the machine's speed.
  const holder = await db.superuser();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE predictions IN EXCLUSIVE MODE');
  const pending = Array.from({ length: n }, (_, i) => postWaiting(s.url, 100 + i));
  const settled = Promise.allSettled(pending);
  await until('every study stored', async () => (await studyCount()) === n);
  await until('a job blocked writing its result', async () => {
    const r = await holder.query(`SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'predictions'::regclass AND NOT granted`);
    return (r.rows[0] as { n: number }).n > 0;
  });
  s.proc.kill('SIGTERM');
  await until('the server to stop listening', async () => /stopping: no new connections/.test(s.stderr()));
  await assert.rejects(fetch(`${s.url}/healthz`), 'a new connection is refused while draining');
  // the job in flight finishes within the drain time; the queued ones are not taken
  await holder.query('COMMIT');

  const answers = await settled;
  const { code } = await s.exited;
  assert.equal(code, 0, s.stderr());
  const { scored, deferred } = checkAnswers(answers, await statuses());
  assert.equal(scored + deferred, n);
  // serve pipelines two jobs per engine (one in inference, the next readied), so one or two are in flight
  assert.ok(scored >= 1 && scored <= 2, `the studies being scored at SIGTERM got their results within the drain time (${scored})`);
  assert.ok(deferred >= n - 2, `studies still queued at SIGTERM were answered 202 rather than held until scored (${deferred})`);

  // the deferred studies are scored at the next start; nothing was lost
  const s2 = await serve({ CXR_DRAIN_TIMEOUT_S: '0' });
  await until('every study scored', async () => [...(await statuses()).values()].every((v) => v === 'scored'));

  // drain time 0: even the client whose study is being scored right now gets 202 at once
  const more = Array.from({ length: 4 }, (_, i) => postWaiting(s2.url, 200 + i));
  const settled2 = Promise.allSettled(more);
  await until('the new studies stored', async () => (await studyCount()) === n + 4);
  s2.proc.kill('SIGTERM');
  const answers2 = await settled2;
  assert.equal((await s2.exited).code, 0, s2.stderr());
  checkAnswers(answers2, await statuses());

  const s3 = await serve();
  await until('every study scored', async () => [...(await statuses()).values()].every((v) => v === 'scored'));
  s3.proc.kill('SIGTERM');
  assert.equal((await s3.exited).code, 0);
});
