/**
 * Original DICOM bytes, content-addressed: a file named by its sha256 under
 * <root>/<first two hex>/<sha256>.dcm. Writes go to a temporary file in the same directory,
 * are fsynced, renamed into place and the directory fsynced, so that once `put` returns the
 * bytes survive a crash — and only then does the database learn about the study.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CxrError } from '../errors.js';
import { isStorageFullError, storageFullError } from './storage.js';

export interface StoredObject {
  sha256: string;
  size: number;
  path: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class DicomStore {
  constructor(readonly root: string) {}

  pathFor(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new CxrError('E_BAD_ARGUMENT', `not a sha256: ${sha256}`);
    return join(this.root, sha256.slice(0, 2), `${sha256}.dcm`);
  }

  /** Stores the bytes durably; storing the same content twice is a no-op. */
  async put(bytes: Uint8Array): Promise<StoredObject> {
    const sha256 = sha256Hex(bytes);
    const path = this.pathFor(sha256);
    const existing = await stat(path).catch(() => null);
    if (existing?.isFile() && existing.size === bytes.length) return { sha256, size: bytes.length, path };
    const dir = join(this.root, sha256.slice(0, 2));
    const tmp = join(dir, `.${sha256}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'wx', 0o640);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await syncDirectory(dir);
    } catch (e) {
      await rm(tmp, { force: true });
      // no room is not a bug of ours: one code the API answers 507 to, and the monitor watches
      if (isStorageFullError(e)) throw storageFullError(`cannot store DICOM ${sha256.slice(0, 12)}… (${(e as NodeJS.ErrnoException).code})`);
      throw new CxrError('E_INTERNAL', `cannot store DICOM ${sha256.slice(0, 12)}…: ${(e as Error).message}`);
    }
    return { sha256, size: bytes.length, path };
  }

  /** Reads stored bytes back and checks they still hash to their name. */
  async get(sha256: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathFor(sha256));
    } catch (e) {
      throw new CxrError('E_NOT_FOUND', `stored DICOM ${sha256.slice(0, 12)}… is missing: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (sha256Hex(bytes) !== sha256) throw new CxrError('E_INTERNAL', `stored DICOM ${sha256.slice(0, 12)}… is corrupt (hash mismatch)`);
    return bytes;
  }
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
