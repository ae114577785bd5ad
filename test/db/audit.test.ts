/** The hash-chained audit log against a real PostgreSQL: append, verify, tamper, refuse changes. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendAudit, canonicalJson, chainHash, GENESIS_HASH, listAudit, verifyAuditChain, type AuditContent } from '../../src/db/audit.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

const entry = (i: number) => ({
  actor: `user-${i}`,
  role: 'clinician',
  action: 'study.read',
  studyId: null,
  requestId: `req-${i}`,
  outcome: 'ok',
  detail: { i, nested: { b: [1, 'two'], a: true } },
});

test('canonical JSON sorts keys at every level and has no whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: null }], c: 'x' } }), '{"a":{"c":"x","d":[3,{"y":null,"z":1}]},"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
  assert.equal(canonicalJson(new Date('2025-01-02T03:04:05.678Z')), '"2025-01-02T03:04:05.678Z"');
  assert.throws(() => canonicalJson({ x: Number.NaN }), TypeError);
});

test('a row hash is sha256 of the previous hash followed by the canonical JSON of the content', () => {
  const content: AuditContent = {
    at: '2025-01-02T03:04:05.678Z',
    actor: 'a',
    role: null,
    action: 'x',
    studyId: null,
    requestId: 'r',
    outcome: 'ok',
    detail: { k: 1 },
  };
  const expected = createHash('sha256')
    .update(
      `${GENESIS_HASH}{"action":"x","actor":"a","at":"2025-01-02T03:04:05.678Z","detail":{"k":1},"outcome":"ok","requestId":"r","role":null,"studyId":null}`,
    )
    .digest('hex');
  assert.equal(chainHash(GENESIS_HASH, content), expected);
});

test('appended rows link to their predecessor and the chain verifies', async () => {
  const first = await appendAudit(db.ds, entry(1));
  assert.equal(first.prevHash, GENESIS_HASH);
  const second = await appendAudit(db.ds, entry(2));
  assert.equal(second.prevHash, first.hash);
  const v = await verifyAuditChain(db.ds);
  assert.equal(v.ok, true);
  assert.equal(v.headHash, second.hash);
  assert.equal(v.firstBroken, null);
});

test('concurrent appends extend one chain: no two rows share a predecessor', async () => {
  await Promise.all(Array.from({ length: 40 }, (_, i) => appendAudit(db.ds, entry(100 + i))));
  const rows: { prev_hash: string }[] = await db.ds.query('SELECT prev_hash FROM audit_log');
  assert.equal(new Set(rows.map((r) => r.prev_hash)).size, rows.length);
  const v = await verifyAuditChain(db.ds, 7); // small batches exercise the paging of the verifier
  assert.equal(v.ok, true);
  assert.equal(v.checked, rows.length);
});

test('the database refuses UPDATE, DELETE and TRUNCATE on the audit log', async () => {
  await assert.rejects(db.ds.query(`UPDATE audit_log SET outcome = 'forged'`), /append-only: UPDATE refused/);
  await assert.rejects(db.ds.query(`DELETE FROM audit_log`), /append-only: DELETE refused/);
  await assert.rejects(db.ds.query(`TRUNCATE audit_log`), /append-only: TRUNCATE refused/);
  assert.equal((await verifyAuditChain(db.ds)).ok, true);
});

test('paging lists the log in chain order with a cursor, and filters by actor', async () => {
  const page1 = await listAudit(db.ds, { limit: 5 });
  assert.equal(page1.items.length, 5);
  assert.ok(page1.next, 'page1.next');
  const page2 = await listAudit(db.ds, { limit: 5, after: page1.next });
  assert.equal(page2.items[0].prevHash, page1.items[4].hash);
  const mine = await listAudit(db.ds, { limit: 100, actor: 'user-2' });
  assert.deepEqual(
    mine.items.map((r) => r.requestId),
    ['req-2'],
  );
});

test('a row changed behind the trigger is reported as the first broken row', async () => {
  const su = await db.superuser();
  const rows: { seq: string }[] = await db.ds.query('SELECT seq FROM audit_log ORDER BY seq');
  const victim = rows[10].seq;
  // Tampering as a superuser would: disable the guard, rewrite history, re-enable it.
  await su.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
  await su.query(`UPDATE audit_log SET outcome = 'forged' WHERE seq = $1`, [victim]);
  await su.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
  const v = await verifyAuditChain(db.ds);
  assert.equal(v.ok, false);
  assert.equal(v.firstBroken?.seq, victim);
  assert.equal(v.firstBroken?.reason, 'hash_mismatch');
  assert.equal(v.checked, 10);

  // Recomputing the forged row's own hash only moves the break to the link after it.
  const forged: {
    prev_hash: string;
    at: Date;
    actor: string;
    role: string;
    action: string;
    study_id: null;
    request_id: string;
    outcome: string;
    detail: Record<string, unknown>;
  }[] = await su.query('SELECT * FROM audit_log WHERE seq = $1', [victim]).then((r) => r.rows);
  const f = forged[0];
  const rehash = chainHash(f.prev_hash, {
    at: f.at.toISOString(),
    actor: f.actor,
    role: f.role,
    action: f.action,
    studyId: f.study_id,
    requestId: f.request_id,
    outcome: f.outcome,
    detail: f.detail,
  });
  await su.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
  await su.query(`UPDATE audit_log SET hash = $2 WHERE seq = $1`, [victim, rehash]);
  await su.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
  const v2 = await verifyAuditChain(db.ds);
  assert.equal(v2.ok, false);
  assert.equal(v2.firstBroken?.seq, rows[11].seq);
  assert.equal(v2.firstBroken?.reason, 'prev_hash_mismatch');
});

test('a row deleted from the middle breaks the link of its successor', async () => {
  const other = await createTestDatabase();
  try {
    for (let i = 0; i < 5; i++) await appendAudit(other.ds, entry(i));
    const su = await other.superuser();
    await su.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
    await su.query('DELETE FROM audit_log WHERE seq = 3');
    await su.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
    const v = await verifyAuditChain(other.ds);
    assert.equal(v.ok, false);
    assert.deepEqual([v.firstBroken?.seq, v.firstBroken?.reason], ['4', 'prev_hash_mismatch']);
  } finally {
    await other.drop();
  }
});

test('a NUL or an unpaired surrogate in what a row records is stored as U+FFFD and hashed so: the row inserts and the chain still verifies', async () => {
  const own = await createTestDatabase();
  try {
    const row = await appendAudit(own.ds, {
      actor: 'x\ud800y\u0000',
      role: null,
      action: 'auth.session',
      studyId: null,
      requestId: 'r\udc00',
      outcome: 'E_UNAUTHENTICATED',
      detail: { name: 'a\ud83d', ['k\u0000']: ['\udc00b', 'ok \ud83d\ude00'] },
    });
    assert.equal(row.actor, 'x\ufffdy\ufffd');
    assert.equal(row.requestId, 'r\ufffd');
    assert.deepEqual(row.detail, { name: 'a\ufffd', 'k\ufffd': ['\ufffdb', 'ok \ud83d\ude00'] });
    await appendAudit(own.ds, entry(1));
    const v = await verifyAuditChain(own.ds);
    assert.equal(v.firstBroken, null);
    assert.equal(v.ok, true);
    assert.equal(v.checked, 2);
  } finally {
    await own.drop();
  }
});
