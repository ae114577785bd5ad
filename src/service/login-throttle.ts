/**
 * Brute-force brake for sign-in (POST /v1/auth/token today, the web login later): after
 * `maxFailures` failed attempts within `windowMs` on one key — a principal name, or a remote
 * address — attempts on that key are refused until the window since its first counted
 * attempt has passed. A success clears the principal's count (not the address's: one good
 * password must not unlock a scanning host; its own reservation is given back).
 *
 * The count lives in PostgreSQL (src/db/login-attempts.ts): every instance shares it and a
 * restart keeps it. Each attempt is counted *before* its secret is checked, atomically with
 * the limit, so that however many guesses arrive at once, at most `maxFailures` are checked.
 */
import type { DataSource } from 'typeorm';
import { clearAttempts, deleteExpiredAttempts, lockedFor, releaseAttempt, reserveAttempts, type Reserved } from '../db/login-attempts.js';

/** failed attempts per name or address before it is locked, and the window they count in */
export const DEFAULT_AUTH_MAX_FAILURES = 10;
export const DEFAULT_AUTH_WINDOW_S = 15 * 60;

export interface ThrottleOptions {
  /** failures within the window that lock a key; 0 disables the throttle */
  maxFailures: number;
  windowMs: number;
}

/** What an attempt may do: go on and then report how it ended, or wait. */
export type AttemptGate =
  | {
      allowed: true;
      /** the secret was right: the principal's count is cleared, the address's reservation given back */
      succeeded(): Promise<void>;
      /** the secret was wrong: the reservation stays counted */
      failed(): Promise<void>;
    }
  | { allowed: false; retryAfterSeconds: number };

const OPEN: AttemptGate = { allowed: true, succeeded: async () => {}, failed: async () => {} };

/** The two counted keys of an attempt: its principal's name, and where it came from. */
function keysOf(subject: string, address: string): [string, string] {
  return [`subject:${subject}`.slice(0, 300), `address:${address}`.slice(0, 300)];
}

/** expired rows are deleted every this many reservations (by the instance that makes them) */
const SWEEP_EVERY = 200;

export class LoginThrottle {
  private sinceSweep = 0;

  constructor(
    private readonly ds: DataSource,
    private readonly opts: ThrottleOptions,
  ) {}

  /**
   * Reserves an attempt for `subject` (e.g. "password:alice") from `address`. Call before
   * checking the secret; when it is refused, do not check the secret at all (a locked name
   * gives a guesser no signal).
   */
  async begin(subject: string, address: string): Promise<AttemptGate> {
    if (this.opts.maxFailures <= 0) return OPEN;
    const [subjectKey, addressKey] = keysOf(subject, address);
    const r = await reserveAttempts(this.ds, [subjectKey, addressKey], this.opts.maxFailures, this.opts.windowMs);
    if (!r.ok) return { allowed: false, retryAfterSeconds: r.retryAfterSeconds };
    if (++this.sinceSweep >= SWEEP_EVERY) {
      this.sinceSweep = 0;
      await deleteExpiredAttempts(this.ds, this.opts.windowMs);
    }
    const held = r.reserved.find((x) => x.key === addressKey) as Reserved;
    return {
      allowed: true,
      succeeded: async () => {
        await clearAttempts(this.ds, subjectKey);
        await releaseAttempt(this.ds, held);
      },
      failed: async () => {},
    };
  }

  /**
   * For a credential sent with every request (HTTP Basic on DICOMweb): whether `subject` or
   * `address` is locked, without counting an attempt. Reserving before each check, as `begin`
   * does, would refuse a PACS that forwards more studies at once than `maxFailures` with the
   * right secret; a static 256-bit client secret is not guessed, so only failures are counted
   * (`recordFailure`), and a lock set here or at the token endpoint holds for both.
   */
  async lockedFor(subject: string, address: string): Promise<number | null> {
    if (this.opts.maxFailures <= 0) return null;
    return lockedFor(this.ds, keysOf(subject, address), this.opts.maxFailures, this.opts.windowMs);
  }

  /** Counts one failed attempt on `subject` and on `address` (a key already locked stays so). */
  async recordFailure(subject: string, address: string): Promise<void> {
    if (this.opts.maxFailures <= 0) return;
    await reserveAttempts(this.ds, keysOf(subject, address), this.opts.maxFailures, this.opts.windowMs);
  }
}
