/**
 * Nothing accepted is lost: a study and its job commit together (or neither, and no file is
 * left), restart recovery queues jobs for studies that have none, retries end in a visible
 * dead letter, the service's database connections killed under load cost no accepted study,
 * no file and no audit row, exactly one prediction per study, and model activation swaps engines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomModels } from '../support/random-models.js';
import { verifyAuditChain } from '../../src/db/audit.js';
import { referencedObjects } from '../../src/db/objects.js';
import { insertStudyOnce } from '../../src/db/studies.js';
import { readMetadata } from '../../src/dicom/index.js';
import { FsObjectStore } from '../../src/service/fs-store.js';
import { JobQueue } from '../../src/service/jobs.js';
import { silentLogger } from '../../src/service/log.js';
import { sha256Hex } from '../../src/service/object-store.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { waitJobsDone } from '../support/jobs.js';
import { until } from '../support/until.js';

let h: Harness;
// short retries so that the dead-letter test runs in seconds (a second queue on the same database must say the same: starting one sets the queue's policy)
const JOBS = { retryLimit: 3, retryDelaySeconds: 1, expireInSeconds: 8, maintenanceIntervalSeconds: 1 };
before(async () => {
  h = await startHarness({ jobs: JOBS, jobPollMs: 100 });
});
after(async () => {
  await h?.close();
});

const ws = () => `Bearer ${h.token('workstation', 'ws-rec')}`;
const post = (body: Buffer, query = '') => h.http.post(`/v1/studies${query}`).set('Authorization', ws()).set('Content-Type', 'application/dicom').send(body);

function storedShas(): string[] {
  const root = h.settings.dicomDir;
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.dcm'))
    .map((e) => e.name.slice(0, 64));
}

async function orphanFiles(): Promise<string[]> {
  const shas = storedShas();
  // named by a study, or by one of the AI result objects made for it
  const keep = await referencedObjects(h.db.ds, shas);
  return shas.filter((s) => !keep.has(s));
}

async function jobsFor(studyId: string): Promise<{ state: string }[]> {
  return h.db.ds.query(`SELECT state::text AS state FROM pgboss.job WHERE name = 'score-study' AND data->>'studyId' = $1`, [studyId]);
}

/** What a crash right after the commit of a pre-queue version left behind: a stored original and a `queued` row, no job. */
async function queuedRowWithoutJob(seed: number, submittedBy: string): Promise<string> {
  const store = new FsObjectStore(h.settings.dicomDir);
  const bytes = study(seed);
  const meta = readMetadata(bytes);
  const obj = await store.put(bytes);
  const { study: row } = await h.db.ds.transaction((m) =>
    insertStudyOnce(m, {
      id: randomUUID(),
      studyInstanceUid: meta.studyInstanceUid!,
      seriesInstanceUid: meta.seriesInstanceUid!,
      sopInstanceUid: meta.sopInstanceUid!,
      sopClassUid: meta.sopClassUid,
      patientPseudonym: null,
      modality: meta.modality,
      viewPosition: meta.viewPosition,
      bodyPart: meta.bodyPartExamined,
      transferSyntax: meta.transferSyntaxUid,
      imageRows: meta.rows,
      imageColumns: meta.columns,
      sha256: obj.sha256,
      sizeBytes: String(obj.size),
      submittedBy,
      receivedAt: new Date(),
    }),
  );
  return row.id;
}

test('an accepted study has its job from the same transaction; a rolled-back accept leaves no row, no job and no file', async () => {
  const r = await post(study(290));
  assert.equal(r.status, 202);
  assert.equal((await jobsFor(r.body.id)).length, 1, 'one job, committed with the study');
  await waitScored(h, r.body.id);

  const bytes = study(291);
  const sop = readMetadata(bytes).sopInstanceUid;
  // An audit append that fails inside the accept transaction rolls the whole accept back.
  await assert.rejects(
    h.parts.service.accept(bytes, 'ws-rec', async () => {
      throw new Error('audit store unavailable');
    }),
    /audit store unavailable/,
  );
  const rows: unknown[] = await h.db.ds.query(`SELECT 1 FROM studies WHERE sop_instance_uid = $1`, [sop]);
  assert.equal(rows.length, 0);
  assert.ok(!storedShas().includes(sha256Hex(bytes)), 'the stored file was removed with the failed transaction');
  const jobs: unknown[] = await h.db.ds.query(`SELECT 1 FROM pgboss.job WHERE data->>'studyId' NOT IN (SELECT id::text FROM studies)`);
  assert.equal(jobs.length, 0, 'no job without its study');
});

