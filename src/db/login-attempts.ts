/**
 * Sign-in attempt counters in PostgreSQL (table login_attempts), shared by every instance of
 * the service and kept across restarts. An attempt is reserved before its secret is checked,
 * atomically with the check of the limit, so that concurrent guesses cannot all pass a check
 * made before any of them was counted. Time is the database's clock (one clock for all
 * instances).
 */
import type { DataSource, QueryRunner } from 'typeorm';

export interface Reserved {
  key: string;
  /** start of the key's window, exact to the microsecond (as text: a Date would round it), which identifies the reservation when it is given back */
  windowStart: string;
}

export type Reservation = { ok: true; reserved: Reserved[] } | { ok: false; retryAfterSeconds: number };

/** ms → a PostgreSQL interval expression over parameter $n */
const windowExpr = (n: number) => `($${n}::double precision * interval '1 millisecond')`;

/**
 * Counts one attempt on every key, or on none: when any key already holds `max` attempts in
 * its live window, nothing is counted and the wait until the last such key opens is returned.
 * A key whose window has passed starts a new one. The upsert takes each key's row lock (in
 * sorted order, so two requests on the same keys queue instead of deadlocking); the row is
 * counted and checked in one statement, which is what makes the limit exact under concurrency.
 */
export async function reserveAttempts(ds: DataSource, keys: readonly string[], max: number, windowMs: number): Promise<Reservation> {
  const sorted = [...new Set(keys)].sort();
  const qr = ds.createQueryRunner();
  await qr.connect();
  try {
    await qr.startTransaction();
    const expired = `a.window_start <= now() - ${windowExpr(3)}`;
    const rows: { key: string; window_start: string }[] = await qr.query(
      `INSERT INTO login_attempts AS a (key, attempts, window_start)
       SELECT k, 1, now() FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i
       ON CONFLICT (key) DO UPDATE SET
         attempts = CASE WHEN ${expired} THEN 1 ELSE a.attempts + 1 END,
         window_start = CASE WHEN ${expired} THEN now() ELSE a.window_start END
       WHERE ${expired} OR a.attempts < $2
       RETURNING a.key, a.window_start::text AS window_start`,
      [sorted, max, windowMs],
    );
    if (rows.length === sorted.length) {
      await qr.commitTransaction();
      return { ok: true, reserved: rows.map((r) => ({ key: r.key, windowStart: r.window_start })) };
    }
    await qr.rollbackTransaction();
    // the lock can lapse between the two statements; a refusal still names at least a second
    return { ok: false, retryAfterSeconds: (await lockedFor(qr, sorted, max, windowMs)) ?? 1 };
  } catch (e) {
    if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
    throw e;
  } finally {
    await qr.release();
  }
}

/**
 * Whether any of the keys holds `max` attempts in its live window, without counting one: the
 * seconds until the last such key opens, or null when none is locked.
 */
export async function lockedFor(
  ds: Pick<DataSource, 'query'> | Pick<QueryRunner, 'query'>,
  keys: readonly string[],
  max: number,
  windowMs: number,
): Promise<number | null> {
  const wait: { s: string | null }[] = await ds.query(
    `SELECT max(ceil(extract(epoch FROM (window_start + ${windowExpr(3)} - now())))) AS s
       FROM login_attempts WHERE key = ANY($1::text[]) AND attempts >= $2 AND window_start > now() - ${windowExpr(3)}`,
    [[...new Set(keys)], max, windowMs],
  );
  return wait[0]?.s == null ? null : Math.max(1, Number(wait[0].s));
}

/** Gives one reservation back (its attempt succeeded), unless its window has been replaced since. */
export async function releaseAttempt(ds: DataSource, r: Reserved): Promise<void> {
  await ds.query(`UPDATE login_attempts SET attempts = attempts - 1 WHERE key = $1 AND window_start = $2::timestamptz AND attempts > 0`, [
    r.key,
    r.windowStart,
  ]);
}

/** Forgets a key's count (a principal that proved its secret). */
export async function clearAttempts(ds: DataSource, key: string): Promise<void> {
  await ds.query(`DELETE FROM login_attempts WHERE key = $1`, [key]);
}

/** Deletes rows whose window has passed; returns how many. */
export async function deleteExpiredAttempts(ds: DataSource, windowMs: number): Promise<number> {
  const res: [unknown[], number] = await ds.query(`DELETE FROM login_attempts WHERE window_start <= now() - ${windowExpr(1)}`, [windowMs]);
  return res[1];
}
