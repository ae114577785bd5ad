/**
 * The append-only, hash-chained audit log. Each row carries the previous row's hash and
 * hash = sha256(prev_hash || canonical JSON of its own content), so changing, removing or
 * reordering any row breaks every link after it. Appends take a transaction-scoped advisory
 * lock so that concurrent requests extend one chain instead of forking it.
 */
import { createHash } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { AuditRow } from './entities.js';
import { storableText } from './storable-text.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Arbitrary constant naming the chain-head lock (advisory locks are per database). */
const CHAIN_LOCK_KEY = 0x6378_7261_7564_6974n; // "cxraudit"

/** What a caller appends: a row without its sequence number, time and hashes (detail optional). */
export type AuditEntry = Pick<AuditRow, 'actor' | 'role' | 'action' | 'studyId' | 'requestId' | 'outcome'> & { detail?: Record<string, unknown> };

/** The fields the hash covers: everything but seq (gaps from rolled-back appends are harmless) and the hashes. */
export type AuditContent = Omit<AuditRow, 'seq' | 'at' | 'prevHash' | 'hash'> & { at: string };

/**
 * JSON with object keys sorted at every level and no whitespace, so the same content always
 * hashes the same however it was built or read back (jsonb reorders keys).
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  }
}

export function chainHash(prevHash: string, content: AuditContent): string {
  return createHash('sha256').update(prevHash, 'utf8').update(canonicalJson(content), 'utf8').digest('hex');
}

export function contentOf(row: Pick<AuditRow, 'at' | 'actor' | 'role' | 'action' | 'studyId' | 'requestId' | 'outcome' | 'detail'>): AuditContent {
  return {
    at: row.at.toISOString(),
    actor: row.actor,
    role: row.role,
    action: row.action,
    studyId: row.studyId,
    requestId: row.requestId,
    outcome: row.outcome,
    detail: row.detail,
  };
}

interface RawAuditRow {
  seq: string;
  at: Date;
  actor: string;
  role: string | null;
  action: string;
  study_id: string | null;
  request_id: string;
  outcome: string;
  detail: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const SELECT_COLUMNS = 'seq, at, actor, role, action, study_id, request_id, outcome, detail, prev_hash, hash';

function fromRaw(r: RawAuditRow): AuditRow {
  return {
    seq: String(r.seq),
    at: r.at,
    actor: r.actor,
    role: r.role,
    action: r.action,
    studyId: r.study_id,
    requestId: r.request_id,
    outcome: r.outcome,
    detail: r.detail,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/**
 * storableText over every string and key of a JSON value. A row is hashed from the values in
 * hand and verified from the values read back, so what it records is made storable first: a NUL
 * would fail the insert, an unpaired surrogate be stored unlike its hash and break verification
 * of the whole chain from there on.
 */
function storableJson(v: unknown): unknown {
  if (typeof v === 'string') return storableText(v);
  if (Array.isArray(v)) return v.map(storableJson);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), storableJson(x)]));
  return v;
}

/** Appends one row at the chain head in its own transaction. */
export async function appendAudit(ds: DataSource, entry: AuditEntry): Promise<AuditRow> {
  return ds.transaction((m) => appendAuditInTransaction(m, entry));
}

/**
 * Appends inside the caller's transaction, so the row commits or rolls back with the change
 * it describes. The advisory lock is held until that transaction ends.
 */
export async function appendAuditInTransaction(m: EntityManager, entry: AuditEntry): Promise<AuditRow> {
  await m.query('SELECT pg_advisory_xact_lock($1)', [CHAIN_LOCK_KEY.toString()]);
  const head: { hash: string }[] = await m.query('SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  const prevHash = head[0]?.hash ?? GENESIS_HASH;
  // Millisecond precision, so the timestamp read back from PostgreSQL is the one hashed.
  const at = new Date(Date.now());
  const detail = storableJson(JSON.parse(canonicalJson(entry.detail ?? {}))) as Record<string, unknown>;
  const content: AuditContent = {
    at: at.toISOString(),
    actor: storableText(entry.actor),
    role: entry.role,
    action: storableText(entry.action),
    studyId: entry.studyId,
    requestId: storableText(entry.requestId),
    outcome: storableText(entry.outcome),
    detail,
  };
  const hash = chainHash(prevHash, content);
  const rows: RawAuditRow[] = await m.query(
    `INSERT INTO audit_log (at, actor, role, action, study_id, request_id, outcome, detail, prev_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${SELECT_COLUMNS}`,
    [at, content.actor, entry.role, content.action, entry.studyId, content.requestId, content.outcome, JSON.stringify(detail), prevHash, hash],
  );
  return fromRaw(rows[0]);
}

export interface AuditVerification {
  ok: boolean;
  checked: number;
  /** hash of the last row: publish it elsewhere to detect truncation of the newest rows */
  headHash: string;
  headSeq: string | null;
  firstBroken: { seq: string; reason: 'prev_hash_mismatch' | 'hash_mismatch'; expected: string; found: string } | null;
}

/** Recomputes the whole chain in seq order and reports the first row that does not hold. */
export async function verifyAuditChain(ds: DataSource, batchSize = 5000): Promise<AuditVerification> {
  let prev = GENESIS_HASH;
  let lastSeq: string | null = null;
  let checked = 0;
  // the verified head so far, and the first row that breaks the chain
  const broken = (firstBroken: NonNullable<AuditVerification['firstBroken']>): AuditVerification => ({
    ok: false,
    checked,
    headHash: prev,
    headSeq: lastSeq,
    firstBroken,
  });
  for (;;) {
    const raw: RawAuditRow[] = await ds.query(`SELECT ${SELECT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [lastSeq ?? '0', batchSize]);
    if (raw.length === 0) break;
    for (const r of raw) {
      const row = fromRaw(r);
      if (row.prevHash !== prev) return broken({ seq: row.seq, reason: 'prev_hash_mismatch', expected: prev, found: row.prevHash });
      const recomputed = chainHash(row.prevHash, contentOf(row));
      if (recomputed !== row.hash) return broken({ seq: row.seq, reason: 'hash_mismatch', expected: recomputed, found: row.hash });
      prev = row.hash;
      lastSeq = row.seq;
      checked++;
    }
  }
  return { ok: true, checked, headHash: prev, headSeq: lastSeq, firstBroken: null };
}

export interface AuditQuery {
  after?: string;
  limit: number;
  studyId?: string;
  actor?: string;
  action?: string;
  from?: Date;
  to?: Date;
}

/** One page of the log in chain order; `next` is the cursor for the following page. */
export async function listAudit(ds: DataSource, q: AuditQuery): Promise<{ items: AuditRow[]; next: string | null }> {
  const where: string[] = ['seq > $1'];
  const params: unknown[] = [q.after ?? '0'];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (q.studyId) add('study_id = ?', q.studyId);
  if (q.actor) add('actor = ?', q.actor);
  if (q.action) add('action = ?', q.action);
  if (q.from) add('at >= ?', q.from);
  if (q.to) add('at < ?', q.to);
  params.push(q.limit + 1);
  const raw: RawAuditRow[] = await ds.query(
    `SELECT ${SELECT_COLUMNS} FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $${params.length}`,
    params,
  );
  const items = raw.slice(0, q.limit).map(fromRaw);
  return { items, next: raw.length > q.limit ? items[items.length - 1].seq : null };
}
