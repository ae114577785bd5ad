/**
 * One interface for stored files — DICOM originals and anything derived from them — so every
 * process of a deployment reads what any other stored: a local directory (`fs`, the default;
 * a shared volume when processes run on several machines) or PostgreSQL itself (`pg`).
 * Objects are content-addressed by sha256 and immutable; storing the same bytes twice is a no-op.
 */
import { createHash } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { lockObject, referencedObjects } from '../db/objects.js';
import { CxrError } from '../errors.js';

export type StoreKind = 'fs' | 'pg';
export const STORE_KINDS: readonly StoreKind[] = ['fs', 'pg'];

export interface StoredObject {
  sha256: string;
  size: number;
  /** false when the object was already stored */
  created: boolean;
}

export interface ObjectStore {
  readonly kind: StoreKind;
  /** where the objects are, for banners and logs */
  readonly location: string;
  /**
   * true when `put` with a transaction writes inside it (the object exists exactly when the
   * transaction commits); false when a failed transaction can leave an unreferenced object
   * behind for `discard` or the garbage collector.
   */
  readonly transactional: boolean;
  /**
   * Stores the bytes durably under their sha256; `tx` is the transaction that records them.
   * `sha256`: the bytes' hash when the caller has just computed it (an 8 MB film is not hashed twice).
   */
  put(bytes: Uint8Array, tx?: EntityManager, sha256?: string): Promise<StoredObject>;
  /** The whole object, checked against its hash. E_NOT_FOUND when it is missing. */
  get(sha256: string): Promise<Buffer>;
  /**
   * The object in pieces, for streaming it on without holding it whole. With `upTo`, the caller
   * wants only the first `upTo` bytes: a store that can read less (a file) stops there.
   */
  read(sha256: string, upTo?: number): AsyncIterable<Buffer>;
  remove(sha256: string): Promise<void>;
  /** Pages of the shas stored before `before` (the collector's candidates). */
  list(before: Date): AsyncIterable<string[]>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The first bytes of an object (at least `minBytes`, whole pieces, fewer only when the object is
 * shorter), for what reads only a DICOM header: no whole file read, no hash of it.
 */
export async function readHead(store: ObjectStore, sha256: string, minBytes: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let n = 0;
  for await (const piece of store.read(sha256, minBytes)) {
    pieces.push(piece);
    n += piece.length;
    if (n >= minBytes) break;
  }
  return Buffer.concat(pieces, n);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function checkSha(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new CxrError('E_BAD_ARGUMENT', `not a sha256: ${sha256}`);
  return sha256;
}

export function missing(sha256: string, why: string): CxrError {
  return new CxrError('E_NOT_FOUND', `stored object ${sha256.slice(0, 12)}… is missing: ${why}`);
}

export function corrupt(sha256: string): CxrError {
  return new CxrError('E_INTERNAL', `stored object ${sha256.slice(0, 12)}… is corrupt (hash mismatch)`);
}

/**
 * Deletes the object if no study names it, under the object's lock so that a concurrent
 * accept of the same bytes cannot be between storing and recording them. True when deleted.
 */
export async function discardIfUnreferenced(ds: DataSource, store: ObjectStore, sha256: string): Promise<boolean> {
  return ds.transaction(async (m) => {
    await lockObject(m, sha256);
    if ((await referencedObjects(m, [sha256])).size > 0) return false;
    await store.remove(sha256);
    return true;
  });
}

/**
 * Removes stored objects older than `graceMs` that no study names: what a process killed
 * between storing a file and committing its study leaves behind. Returns how many went.
 */
export async function collectGarbage(ds: DataSource, store: ObjectStore, graceMs: number): Promise<number> {
  let removed = 0;
  for await (const page of store.list(new Date(Date.now() - graceMs))) {
    const kept = await referencedObjects(ds, page);
    for (const sha of page) if (!kept.has(sha) && (await discardIfUnreferenced(ds, store, sha))) removed++;
  }
  return removed;
}
