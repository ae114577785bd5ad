/**
 * Building result objects from several processes: a failed build is recorded in the same
 * transaction that claimed the object, so no other process claims it again before its back-off.
 * Real PostgreSQL, two outboxes on two data sources, a real file store whose read fails.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { openDatabase } from '../../src/db/data-source.js';
import { registerModel } from '../../src/db/models.js';
import { insertStudyOnce, recordPrediction } from '../../src/db/studies.js';
import { FsObjectStore } from '../../src/service/fs-store.js';
import { silentLogger } from '../../src/service/log.js';
import { ResultsOutbox } from '../../src/service/outbox.js';
import { enqueueResults, type ResultsSettings } from '../../src/service/results.js';
import { createTestDatabase, instanceOf, positivePrediction, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let other: DataSource;
let root: string;
const settings: ResultsSettings = {
  destinations: [{ kind: 'stow', url: 'http://pacs/dicom-web/studies', auth: null }],
  maxAttempts: 3,
  retryDelayMs: 60_000,
  maxRetryDelayMs: 600_000,
  callingAeTitle: 'CXRTRIAGE',
};

before(async () => {
  db = await createTestDatabase();
  other = await openDatabase({ url: db.url, poolSize: 2 });
  root = await mkdtemp(join(tmpdir(), 'cxr-outbox-'));
});
after(async () => {
  await other?.destroy();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

test('a build that fails for a passing reason is recorded before the claim is released: a second process polling at that moment does not claim the same object again, and each object counts one attempt', async () => {
  const m = { manifest: {}, sha256: 'b'.repeat(64) };
  const seg = await registerModel(db.ds, { ...m, kind: 'segmenter', name: 'seg', version: 'v1' });
  const cls = await registerModel(db.ds, { ...m, kind: 'classifier', name: 'cls', version: 'v1' });
  const sha256 = 'c'.repeat(64);
  const { study } = await db.ds.transaction((tx) => insertStudyOnce(tx, instanceOf('1.2.826.0.9', 1, { sha256 })));
  const prediction = positivePrediction(seg.id, cls.id);
  await recordPrediction(db.ds, study.id, prediction, null, (tx, id) => enqueueResults(tx, settings, study, id));
  // the source film cannot be read for a passing reason (ELOOP: E_INTERNAL, retried after a back-off)
  const store = new FsObjectStore(root);
  await mkdir(join(root, sha256.slice(0, 2)), { recursive: true });
  await symlink(store.pathFor(sha256), store.pathFor(sha256));

  const a = new ResultsOutbox({ ds: db.ds, store, settings, log: silentLogger });
  const b = new ResultsOutbox({ ds: other, store, settings, log: silentLogger });
  // B polls the moment A's claiming transaction has committed
  let bFound: boolean | null = null;
  const transaction = db.ds.transaction.bind(db.ds) as (...args: unknown[]) => Promise<unknown>;
  (db.ds as { transaction: unknown }).transaction = async (...args: unknown[]) => {
    const r = await transaction(...args);
    if (bFound === null) bFound = await b.buildNext();
    return r;
  };
  try {
    assert.equal(await a.buildNext(), true);
  } finally {
    (db.ds as { transaction: unknown }).transaction = transaction;
  }
  // two objects wait (the SR and the SC): B took the other one, not the one A had just failed on
  assert.equal(bFound, true);
  const rows: { kind: string; build_attempts: number; build_error: string | null; backing_off: boolean }[] = await db.ds.query(
    `SELECT kind, build_attempts, build_error, next_build_at > now() + interval '30 seconds' AS backing_off FROM derived_objects ORDER BY kind`,
  );
  assert.deepEqual(
    rows.map((r) => [r.kind, r.build_attempts, r.build_error, r.backing_off]),
    [
      ['sc', 1, null, true],
      ['sr', 1, null, true],
    ],
  );
  // both back off now: nothing is due for either process
  assert.equal(await a.buildNext(), false);
  assert.equal(await b.buildNext(), false);
});
