/**
 * `cxr-triage serve` as a child process, for the benches, the screenshot script and the tests that need the real server: started
 * with the given environment on a free loopback port, its banner awaited, its output kept,
 * its exit observable — the real server a deployment runs, not the app in-process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { signToken } from '../../src/api/tokens.js';

/** What a user runs: bin/cxr-triage.js, which runs the TypeScript sources of a checkout through tsx. */
export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'cxr-triage.js');

/**
 * The `cxr-triage` tests start: the CLI compiled once per run by scripts/test.mjs (under
 * CXR_TEST_BUILD; the same sources without tsx's start-up cost), else bin/cxr-triage.js.
 */
export const CLI = process.env.CXR_TEST_BUILD ? join(process.env.CXR_TEST_BUILD, 'src', 'cli', 'main.mjs') : BIN;

export interface ServeProcess {
  proc: ChildProcess;
  pid: number;
  url: string;
  stdout(): string;
  stderr(): string;
  /** resolves with the exit code (null when killed by a signal) and the signal */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  /** listen port (0, the default: a free one); a restart on the same port keeps clients' URL */
  port?: number;
  timeoutMs?: number;
}

/** Starts serve; rejects with its output if it exits or does not listen within the timeout (120 s). */
export async function startServe(env: NodeJS.ProcessEnv, opts: StartOptions = {}): Promise<ServeProcess> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  // No DIMSE listener unless asked for: benches and test files run side by side and would race for port 11112.
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(opts.port ?? 0)], {
    env: { CXR_DIMSE_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('close', (code, signal) => r({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`serve did not listen within ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening:\n${err}`));
    });
  });
  return { proc, pid: proc.pid!, url, stdout: () => out, stderr: () => err, exited };
}

/** Peak resident set size of a process so far (VmHWM, Linux), in MiB; null when unreadable. */
export async function peakRssMiB(pid: number): Promise<number | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** A loopback port nobody listens on right now (for a server that must keep its port across restarts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * `cxr-triage user add NAME --role ROLE --password-stdin` with a server's environment (same
 * database); throws with its output when it fails, returns what it printed on stderr.
 */
export function addUser(env: NodeJS.ProcessEnv, name: string, role: string, password: string, displayName = `Dr ${name}`): string {
  const r = spawnSync(process.execPath, [CLI, 'user', 'add', name, '--role', role, '--display-name', displayName, '--password-stdin'], {
    env,
    input: `${password}\n`,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`user add ${name} exited ${r.status}: ${r.stderr}`);
  return r.stderr;
}

export interface FreshServe {
  server: ServeProcess;
  /** the server's environment (DATABASE_URL, keys): for operator commands against it */
  env: NodeJS.ProcessEnv;
  dbUrl: string;
  /** an operator token the server accepts */
  token(role: 'workstation' | 'clinician' | 'auditor' | 'admin', sub: string): string;
  /** stops the server, drops the database, removes the data directory */
  stop(): Promise<void>;
}

/**
 * `cxr-triage serve` on the shipped models (or CXR_MODELS_DIR of `env`) with a database of its
 * own created through `adminUrl` and a fresh data directory: what the benches and the
 * screenshot script measure and photograph.
 */
export async function serveOnFreshDatabase(o: { adminUrl: string; prefix: string; env?: NodeJS.ProcessEnv }): Promise<FreshServe> {
  const dbName = `${o.prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: o.adminUrl });
  await admin.connect();
  const root = await mkdtemp(join(tmpdir(), `${o.prefix.replace(/_/g, '-')}-`));
  const cleanUp = async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await rm(root, { recursive: true, force: true });
  };
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(o.adminUrl);
  url.pathname = `/${dbName}`;
  const secret = randomBytes(32).toString('base64');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: url.toString(),
    CXR_DATA_DIR: root,
    CXR_JWT_SECRET: secret,
    CXR_HMAC_KEY: randomBytes(32).toString('base64'),
    CXR_DIMSE_PORT: '0',
    ...o.env,
  };
  let server: ServeProcess;
  try {
    server = await startServe(env);
  } catch (e) {
    await cleanUp();
    throw e;
  }
  const jwt = { secret: Buffer.from(secret, 'utf8'), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 };
  return {
    server,
    env,
    dbUrl: url.toString(),
    token: (role, sub) => signToken(jwt, { sub, role, kind: 'operator' }).token,
    stop: async () => {
      server.proc.kill('SIGTERM');
      await server.exited;
      await cleanUp();
    },
  };
}