test('studies accepted without a job are queued by a restart and scored exactly once, even when two processes recover at once', async () => {
  const ids: string[] = [];
  for (let seed = 300; seed < 305; seed++) ids.push(await queuedRowWithoutJob(seed, 'ws-crashed'));
  const [p1, p2] = await Promise.all([h.restart(), h.restart()]);
  assert.ok(p1.recovered + p2.recovered >= ids.length, 'every queued study was picked up');
  for (const id of ids) await waitScored(h, id);
  const rows: { study_id: string; n: number }[] = await h.db.ds.query(
    `SELECT s.id AS study_id, count(p.id)::int AS n FROM studies s LEFT JOIN predictions p ON p.study_id = s.id WHERE s.submitted_by = 'ws-crashed' GROUP BY s.id`,
  );
  assert.equal(rows.length, ids.length);
  for (const r of rows) assert.equal(r.n, 1, `study ${r.study_id} has ${r.n} predictions`);
  const statuses: { status: string }[] = await h.db.ds.query(`SELECT DISTINCT status FROM studies WHERE submitted_by = 'ws-crashed'`);
  assert.deepEqual(statuses, [{ status: 'scored' }]);
  // This file's first service scores some of these jobs too, and it stays open: its job is completed
  // a moment after its study is recorded, so wait until it runs none before looking at the jobs.
  await until('the first service to finish the jobs it took', async () => ((await h.parts.metrics.queueRunning.get()).values[0]?.value ?? 0) === 0, 60_000, 20);
  await Promise.all([p1.close(), p2.close()]);
  // a job is completed just after its study is recorded: the closed workers finished theirs
  for (const id of ids) assert.equal((await jobsFor(id)).filter((j) => j.state !== 'completed').length, 0, 'no live job left');
});

test('a recovering process whose study was scored meanwhile by another process sends no second job', async () => {
  // what the slower of two recovering processes sees: the study was queued when it looked, and
  // by the time it sends, the other's job (same id) has scored it and completed
  const r = await post(study(296));
  assert.equal(r.status, 202);
  await waitScored(h, r.body.id);
  await waitJobsDone(h.db.ds);
  assert.deepEqual(await jobsFor(r.body.id), [{ state: 'completed' }]);
  const slower = new JobQueue(h.db.ds, JOBS, silentLogger);
  await slower.start();
  try {
    await slower.enqueueNow({ studyId: r.body.id });
  } finally {
    await slower.stop();
  }
  assert.deepEqual(await jobsFor(r.body.id), [{ state: 'completed' }], 'no new attempt for a scored study');
});

test('a study whose stored original went missing fails visibly instead of vanishing', async () => {
  // A queued row whose file is gone (a store restored from an older backup).
  const [{ id }] = await h.db.ds.query(
    `INSERT INTO studies (id, study_instance_uid, series_instance_uid, sop_instance_uid, sha256, size_bytes, submitted_by, received_at)
     VALUES ($1, '1.2', '1.2.3', '1.2.3.4', $2, 10, 'ws-x', now()) RETURNING id`,
    [randomUUID(), 'e'.repeat(64)],
  );
  assert.equal(await h.parts.service.recover(), 1);
  await waitScored(h, id);
  const wl = await h.http.get('/v1/worklist?status=failed').set('Authorization', `Bearer ${h.token('clinician')}`);
  const item = wl.body.items.find((i: { studyId: string }) => i.studyId === id);
  assert.deepEqual([item.flagged, item.errorCode, item.status], [true, 'E_NOT_FOUND', 'failed']);
});

