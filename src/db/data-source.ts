import pg from 'pg';
import { DataSource } from 'typeorm';
import { migrations } from '../../migrations/index.js';
import { CxrError } from '../errors.js';
import { entities } from './entities.js';

export interface DatabaseOptions {
  url: string;
  /** connection pool size */
  poolSize?: number;
  /** SQL logging for debugging */
  logging?: boolean;
}

/**
 * A pooled client whose connection the server ends (a failover, pg_terminate_backend, an idle
 * timeout) while it is checked out emits 'error'; pg-pool listens only on idle clients, so
 * without this the process would die of an unhandled 'error' event. The query using the
 * connection still fails (and the caller sees it); the pool discards the broken client.
 */
class ResilientClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

/** A data source for the service schema. `synchronize` is off: schema comes from migrations. */
export function createDataSource(opts: DatabaseOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: opts.url,
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTableName: 'typeorm_migrations',
    logging: opts.logging ?? false,
    extra: { max: opts.poolSize ?? 10, connectionTimeoutMillis: 10_000, Client: ResilientClient },
  });
}

/** Connects and applies pending migrations, each in its own transaction. */
export async function openDatabase(opts: DatabaseOptions): Promise<DataSource> {
  const ds = createDataSource(opts);
  try {
    await ds.initialize();
  } catch (e) {
    throw new CxrError('E_CONFIG', `cannot connect to PostgreSQL at ${redactUrl(opts.url)}: ${(e as Error).message}`);
  }
  try {
    await whileHoldingMigrationLock(opts.url, () => ds.runMigrations({ transaction: 'each' }));
  } catch (e) {
    await ds.destroy().catch(() => undefined);
    throw new CxrError('E_CONFIG', `database migration failed: ${(e as Error).message}`);
  }
  return ds;
}

/** Arbitrary constant naming the migration lock (advisory locks are per database). */
const MIGRATION_LOCK_KEY = 0x6378_726d_6967_7261n; // "cxrmigra"

/**
 * Runs `work` (the migrations) while this process holds a session advisory lock of its own
 * connection. Why: the API and its workers start together on a first deploy or an upgrade, and
 * TypeORM takes no lock of its own, so two processes applying the same migration collided on
 * the catalog (duplicate pg_type) and all but one exited. The one that waited then finds
 * nothing pending. A separate client, so that a pool of one connection cannot wait on itself.
 */
export async function whileHoldingMigrationLock<T>(url: string, work: () => Promise<T>): Promise<T> {
  const lock = new ResilientClient({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    return await work();
  } finally {
    // ending the session releases the lock even if the unlock statement cannot run
    await lock.end().catch(() => undefined);
  }
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}

/**
 * True when a query failed because its connection went away (the server terminated it, a
 * failover, a network cut) rather than because of the statement: the work can be retried
 * on a fresh connection.
 */
export function isConnectionLost(e: unknown): boolean {
  const err = e as { code?: string; driverError?: { code?: string }; message?: string };
  const code = err?.driverError?.code ?? err?.code ?? '';
  if (/^(08|57P0[1-3])/.test(code)) return true;
  // TypeORM releases a transaction's runner when its client errors; the next statement says so
  return /Connection terminated|not queryable|Query runner already released|ECONNRESET|ECONNREFUSED|EPIPE/.test(String(err?.message ?? ''));
}
