/**
 * Nothing accepted is lost: the queue's bounds and stop, restart recovery of accepted but
 * unscored studies, exactly one prediction per study, and model activation swapping engines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRandomModels } from '../../src/ml/random-models.js';
import { insertStudyOnce } from '../../src/db/studies.js';
import { readMetadata } from '../../src/dicom/index.js';
import { DicomStore } from '../../src/service/dicom-store.js';
import { InferenceQueue } from '../../src/service/queue.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

test('the queue bounds waiting work, runs jobs in order, and a released reservation frees its slot', async () => {
  const started: string[] = [];
  const g = gate();
  const q = new InferenceQueue({
    capacity: 2,
    concurrency: 1,
    run: async (id) => {
      started.push(id);
      await g.opened;
    },
  });
  const a = q.reserve();
  const b = q.reserve();
  assert.ok(a && b, 'two slots');
  assert.equal(q.reserve(), null, 'full');
  a.commit('s1'); // starts running at once: no longer waiting
  b.release();
  const c = q.reserve()!;
  c.commit('s2');
  const d = q.reserve()!;
  d.commit('s3');
  assert.equal(q.reserve(), null, 'two waiting fill it again');
  assert.deepEqual([q.running, q.depth], [1, 2]);
  g.open();
  await q.whenDone('s3');
  assert.deepEqual(started, ['s1', 's2', 's3']);
  assert.deepEqual([q.running, q.depth], [0, 0]);
  q.enqueueRecovered('s4');
  q.enqueueRecovered('s4'); // a recovered id already queued is not queued twice
  await q.whenDone('s4');
  assert.deepEqual(started, ['s1', 's2', 's3', 's4']);
});

test('stopping the queue lets the running job finish and releases waiters of the rest', async () => {
  const g = gate();
  const done: string[] = [];
  const q = new InferenceQueue({
    capacity: 5,
    concurrency: 1,
    run: async (id) => {
      await g.opened;
      done.push(id);
    },
  });
  for (const id of ['x', 'y', 'z']) q.reserve()!.commit(id);
  const stopping = q.stop();
  await q.whenDone('z'); // not run, but its waiter is released
  assert.equal(q.reserve(), null, 'a stopped queue takes nothing');
  g.open();
  await stopping;
  assert.deepEqual(done, ['x']);
});

test('after a crash between accept and scoring, a restart scores every accepted study exactly once', async () => {
  // What a crash right after the commit leaves behind: the original durably stored and a
  // `queued` row, with no process left to score it.
  const store = new DicomStore(h.settings.dicomDir);
  const ids: string[] = [];
  for (let seed = 300; seed < 305; seed++) {
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
        submittedBy: 'ws-crashed',
        receivedAt: new Date(),
      }),
    );
    ids.push(row.id);
  }
  // Two services start on the same database (a restart racing a second replica): both recover.
  const [p1, p2] = await Promise.all([h.restart(), h.restart()]);
  assert.equal(p1.recovered + p2.recovered >= ids.length, true, 'every queued study was picked up');
  for (const id of ids) await waitScored(h, id);
  const rows: { study_id: string; n: number }[] = await h.db.ds.query(
    `SELECT s.id AS study_id, count(p.id)::int AS n FROM studies s LEFT JOIN predictions p ON p.study_id = s.id WHERE s.submitted_by = 'ws-crashed' GROUP BY s.id`,
  );
  assert.equal(rows.length, ids.length);
  for (const r of rows) assert.equal(r.n, 1, `study ${r.study_id} has ${r.n} predictions`);
  const statuses: { status: string }[] = await h.db.ds.query(`SELECT DISTINCT status FROM studies WHERE submitted_by = 'ws-crashed'`);
  assert.deepEqual(statuses, [{ status: 'scored' }]);
});

test('a study whose stored original went missing fails visibly instead of vanishing', async () => {
  // A queued row whose file is gone (a store restored from an older backup).
  const [{ id }] = await h.db.ds.query(
    `INSERT INTO studies (id, study_instance_uid, series_instance_uid, sop_instance_uid, sha256, size_bytes, submitted_by, received_at)
     VALUES ($1, '1.2', '1.2.3', '1.2.3.4', $2, 10, 'ws-x', now()) RETURNING id`,
    [randomUUID(), 'e'.repeat(64)],
  );
  h.parts.service.queue.enqueueRecovered(id);
  await waitScored(h, id);
  const wl = await h.http.get('/v1/worklist?status=failed').set('Authorization', `Bearer ${h.token('clinician')}`);
  const item = wl.body.items.find((i: { studyId: string }) => i.studyId === id);
  assert.deepEqual([item.flagged, item.errorCode, item.status], [true, 'E_NOT_FOUND', 'failed']);
});

test('activating another model version swaps the engine; new predictions record it; a broken version is refused', async () => {
  await createRandomModels(h.modelsDir, { size: 'small', seed: 2, threshold: 0.45, version: 'random-v2' });
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
  await createRandomModels(h.modelsDir, { size: 'small', seed: 3, version: 'random-broken' });
  await (await import('node:fs/promises')).appendFile(join(h.modelsDir, 'classifier', 'random-broken', 'model.onnx'), 'x');
  const broken = await h.http.post('/v1/admin/models/classifier/random-broken/activate').set('Authorization', admin);
  assert.equal(broken.status, 409);
  assert.match(broken.body.error.message, /cannot be served/);
  assert.equal((await readFile(join(h.modelsDir, 'classifier', 'ACTIVE'), 'utf8')).trim(), 'random-v2');
  assert.equal(h.parts.service.models.classifier.version, 'random-v2');
});