test('a job that fails every attempt is retried with back-off, then dead-lettered: the study and /metrics say why', async () => {
  const bytes = study(310);
  const sha = sha256Hex(bytes);
  // The stored copy no longer hashes to its name: reading it is an internal error, which is retried.
  const id = await queuedRowWithoutJob(310, 'ws-dead');
  await writeFile(new FsObjectStore(h.settings.dicomDir).pathFor(sha), Buffer.concat([bytes, Buffer.from('x')]));
  await h.parts.service.recover();
  await waitScored(h, id, 60_000);
  const clin = `Bearer ${h.token('clinician')}`;
  const got = await h.http.get(`/v1/studies/${id}`).set('Authorization', clin);
  assert.equal(got.body.status, 'failed');
  assert.equal(got.body.error.code, 'E_JOB_DEAD');
  assert.match(got.body.error.message, /gave up after 4 attempts \(last: E_INTERNAL: .*corrupt/);
  const metrics = await h.http.get('/metrics');
  assert.match(metrics.text, /^cxr_jobs_dead [1-9]/m);
  assert.match(metrics.text, /^cxr_studies_total\{outcome="dead_letter"\} 1$/m);
});

test('PostgreSQL connections terminated under load: every accepted study is scored without a restart, no orphan file, no action without its audit row', async () => {
  const su = await h.db.superuser();
  // at least 24 posts, and more (up to 120) until the killer has struck twice: a fast machine must not finish before the faults
  const posts: Buffer[] = [];
  let next = 0;
  const results: { status: number; id?: string; sop: string }[] = [];
  let killing = true;
  let kills = 0;
  const killer = (async () => {
    // every connection of the service (API pool, job queue, workers) goes, over and over while posts are in flight
    while (killing && kills < 4) {
      await new Promise((r) => setTimeout(r, 1200));
      if (!killing) break;
      await su.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
      kills++;
    }
  })();
  await Promise.all(
    [0, 1, 2, 3].map(async () => {
      while (next < 120 && (next < 24 || kills < 2)) {
        const i = next++;
        posts[i] = study(400 + i);
        const r = await post(posts[i]);
        results.push({ status: r.status, id: r.body?.id, sop: readMetadata(posts[i]).sopInstanceUid! });
      }
    }),
  );
  killing = false;
  await killer;
  assert.ok(kills >= 2, `connections were terminated during the run (${kills} times)`);
  const accepted = results.filter((r) => r.status === 202 || r.status === 200);
  assert.ok(accepted.length > 0, `some posts got through: ${results.map((r) => r.status).join(',')}`);
  assert.ok(
    results.every((r) => r.status === 202 || r.status >= 500),
    `only 202 or 5xx: ${results.map((r) => r.status).join(',')}`,
  );
  // No restart: the same process's workers finish every accepted study.
  for (const r of accepted) await waitScored(h, r.id!, 60_000);
  const rows: { status: string; n: number }[] = await h.db.ds.query(
    `SELECT s.status, count(p.id)::int AS n FROM studies s LEFT JOIN predictions p ON p.study_id = s.id WHERE s.id = ANY($1::uuid[]) GROUP BY s.id`,
    [accepted.map((r) => r.id)],
  );
  assert.equal(rows.length, accepted.length);
  for (const r of rows) assert.deepEqual(r, { status: 'scored', n: 1 });
  // A post that failed left nothing behind, or a whole study (its commit succeeded before its answer was lost).
  const refused = results.filter((r) => r.status >= 500).map((r) => r.sop);
  const stored: { id: string; sop_instance_uid: string }[] = await h.db.ds.query(`SELECT id, sop_instance_uid FROM studies WHERE sop_instance_uid = ANY($1)`, [
    refused,
  ]);
  // Every study created under fire has its audit row (they commit together), and the chain verifies.
  const ids = [...accepted.map((r) => r.id!), ...stored.map((s) => s.id)];
  const audited: { study_id: string }[] = await h.db.ds.query(
    `SELECT DISTINCT study_id FROM audit_log WHERE action = 'study.create' AND outcome = 'ok' AND study_id = ANY($1::uuid[])`,
    [ids],
  );
  assert.equal(audited.length, ids.length, 'one study.create row per created study');
  assert.equal((await verifyAuditChain(h.db.ds)).ok, true);
  // The studies' AI result objects are built in the background after scoring: a file stored for
  // one whose row has not committed yet is named by nothing for that moment. Let them finish.
  await until(
    'every result object built',
    async () => {
      const [u]: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM derived_objects WHERE sha256 IS NULL AND build_error IS NULL`);
      return u.n === 0;
    },
    120_000,
    50,
  );
  // A failed accept removes its file at once; when the fault also cuts that clean-up, the
  // collector (run by workers every few minutes, here at once) removes what no study names.
  await h.parts.service.collectGarbage(0);
  assert.deepEqual(await orphanFiles(), [], 'no stored file without its study');
});

test('activating another model version swaps the engine; new predictions record it; a broken version is refused', async () => {
  await randomModels(h.modelsDir, { size: 'small', seed: 2, threshold: 0.45, version: 'random-v2' });
  const admin = `Bearer ${h.token('admin')}`;
  const r = await h.http.post('/v1/admin/models/classifier/random-v2/activate').set('Authorization', admin);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const active = r.body.items
    .filter((m: { active: boolean }) => m.active)
    .map((m: { name: string; version: string }) => `${m.name}@${m.version}`)
    .sort();
  assert.deepEqual(active, ['classifier@random-v2', 'segmenter@random-small']);
  assert.equal((await readFile(join(h.modelsDir, 'classifier', 'ACTIVE'), 'utf8')).trim(), 'random-v2');

  const posted = await h.http
    .post('/v1/studies?wait=true')
    .set('Authorization', `Bearer ${h.token('workstation')}`)
    .set('Content-Type', 'application/dicom')
    .send(study(320));
  assert.equal(posted.body.prediction.report.models.classifier.version, 'random-v2');
  assert.equal(posted.body.prediction.threshold, 0.45);
  const hist = await h.http.get('/v1/predictions?model=classifier@random-v2').set('Authorization', `Bearer ${h.token('auditor')}`);
  assert.deepEqual(
    hist.body.items.map((p: { studyId: string }) => p.studyId),
    [posted.body.id],
  );

  assert.equal((await h.http.post('/v1/admin/models/classifier/nope/activate').set('Authorization', admin)).status, 404);
  assert.equal((await h.http.post('/v1/admin/models/other/random-v2/activate').set('Authorization', admin)).status, 404);
  // a version whose files no longer match its manifest is refused and the active one stays
  await randomModels(h.modelsDir, { size: 'small', seed: 3, version: 'random-broken' });
  await (await import('node:fs/promises')).appendFile(join(h.modelsDir, 'classifier', 'random-broken', 'model.onnx'), 'x');
  const broken = await h.http.post('/v1/admin/models/classifier/random-broken/activate').set('Authorization', admin);
  assert.equal(broken.status, 409);
  assert.match(broken.body.error.message, /cannot be served/);
  assert.equal((await readFile(join(h.modelsDir, 'classifier', 'ACTIVE'), 'utf8')).trim(), 'random-v2');
  assert.equal(h.parts.service.models.classifier.version, 'random-v2');
});

test('a registered version whose decision rule was edited on disk is refused on activation: 409, ACTIVE restored, the engine in use keeps scoring', async () => {
  // the previous test left classifier@random-v2 active; random-small is registered from the start
  const admin = `Bearer ${h.token('admin')}`;
  const manifestPath = join(h.modelsDir, 'classifier', 'random-small', 'manifest.json');
  const original = await readFile(manifestPath, 'utf8');
  const edited = JSON.parse(original) as { threshold: { value: number } };
  edited.threshold.value = 0.99;
  await writeFile(manifestPath, JSON.stringify(edited, null, 2));
  try {
    const r = await h.http.post('/v1/admin/models/classifier/random-small/activate').set('Authorization', admin);
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.match(
      r.body.error.message,
      /cannot be served, the active version stays: E_MODEL_INVALID: .*differs from the registered one \(threshold\.value: [\d.]+ -> 0\.99\)/,
    );
    assert.equal((await readFile(join(h.modelsDir, 'classifier', 'ACTIVE'), 'utf8')).trim(), 'random-v2');
    assert.equal(h.parts.service.models.classifier.version, 'random-v2');
    const active: { version: string }[] = await h.db.ds.query(`SELECT version FROM model_versions WHERE kind = 'classifier' AND active`);
    assert.deepEqual(
      active.map((a) => a.version),
      ['random-v2'],
    );
    const posted = await h.http
      .post('/v1/studies?wait=true')
      .set('Authorization', `Bearer ${h.token('workstation')}`)
      .set('Content-Type', 'application/dicom')
      .send(study(321));
    assert.equal(posted.body.prediction.report.models.classifier.version, 'random-v2');
    assert.equal(posted.body.prediction.threshold, 0.45);
  } finally {
    await writeFile(manifestPath, original);
  }
});
