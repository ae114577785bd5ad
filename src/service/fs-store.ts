/**
 * Stored objects as files, content-addressed: <root>/<first two hex>/<sha256>.dcm. Writes go
 * to a temporary file in the same directory, are fsynced, renamed into place and the
 * directory fsynced, so that once `put` returns the bytes survive a crash — and only then does
 * the database learn about them. Several processes (or machines, on a shared volume) can use
 * one root: a rename is atomic and the content decides the name.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CxrError } from '../errors.js';
import { checkSha, corrupt, missing, sha256Hex, type ObjectStore, type StoredObject } from './object-store.js';
import { isStorageFullError, storageFullError } from './storage.js';

const FILE = /^([0-9a-f]{64})\.dcm$/;
const TEMP = /^\.[0-9a-f]{64}\.[0-9a-f]{12}\.tmp$/;

export class FsObjectStore implements ObjectStore {
  readonly kind = 'fs' as const;
  readonly transactional = false;
  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  pathFor(sha256: string): string {
    checkSha(sha256);
    return join(this.root, sha256.slice(0, 2), `${sha256}.dcm`);
  }

  async put(bytes: Uint8Array, _tx?: unknown, known?: string): Promise<StoredObject & { path: string }> {
    const sha256 = known ?? sha256Hex(bytes);
    const path = this.pathFor(sha256);
    const existing = await stat(path).catch(() => null);
    if (existing?.isFile() && existing.size === bytes.length) return { sha256, size: bytes.length, path, created: false };
    const dir = join(this.root, sha256.slice(0, 2));
    const tmp = join(dir, `.${sha256}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'wx', 0o640);
      try {
        // one write call for the whole film (writeFile goes in 512 KiB pieces, a thread-pool round trip each)
        for (let at = 0; at < bytes.length; ) at += (await fh.write(bytes, at, bytes.length - at)).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await syncDirectory(dir);
    } catch (e) {
      await rm(tmp, { force: true });
      // no room is not a bug of ours: one code the API answers 507 to, and the monitor watches
      if (isStorageFullError(e)) throw storageFullError(`cannot store object ${sha256.slice(0, 12)}… (${(e as NodeJS.ErrnoException).code})`);
      throw new CxrError('E_INTERNAL', `cannot store object ${sha256.slice(0, 12)}…: ${(e as Error).message}`);
    }
    return { sha256, size: bytes.length, path, created: true };
  }

  /** Reads stored bytes back and checks they still hash to their name. */
  async get(sha256: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathFor(sha256));
    } catch (e) {
      throw readFailure(sha256, e);
    }
    if (sha256Hex(bytes) !== sha256) throw corrupt(sha256);
    return bytes;
  }

  async *read(sha256: string, upTo?: number): AsyncIterable<Buffer> {
    const path = this.pathFor(sha256);
    const s = await stat(path).catch((e: unknown) => {
      throw readFailure(sha256, e);
    });
    if (!s.isFile()) throw missing(sha256, 'not a file');
    // a header read (upTo) reads its 64 KiB, not a whole 1 MiB piece of the film
    const opts = upTo === undefined || upTo <= 0 ? { highWaterMark: 1 << 20 } : { highWaterMark: Math.min(1 << 20, upTo), end: upTo - 1 };
    for await (const chunk of createReadStream(path, opts)) yield chunk as Buffer;
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathFor(sha256), { force: true });
  }

  /** Files older than `before`, a directory at a time; stale temporary files are removed on the way. */
  async *list(before: Date): AsyncIterable<string[]> {
    const dirs = await readdir(this.root).catch(() => [] as string[]);
    for (const d of dirs.filter((n) => /^[0-9a-f]{2}$/.test(n)).sort()) {
      const page: string[] = [];
      for (const name of await readdir(join(this.root, d)).catch(() => [] as string[])) {
        const path = join(this.root, d, name);
        const s = await stat(path).catch(() => null);
        if (!s || s.mtime >= before) continue;
        const m = FILE.exec(name);
        if (m) page.push(m[1]);
        else if (TEMP.test(name)) await rm(path, { force: true });
      }
      if (page.length > 0) yield page;
    }
  }
}

/**
 * Why a stored object could not be read. Only a file that is not there is missing (E_NOT_FOUND,
 * which scoring and result building treat as final); running out of file descriptors, an I/O
 * error or a permission problem passes, so it is E_INTERNAL and the job or build is retried.
 */
function readFailure(sha256: string, e: unknown): CxrError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return missing(sha256, code);
  return new CxrError('E_INTERNAL', `cannot read stored object ${sha256.slice(0, 12)}…: ${code ?? (e as Error).message}`);
}

/** A rename is durable only once the directory entry is on disk. */
async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
