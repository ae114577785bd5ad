/**
 * Errors that mean "the database cannot serve this request right now" rather than "this
 * request is wrong" or "the code is wrong": the pool found no free connection in time (a
 * burst larger than the pool), the connection was terminated (pg_terminate_backend, a
 * restart, a failover), or the server refuses connections while starting or stopping. The
 * API answers them 503 with Retry-After, so a client retries instead of giving up on a 500.
 */

/** SQLSTATE classes/codes: 08 connection exception, 57P01-57P03 admin/crash shutdown, cannot connect now */
const UNAVAILABLE_SQLSTATES = /^(08\d{3}|57P0[123])$/;
const UNAVAILABLE_MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|Query runner already released/i;

export function isDatabaseUnavailable(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; driverError?: { code?: unknown; message?: unknown } } | null;
  if (!err || typeof err !== 'object') return false;
  // TypeORM, when a transaction's connection was terminated under it
  const name = (err as { name?: unknown }).name;
  if (name === 'QueryRunnerAlreadyReleasedError' || name === 'QueryRunnerProviderAlreadyReleasedError') return true;
  const code = err.driverError?.code ?? err.code;
  if (typeof code === 'string' && UNAVAILABLE_SQLSTATES.test(code)) return true;
  const message = String(err.driverError?.message ?? err.message ?? '');
  return UNAVAILABLE_MESSAGES.test(message);
}
