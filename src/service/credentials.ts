/**
 * Client secrets and user passwords are stored as scrypt hashes:
 * `scrypt$N$r$p$<salt b64>$<hash b64>`, compared in constant time.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

function scrypt(secret: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(secret, salt, KEYLEN, opts, (e, key) => (e ? reject(e) : resolve(key))));
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(secret, salt, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (![n, r, p].every(Number.isInteger) || expected.length !== KEYLEN) return false;
  const key = await scrypt(secret, salt, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
  return timingSafeEqual(key, expected);
}

/** A secret to hand out once: 32 random bytes, base64url. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * A hash of a random secret nobody knows, verified against when the client id is unknown, so
 * that a wrong id takes as long as a wrong secret.
 */
export const DUMMY_HASH_PROMISE: Promise<string> = hashSecret(randomBytes(16).toString('hex'));
