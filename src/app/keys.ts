/**
 * Development secrets: when the operator sets no key, one is generated once into the data
 * directory (mode 0600) and reused, so that `cxr-triage token` signs with the key the server
 * verifies with. The server says loudly that it is using one.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CxrError } from '../errors.js';

export interface LoadedSecret {
  value: Buffer;
  source: 'env' | 'generated' | 'file';
  /** where a generated or file secret lives */
  path?: string;
}

/** Reads <dataDir>/<name>, creating it with 32 random bytes (base64url) when absent. */
export function loadOrCreateDevSecret(dataDir: string, name: string, create = true): LoadedSecret {
  const path = join(dataDir, 'secrets', name);
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (text.length < 32) throw new CxrError('E_CONFIG', `${path} holds a secret shorter than 32 characters; delete it to regenerate`);
    return { value: Buffer.from(text, 'utf8'), source: 'file', path };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (e instanceof CxrError) throw e;
      throw new CxrError('E_CONFIG', `cannot read ${path}: ${(e as Error).message}`);
    }
  }
  if (!create) throw new CxrError('E_CONFIG', `no secret at ${path}`);
  const text = randomBytes(32).toString('base64url');
  try {
    // The data directory stays traversable (the embedded PostgreSQL may run as another user); only secrets/ is private.
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    // 'wx': two processes starting at once must not overwrite each other's key.
    writeFileSync(path, `${text}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateDevSecret(dataDir, name, false);
    throw new CxrError('E_CONFIG', `cannot create ${path}: ${(e as Error).message}`);
  }
  return { value: Buffer.from(text, 'utf8'), source: 'generated', path };
}
