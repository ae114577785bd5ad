/**
 * Stored files in PostgreSQL (CXR_STORE=pg): one `objects` row per sha256 and its bytes as
 * `object_chunks` rows of at most CHUNK_BYTES, written in the caller's transaction and read
 * back a chunk at a time. Also the per-object advisory lock that keeps storing, recording and
 * garbage-collecting one object from interleaving, whichever store holds its bytes.
 */
import type { DataSource, EntityManager } from 'typeorm';

/** 1 MiB: a 2048x2048 16-bit film is 8 rows; no statement carries a whole file. */
export const CHUNK_BYTES = 1 << 20;

/** Advisory-lock class for stored objects ("cxro"); the second key is taken from the sha256. */
const OBJECT_LOCK_CLASS = 0x6378_726f;

/**
 * Serialises everything done to one object until the transaction ends: storing it and
 * recording the study that names it, or checking that no study names it and deleting it.
 */
export async function lockObject(m: EntityManager, sha256: string): Promise<void> {
  await m.query('SELECT pg_advisory_xact_lock($1::int, $2::int)', [OBJECT_LOCK_CLASS | 0, Number.parseInt(sha256.slice(0, 8), 16) | 0]);
}

/** The shas among these that a study or a derived result object names (kept by the garbage collector). */
export async function referencedObjects(db: DataSource | EntityManager, shas: readonly string[]): Promise<Set<string>> {
  if (shas.length === 0) return new Set();
  const rows: { sha256: string }[] = await db.query(
    `SELECT sha256 FROM studies WHERE sha256 = ANY($1::char(64)[]) UNION SELECT sha256 FROM derived_objects WHERE sha256 = ANY($1::char(64)[])`,
    [shas],
  );
  return new Set(rows.map((r) => r.sha256));
}

/** Inserts the object's chunks unless it is already stored; true when this call wrote it. */
export async function insertObject(m: EntityManager, sha256: string, bytes: Uint8Array): Promise<boolean> {
  const chunks = Math.ceil(bytes.length / CHUNK_BYTES);
  const head: unknown[] = await m.query(
    `INSERT INTO objects (sha256, size_bytes, chunk_count) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING RETURNING sha256`,
    [sha256, bytes.length, chunks],
  );
  if (head.length === 0) return false;
  for (let i = 0; i < chunks; i++) {
    // A view on the caller's bytes, not a copy; pg sends Buffers as binary bytea.
    const part = Buffer.from(bytes.buffer, bytes.byteOffset + i * CHUNK_BYTES, Math.min(CHUNK_BYTES, bytes.length - i * CHUNK_BYTES));
    await m.query(`INSERT INTO object_chunks (sha256, idx, data) VALUES ($1, $2, $3)`, [sha256, i, part]);
  }
  return true;
}

export async function objectHead(db: DataSource | EntityManager, sha256: string): Promise<{ size: number; chunks: number; createdAt: Date } | null> {
  const rows: { size_bytes: string; chunk_count: number; created_at: Date }[] = await db.query(
    `SELECT size_bytes, chunk_count, created_at FROM objects WHERE sha256 = $1`,
    [sha256],
  );
  return rows[0] ? { size: Number(rows[0].size_bytes), chunks: rows[0].chunk_count, createdAt: rows[0].created_at } : null;
}

export async function readChunk(db: DataSource | EntityManager, sha256: string, idx: number): Promise<Buffer | null> {
  const rows: { data: Buffer }[] = await db.query(`SELECT data FROM object_chunks WHERE sha256 = $1 AND idx = $2`, [sha256, idx]);
  return rows[0]?.data ?? null;
}

export async function deleteObject(db: DataSource | EntityManager, sha256: string): Promise<void> {
  await db.query(`DELETE FROM objects WHERE sha256 = $1`, [sha256]);
}

/** A page of stored shas created before `before`, after `after` in sha order. */
export async function listObjects(db: DataSource | EntityManager, before: Date, after: string, limit: number): Promise<string[]> {
  const rows: { sha256: string }[] = await db.query(`SELECT sha256 FROM objects WHERE created_at < $1 AND sha256 > $2 ORDER BY sha256 LIMIT $3`, [
    before,
    after,
    limit,
  ]);
  return rows.map((r) => r.sha256);
}
