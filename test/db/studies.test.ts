/**
 * Study, prediction and review rows with chosen values: the worklist's order and filters,
 * keyset pagination, the auditor's prediction filters, and exactly-once inserts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { registerModel } from '../../src/db/models.js';
import { worklistCounts } from '../../src/db/stats.js';
import { listPredictions } from '../../src/db/predictions.js';
import {
  addReview,
  insertStudyOnce,
  recordFailure,
  recordPrediction,
  settledStudies,
  worklist,
  type NewPrediction,
  type WorklistKey,
} from '../../src/db/studies.js';
import { createTestDatabase, instanceOf, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let segId: number;
let clsId: number;
let cls2Id: number;
const ids: Record<string, string> = {};

function prediction(p: number, flagged: boolean, classifierId = clsId): NewPrediction {
  return {
    segmenterId: segId,
    classifierId,
    probability: p,
    threshold: 0.5,
    targetRecall: 0.95,
    decision: p >= 0.5 ? 'positive' : 'negative',
    flagged,
    flagReasons: flagged ? (p >= 0.5 ? ['positive'] : ['uncertain']) : [],
    ttaViews: 4,
    ttaSpread: 0.01,
    qcFlags: [],
    lungAreaFraction: 0.3,
    timingsMs: { total: 10 },
    report: { probability: p },
  };
}

async function newStudy(name: string): Promise<string> {
  const { study, created } = await db.ds.transaction((m) => insertStudyOnce(m, instanceOf(`1.2.3.${name}`, 1)));
  assert.equal(created, true);
  ids[name] = study.id;
  return study.id;
}

before(async () => {
  db = await createTestDatabase();
  const m = { manifest: {}, sha256: 'b'.repeat(64) };
  segId = (await registerModel(db.ds, { ...m, kind: 'segmenter', name: 'segmenter', version: 'v1' })).id;
  clsId = (await registerModel(db.ds, { ...m, kind: 'classifier', name: 'classifier', version: 'v1' })).id;
  cls2Id = (await registerModel(db.ds, { ...m, kind: 'classifier', name: 'classifier', version: 'v2', sha256: 'c'.repeat(64) })).id;
  // name: probability, flagged
  const plan: [string, number, boolean, number?][] = [
    ['lowFlag', 0.2, true],
    ['high', 0.9, true],
    ['mid', 0.6, true, cls2Id],
    ['neg1', 0.3, false],
    ['neg2', 0.1, false],
    ['tie1', 0.6, true],
  ];
  for (const [name, p, flagged, cid] of plan) {
    const id = await newStudy(name);
    assert.equal(await recordPrediction(db.ds, id, prediction(p, flagged, cid)), true);
  }
  await recordFailure(db.ds, await newStudy('broken'), 'E_DECODE_FAILED', 'codec said no');
  await newStudy('waiting'); // accepted, not scored: not on the worklist
  await db.ds.transaction(async (m) => {
    await addReview(m, { studyId: ids.high, predictionId: '2', reviewer: 'dr', verdict: 'agree', note: '' });
    await addReview(m, { studyId: ids.neg1, predictionId: '4', reviewer: 'dr', verdict: 'agree', note: '' });
    await addReview(m, { studyId: ids.neg1, predictionId: '4', reviewer: 'dr2', verdict: 'disagree', note: 'consolidation' });
  });
});

after(async () => {
  await db?.drop();
});

const names = (rows: { studyId: string }[]) => rows.map((r) => Object.keys(ids).find((k) => ids[k] === r.studyId));

test('the worklist puts unscorable studies first, then flagged by probability, then the rest by probability', async () => {
  const rows = await worklist(db.ds, {}, null, 100);
  // tie1 and mid share 0.6: the later arrival (tie1) first
  assert.deepEqual(names(rows), ['broken', 'high', 'tie1', 'mid', 'lowFlag', 'neg1', 'neg2']);
  assert.deepEqual(rows[0].flagReasons, ['failed']);
  assert.equal(rows[0].errorCode, 'E_DECODE_FAILED');
});

test('keyset pagination walks the same order without repeats or gaps', async () => {
  const seen: string[] = [];
  let after: WorklistKey | null = null;
  for (;;) {
    const page = await worklist(db.ds, {}, after, 2);
    if (page.length === 0) break;
    seen.push(...(names(page) as string[]));
    after = page[page.length - 1].key;
  }
  assert.deepEqual(seen, ['broken', 'high', 'tie1', 'mid', 'lowFlag', 'neg1', 'neg2']);
});

test('worklist filters: flagged, decision, reviewed, status', async () => {
  assert.deepEqual(names(await worklist(db.ds, { flagged: false }, null, 100)), ['neg1', 'neg2']);
  assert.deepEqual(names(await worklist(db.ds, { decision: 'positive' }, null, 100)), ['high', 'tie1', 'mid']);
  assert.deepEqual(names(await worklist(db.ds, { reviewed: true }, null, 100)), ['high', 'neg1']);
  assert.deepEqual(names(await worklist(db.ds, { status: 'failed' }, null, 100)), ['broken']);
  const neg1 = (await worklist(db.ds, { reviewed: true, flagged: false }, null, 100))[0];
  assert.deepEqual([neg1.reviewCount, neg1.lastVerdict], [2, 'disagree']);
});

test('prediction history filters by model version, decision, review and latest verdict', async () => {
  const pnames = async (f: Parameters<typeof listPredictions>[1]) =>
    (await listPredictions(db.ds, f, null, 100)).map((r) => Object.keys(ids).find((k) => ids[k] === r.studyId));
  assert.deepEqual(await pnames({}), ['tie1', 'neg2', 'neg1', 'mid', 'high', 'lowFlag']);
  assert.deepEqual(await pnames({ model: 'classifier@v2' }), ['mid']);
  assert.deepEqual(await pnames({ model: 'v2' }), ['mid']);
  assert.deepEqual(await pnames({ decision: 'negative', flagged: true }), ['lowFlag']);
  assert.deepEqual(await pnames({ reviewed: false }), ['tie1', 'neg2', 'mid', 'lowFlag']);
  assert.deepEqual(await pnames({ agreement: 'disagree' }), ['neg1']);
  assert.deepEqual(await pnames({ agreement: 'agree' }), ['high']);
  assert.deepEqual(await pnames({ from: new Date(Date.now() + 60_000) }), []);
  const rec = (await listPredictions(db.ds, { agreement: 'disagree' }, null, 1))[0];
  assert.deepEqual([rec.classifier, rec.segmenter, rec.reviewCount, rec.lastReviewer], ['classifier@v1', 'segmenter@v1', 2, 'dr2']);
  const [first] = await listPredictions(db.ds, {}, null, 1);
  const rest = await listPredictions(db.ds, {}, first.predictionId, 100);
  assert.equal(rest.length, 5);
});

test('a second prediction for a study is ignored and a second insert of a SOP Instance UID creates nothing', async () => {
  assert.equal(await recordPrediction(db.ds, ids.high, prediction(0.01, false)), false);
  const rows: { probability: number }[] = await db.ds.query('SELECT probability FROM predictions WHERE study_id = $1', [ids.high]);
  assert.deepEqual(rows, [{ probability: 0.9 }]);
  const again = await db.ds.transaction((m) =>
    insertStudyOnce(m, {
      id: randomUUID(),
      studyInstanceUid: 'x',
      seriesInstanceUid: 'y',
      sopInstanceUid: '1.2.3.high.1.1',
      sopClassUid: null,
      patientPseudonym: null,
      modality: null,
      viewPosition: null,
      bodyPart: null,
      transferSyntax: null,
      imageRows: null,
      imageColumns: null,
      sha256: 'a'.repeat(64),
      sizeBytes: '1',
      submittedBy: 'ws2',
      receivedAt: new Date(),
    }),
  );
  assert.deepEqual([again.created, again.study.id], [false, ids.high]);
});

test('a model version whose weights changed under the same version is refused', async () => {
  await assert.rejects(
    registerModel(db.ds, { kind: 'classifier', name: 'classifier', version: 'v1', sha256: 'f'.repeat(64), manifest: {} }),
    (e: Error & { code?: string }) => e.code === 'E_MODEL_INVALID',
  );
});

test('instances of one study committed by two transactions at once leave one worklist row that counts both', async () => {
  // Each round commits both writers together; the per-study lock taken at commit makes the
  // second recompute read what the first committed, so the row never keeps one writer's view.
  for (let round = 0; round < 12; round++) {
    const uid = `1.2.9.${round}`;
    const runners = [db.ds.createQueryRunner(), db.ds.createQueryRunner()];
    try {
      await Promise.all(runners.map((r) => r.startTransaction()));
      for (const [n, r] of runners.entries()) {
        const p = n === 0 ? 0.2 : 0.8;
        const { study } = await insertStudyOnce(r.manager, instanceOf(uid, n + 1));
        await r.query(`UPDATE studies SET status = 'scored', scored_at = now() WHERE id = $1`, [study.id]);
        const pr = prediction(p, p >= 0.5);
        await r.query(
          `INSERT INTO predictions (study_id, segmenter_id, classifier_id, probability, threshold, target_recall, decision, flagged, flag_reasons, tta_views, tta_spread, qc_flags, lung_area_fraction, timings_ms, report, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now())`,
          [
            study.id,
            pr.segmenterId,
            pr.classifierId,
            pr.probability,
            pr.threshold,
            pr.targetRecall,
            pr.decision,
            pr.flagged,
            pr.flagReasons,
            pr.ttaViews,
            pr.ttaSpread,
            pr.qcFlags,
            pr.lungAreaFraction,
            pr.timingsMs,
            pr.report,
          ],
        );
      }
      await Promise.all(runners.map((r) => r.commitTransaction()));
    } finally {
      await Promise.all(runners.map((r) => r.release()));
    }
    const [row] = await worklist(db.ds, { studyInstanceUid: uid }, null, 10);
    assert.equal(row.scoredImages, 2, `round ${round}`);
    assert.equal(row.instances.length, 2);
    assert.equal(row.probability, 0.8, 'the most suspicious frontal result decides');
    assert.equal(row.flagged, true);
  }
});

test('a review updates the study row at once: review count, last verdict and the reviewed filter', async () => {
  const id = await newStudy('reviewedLater');
  assert.equal(await recordPrediction(db.ds, id, prediction(0.7, true)), true);
  const before = await worklist(db.ds, { studyInstanceUid: '1.2.3.reviewedLater', reviewed: false }, null, 10);
  assert.equal(before.length, 1);
  assert.equal(before[0].reviewCount, 0);
  const [{ id: predictionId }]: { id: string }[] = await db.ds.query('SELECT id FROM predictions WHERE study_id = $1', [id]);
  await db.ds.transaction((m) => addReview(m, { studyId: id, predictionId, reviewer: 'dr', verdict: 'disagree', note: '' }));
  const [after] = await worklist(db.ds, { studyInstanceUid: '1.2.3.reviewedLater', reviewed: true }, null, 10);
  assert.equal(after.reviewCount, 1);
  assert.equal(after.lastVerdict, 'disagree');
});

test('worklist counts are in studies and agree with the worklist filters', async () => {
  const counts = await worklistCounts(db.ds);
  const all = async (f: Parameters<typeof worklist>[1]) => (await worklist(db.ds, f, null, 10_000)).length;
  assert.equal(counts.flaggedUnreviewed, await all({ flagged: true, reviewed: false }));
  assert.equal(counts.unreviewed, await all({ reviewed: false }));
  const [{ n }]: { n: number }[] = await db.ds.query(`SELECT count(DISTINCT study_instance_uid)::int AS n FROM studies WHERE status = 'queued'`);
  assert.equal(counts.awaitingScore, n);
  assert.ok(counts.awaitingScore >= 1, "the 'waiting' study is accepted and not scored");
  assert.ok(counts.flaggedUnreviewed >= 4);
});

test('settledStudies names, of the ids asked, the studies no longer queued (scored or failed), in one query', async () => {
  const asked = [ids.high, ids.broken, ids.waiting, randomUUID()];
  assert.deepEqual((await settledStudies(db.ds, asked)).sort(), [ids.high, ids.broken].sort());
  assert.deepEqual(await settledStudies(db.ds, []), []);
});
