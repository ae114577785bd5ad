/**
 * Stored objects in PostgreSQL (CXR_STORE=pg): nothing to share between machines but the
 * database the service already has. `put` writes the chunks in the transaction that records
 * the study, so an object exists exactly when its study does; `read` fetches one chunk per
 * query, so a reader holds one chunk at a time and `get` assembles the file once.
 */
import type { DataSource, EntityManager } from 'typeorm';
import { deleteObject, insertObject, listObjects, objectHead, readChunk } from '../db/objects.js';
import { checkSha, corrupt, missing, sha256Hex, type ObjectStore, type StoredObject } from './object-store.js';

export class PgObjectStore implements ObjectStore {
  readonly kind = 'pg' as const;
  readonly transactional = true;
  constructor(private readonly ds: DataSource) {}

  get location(): string {
    return 'PostgreSQL tables objects/object_chunks';
  }

  async put(bytes: Uint8Array, tx?: EntityManager, known?: string): Promise<StoredObject> {
    const sha256 = known ?? sha256Hex(bytes);
    const created = tx ? await insertObject(tx, sha256, bytes) : await this.ds.transaction((m) => insertObject(m, sha256, bytes));
    return { sha256, size: bytes.length, created };
  }

  async get(sha256: string): Promise<Buffer> {
    const head = await this.head(sha256);
    const out = Buffer.allocUnsafe(head.size);
    let at = 0;
    for await (const chunk of this.chunks(sha256, head.chunks)) {
      if (at + chunk.length > out.length) throw corrupt(sha256);
      chunk.copy(out, at);
      at += chunk.length;
    }
    if (at !== out.length || sha256Hex(out) !== sha256) throw corrupt(sha256);
    return out;
  }

  async *read(sha256: string): AsyncIterable<Buffer> {
    const head = await this.head(sha256);
    yield* this.chunks(sha256, head.chunks);
  }

  async remove(sha256: string): Promise<void> {
    await deleteObject(this.ds, checkSha(sha256));
  }

  async *list(before: Date): AsyncIterable<string[]> {
    let after = '';
    for (;;) {
      const page = await listObjects(this.ds, before, after, 500);
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1];
    }
  }

  private async head(sha256: string) {
    const head = await objectHead(this.ds, checkSha(sha256));
    if (!head) throw missing(sha256, 'no such object in PostgreSQL');
    return head;
  }

  private async *chunks(sha256: string, count: number): AsyncIterable<Buffer> {
    for (let i = 0; i < count; i++) {
      const chunk = await readChunk(this.ds, sha256, i);
      if (!chunk) throw missing(sha256, `chunk ${i} of ${count}`);
      yield chunk;
    }
  }
}
