/**
 * The results outbox rows in PostgreSQL: written in the prediction's transaction (rolled back
 * with it), idempotent, claimed only once built and only once at a time, settled to pending
 * (with a later due time), delivered or failed; the per-study status; built objects as
 * instances of their study and kept by the store's garbage collector.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { derivedUids } from '../../src/dicom/derived.js';
import { registerModel } from '../../src/db/models.js';
import { referencedObjects } from '../../src/db/objects.js';
import { claimDelivery, claimUnbuilt, markBuilt, settleDelivery, studyDeliveries, type DerivedObjectRow } from '../../src/db/results.js';
import { insertStudyOnce, recordPrediction, type NewPrediction } from '../../src/db/studies.js';
import { enqueueResults, type ResultsSettings } from '../../src/service/results.js';
import { createTestDatabase, instanceOf, positivePrediction, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let prediction: NewPrediction;
const settings: ResultsSettings = {
  destinations: [
    { kind: 'stow', url: 'http://pacs/dicom-web/studies', auth: 'Basic eDp5' },
    { kind: 'dimse', aeTitle: 'PACS', host: 'pacs', port: 104 },
  ],
  maxAttempts: 3,
  retryDelayMs: 1000,
  maxRetryDelayMs: 10_000,
  callingAeTitle: 'CXRTRIAGE',
};

before(async () => {
  db = await createTestDatabase();
  const m = { manifest: {}, sha256: 'b'.repeat(64) };
  const seg = await registerModel(db.ds, { ...m, kind: 'segmenter', name: 'seg', version: 'v1' });
  const cls = await registerModel(db.ds, { ...m, kind: 'classifier', name: 'cls', version: 'v1' });
  prediction = positivePrediction(seg.id, cls.id);
});
after(async () => {
  await db?.drop();
});

async function newStudy(n: number, submittedBy = 'ws-1') {
  const uid = `1.2.826.0.1.${n}`;
  const { study } = await db.ds.transaction((m) =>
    insertStudyOnce(m, instanceOf(uid, 1, { sopClassUid: '1.2.840.10008.5.1.4.1.1.1', sha256: `${n}`.padStart(64, 'a'), submittedBy })),
  );
  return study;
}

const count = async (sql: string, params: unknown[] = []) => ((await db.ds.query(sql, params)) as { n: number }[])[0].n;

test('the objects and one pending delivery per destination are written with the prediction; a second enqueue adds nothing', async () => {
  const s = await newStudy(1);
  let pid = '';
  assert.equal(
    await recordPrediction(db.ds, s.id, prediction, null, async (m, id) => {
      pid = id;
      await enqueueResults(m, settings, s, id);
      await enqueueResults(m, settings, s, id);
    }),
    true,
  );
  const objects: { kind: string; sop_instance_uid: string; series_instance_uid: string; modality: string; series_number: number; sha256: string | null }[] =
    await db.ds.query(
      `SELECT kind, sop_instance_uid, series_instance_uid, modality, series_number, sha256 FROM derived_objects WHERE source_id = $1 ORDER BY kind`,
      [s.id],
    );
  const unbuilt = (kind: 'sc' | 'sr', modality: string, seriesNumber: number) => {
    const uids = derivedUids(kind, s.sopInstanceUid, pid);
    return { kind, sop_instance_uid: uids.sopInstanceUid, series_instance_uid: uids.seriesInstanceUid, modality, series_number: seriesNumber, sha256: null };
  };
  assert.deepEqual(objects, [unbuilt('sc', 'OT', 9902), unbuilt('sr', 'SR', 9901)]);
  const deliveries: { destination: string; status: string; attempts: number; max_attempts: number }[] = await db.ds.query(
    `SELECT r.destination, r.status, r.attempts, r.max_attempts FROM result_deliveries r JOIN derived_objects d ON d.id = r.object_id WHERE d.source_id = $1 ORDER BY d.kind, r.destination`,
    [s.id],
  );
  assert.deepEqual(
    deliveries.map((d) => [d.destination, d.status, d.attempts, d.max_attempts]),
    [
      ['dimse:PACS@pacs:104', 'pending', 0, 3],
      ['stow:http://pacs/dicom-web/studies', 'pending', 0, 3],
      ['dimse:PACS@pacs:104', 'pending', 0, 3],
      ['stow:http://pacs/dicom-web/studies', 'pending', 0, 3],
    ],
  );
});

test('a prediction whose transaction fails leaves no result objects and no deliveries (they commit together)', async () => {
  const s = await newStudy(2);
  await assert.rejects(
    recordPrediction(db.ds, s.id, prediction, null, async (m, id) => {
      await enqueueResults(m, settings, s, id);
      throw new Error('the transaction dies after the outbox rows');
    }),
    /transaction dies/,
  );
  assert.equal(await count(`SELECT count(*)::int AS n FROM predictions WHERE study_id = $1`, [s.id]), 0);
  assert.equal(await count(`SELECT count(*)::int AS n FROM derived_objects WHERE source_id = $1`, [s.id]), 0);
  const [row] = await db.ds.query(`SELECT status FROM studies WHERE id = $1`, [s.id]);
  assert.equal(row.status, 'queued');
});

test('deliveries are claimed only once their object is built, once at a time; settled pending waits its delay; delivered and failed are final', async () => {
  // nothing is built yet: nothing to send
  assert.equal(await claimDelivery(db.ds, 60_000), null);
  const objs: DerivedObjectRow[] = (await db.ds.query(`SELECT id FROM derived_objects ORDER BY id`)) as DerivedObjectRow[];
  await db.ds.transaction((m) => markBuilt(m, String(objs[0].id), { sha256: 'e'.repeat(64), size: 10, rows: null, columns: null }));
  const first = await claimDelivery(db.ds, 60_000);
  const second = await claimDelivery(db.ds, 60_000);
  assert.ok(first && second);
  assert.notEqual(first.id, second.id);
  assert.deepEqual([first.attempts, second.attempts], [1, 1]);
  assert.equal(first.object.sha256, 'e'.repeat(64));
  // both deliveries of the built object are out (leased); the other object is not built
  assert.equal(await claimDelivery(db.ds, 60_000), null);
  await db.ds.transaction((m) => settleDelivery(m, first.id, { status: 'pending', retryInMs: 0, code: 'E_DESTINATION', message: 'refused' }));
  await db.ds.transaction((m) => settleDelivery(m, second.id, { status: 'delivered' }));
  const again = await claimDelivery(db.ds, 60_000);
  assert.equal(again?.id, first.id, 'due again at once (no delay)');
  assert.equal(again?.attempts, 2);
  await db.ds.transaction((m) => settleDelivery(m, again!.id, { status: 'pending', retryInMs: 60_000, code: 'E_DESTINATION', message: 'refused' }));
  assert.equal(await claimDelivery(db.ds, 60_000), null, 'not before its retry delay');
  await db.ds.query(`UPDATE result_deliveries SET next_attempt_at = now() WHERE id = $1`, [first.id]);
  const last = await claimDelivery(db.ds, 60_000);
  await db.ds.transaction((m) => settleDelivery(m, last!.id, { status: 'failed', code: 'E_DESTINATION', message: 'refused for good' }));
  await db.ds.query(`UPDATE result_deliveries SET next_attempt_at = now() - interval '1 hour'`);
  assert.equal(await claimDelivery(db.ds, 60_000), null, 'delivered and failed are never sent again');
  const status = await studyDeliveries(db.ds, '1.2.826.0.1.1');
  const built = status.filter((d) => d.built);
  assert.deepEqual(
    built.map((d) => [d.status, d.attempts, d.lastErrorCode]).sort(),
    [
      ['delivered', 1, null],
      ['failed', 3, 'E_DESTINATION'],
    ].sort(),
  );
  assert.deepEqual(await studyDeliveries(db.ds, '1.2.826.0.1.1', 'ws-other'), [], "a workstation sees only its own studies' results");
});

test('a built object is an instance of its study (view dicom_instances), sorts after its source, and its stored file is kept by the collector', async () => {
  const rows: { sop_instance_uid: string; derived: boolean; modality: string }[] = await db.ds.query(
    `SELECT sop_instance_uid, derived, modality FROM dicom_instances WHERE study_instance_uid = '1.2.826.0.1.1' ORDER BY seq`,
  );
  assert.deepEqual(
    rows.map((r) => [r.derived, r.modality]),
    [
      [false, 'CR'],
      [true, 'SR'],
    ],
    'the original, then its one built object (the unbuilt one is not listed)',
  );
  assert.deepEqual([...(await referencedObjects(db.ds, ['e'.repeat(64), 'f'.repeat(64)]))], ['e'.repeat(64)]);
});

test('while scoring is busy only objects a pending delivery waits for are claimed to build; when idle, the rest too', async () => {
  // earlier tests left objects of their own: this one looks only at its two studies' objects
  await db.ds.query(`UPDATE derived_objects SET build_error = 'set aside by this test' WHERE sha256 IS NULL`);
  const awaited = await newStudy(41);
  const servedOnly = await newStudy(42);
  await recordPrediction(db.ds, awaited.id, prediction, null, (m, id) => enqueueResults(m, settings, awaited, id));
  await recordPrediction(db.ds, servedOnly.id, prediction, null, (m, id) => enqueueResults(m, { ...settings, destinations: [] }, servedOnly, id));
  // each claim holds its row until its transaction ends, as a dispatcher's does: claim again from
  // another transaction while holding it, until none is left
  const claimedWhile = async (busy: boolean) => {
    const seen: string[] = [];
    const claimRest = (): Promise<void> =>
      db.ds.transaction(async (m) => {
        const o = await claimUnbuilt(m, busy);
        if (!o) return;
        seen.push(`${o.sourceId === awaited.id ? 'awaited' : 'served-only'}:${o.kind}`);
        await claimRest();
      });
    await claimRest();
    return seen.sort();
  };
  assert.deepEqual(await claimedWhile(true), ['awaited:sc', 'awaited:sr']);
  assert.deepEqual(await claimedWhile(false), ['awaited:sc', 'awaited:sr', 'served-only:sc', 'served-only:sr']);
  // a delivery that is over (delivered or failed) no longer makes its object urgent
  await db.ds.query(`UPDATE result_deliveries SET status = 'failed', last_error_code = 'E_DESTINATION', last_error = 'refused' WHERE status = 'pending'`);
  assert.deepEqual(await claimedWhile(true), []);
});
