/**
 * Brute-force brake for POST /v1/auth/token: after `maxFailures` failed attempts within
 * `windowMs` for one key (a principal name, or a remote address), attempts on that key are
 * refused until the window since its first counted failure has passed. A success clears the
 * principal's key (not the address's: one good password must not unlock a scanning host).
 * In-process state: each service instance counts for itself, and a restart forgets, which is
 * the usual trade for not putting a write on the login path's database.
 */
/** failed attempts per name or address before it is locked, and the window they count in */
export const DEFAULT_AUTH_MAX_FAILURES = 10;
export const DEFAULT_AUTH_WINDOW_S = 15 * 60;

export interface ThrottleOptions {
  /** failures within the window that lock a key; 0 disables the throttle */
  maxFailures: number;
  windowMs: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  since: number;
}

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly opts: ThrottleOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Seconds until the first locked key opens again, or 0 when every key may try. */
  retryAfterSeconds(keys: readonly string[]): number {
    if (this.opts.maxFailures <= 0) return 0;
    const t = this.now();
    let wait = 0;
    for (const k of keys) {
      const e = this.live(k, t);
      if (e && e.failures >= this.opts.maxFailures) wait = Math.max(wait, Math.ceil((e.since + this.opts.windowMs - t) / 1000));
    }
    return wait;
  }

  fail(keys: readonly string[]): void {
    if (this.opts.maxFailures <= 0) return;
    const t = this.now();
    for (const k of keys) {
      const e = this.live(k, t);
      if (e) e.failures++;
      else this.entries.set(k, { failures: 1, since: t });
    }
    if (this.entries.size > 100_000) this.sweep(t);
  }

  succeed(key: string): void {
    this.entries.delete(key);
  }

  /** the key's entry while its window is open; expired entries are dropped */
  private live(key: string, t: number): Entry | null {
    const e = this.entries.get(key);
    if (!e) return null;
    if (t - e.since >= this.opts.windowMs) {
      this.entries.delete(key);
      return null;
    }
    return e;
  }

  private sweep(t: number): void {
    for (const [k, e] of this.entries) if (t - e.since >= this.opts.windowMs) this.entries.delete(k);
  }
}
