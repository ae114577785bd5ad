/**
 * Fault run: 8-16 concurrent workstation clients post synthetic chest studies with
 * ?wait=true to `cxr-triage serve` on 127.0.0.1 while a fault is injected, then the run
 * proves from the database and the data directory what survived. A client behaves like a
 * modality: on a transport error, 503 or 507 it waits (Retry-After, at most 1 s) and re-sends
 * the same instance, so an instance stored before the fault comes back as a duplicate.
 *
 *   npx tsx bench/fault.ts                                  # every scenario, 8 clients, 20 s each
 *   npx tsx bench/fault.ts --scenarios kill9,sigterm --clients 16 --seconds 30 --json
 *
 * Scenarios (each on a fresh database and data directory):
 *   kill9         SIGKILL the server mid-load, start it again on the same port
 *   pg-terminate  pg_terminate_backend() every connection of the service, three times
 *   disk-full     the originals' directory (a tmpfs; needs root) is filled for 4 s, then freed
 *   sigterm       SIGTERM mid-load (drain), start it again on the same port
 *
 * Per scenario it prints: requests and statuses, accepted (distinct studies acknowledged
 * 200/202), scored, failed, lost (acknowledged but missing or still queued after --settle
 * seconds without a restart beyond the scenario's own: must be 0), orphan files (stored
 * originals no study names, and temporary files), audit (chain verifies, and every accepted
 * study has its study.create row), peak RSS of the server processes (VmHWM). Exit status 1
 * when any scenario loses a study, leaves an orphan, or fails the audit check.
 *
 * Options: --clients 8 --seconds 20 --settle 90 --size 256 --scenarios LIST --json
 *          --admin-url postgres://postgres@127.0.0.1:5432/test (CXR_TEST_DATABASE_URL; a fresh
 *          database is created and dropped per scenario). Models: CXR_MODELS_DIR or ./models.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { signToken } from '../src/api/tokens.js';
import { verifyAuditChain } from '../src/db/audit.js';
import { openDatabase } from '../src/db/data-source.js';
import { decodeModality } from '../src/dicom/index.js';
import { chestDicom, encodeChestCr } from '../src/data/simple-chest-dicom.js';
import { freePort, peakRssMiB, startServe, type ServeProcess } from '../test/support/serve-process.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const SCENARIOS = ['kill9', 'pg-terminate', 'disk-full', 'sigterm'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '20' },
    settle: { type: 'string', default: '90' },
    size: { type: 'string', default: '256' },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    'admin-url': { type: 'string', default: process.env.CXR_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    json: { type: 'boolean', default: false },
  },
});
const clients = Number(args.clients);
const seconds = Number(args.seconds);
const settleS = Number(args.settle);
const size = Number(args.size);
const scenarios = args.scenarios.split(',').map((s) => s.trim()) as Scenario[];
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario '${s}' (one of ${SCENARIOS.join(', ')})`);
if (!(clients >= 1 && clients <= 64) || !(seconds >= 1 && seconds <= 600)) throw new Error('--clients 1..64 and --seconds 1..600');
const log = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jwtSecret = randomBytes(32).toString('hex');
const token = signToken(
  { secret: Buffer.from(jwtSecret), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 3600 },
  { sub: 'fault-bench', role: 'workstation', kind: 'operator' },
).token;

async function admin<T>(fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const u = new URL(args['admin-url']);
  if (database) u.pathname = `/${database}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

interface Result {
  scenario: Scenario;
  skipped?: string;
  requests: number;
  statuses: Record<string, number>;
  transportErrors: number;
  accepted: number;
  scored: number;
  failed: number;
  lost: number;
  orphanFiles: number;
  auditChainOk: boolean;
  auditRowsMissing: number;
  peakRssMiB: number | null;
  restarts: number;
  /** server processes that died on their own (each restarted) */
  crashes: string[];
  /** error lines the server processes logged, and the first few distinct messages */
  serverErrors: number;
  serverErrorSamples: string[];
}

/** Server processes of one scenario, with their peak RSS sampled until they exit. */
class Servers {
  current!: ServeProcess;
  peak = 0;
  /** stderr of the processes that already exited */
  private earlier = '';
  restarts = 0;
  private sampler: NodeJS.Timeout;
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly port: number,
  ) {
    this.sampler = setInterval(() => void this.sample(), 500);
  }
  /** server processes that exited without being told to (restarted, as a supervisor would) */
  crashes: string[] = [];
  private stopping = false;
  async start(): Promise<void> {
    const p = await startServe(this.env, { port: this.port });
    this.current = p;
    void p.exited.then(async ({ code, signal }) => {
      if ((p as { expected?: boolean }).expected || this.stopping) return;
      const tail = p.stderr().trim().split('\n').slice(-3).join(' | ').slice(0, 400);
      this.crashes.push(`exit ${code ?? signal}: ${tail}`);
      log(`  the server died (${code ?? signal}); restarting it as a supervisor would`);
      this.earlier += p.stderr();
      if (this.current === p) await this.start();
    });
  }
  async sample(): Promise<void> {
    if (!this.current || this.current.proc.exitCode !== null) return;
    const rss = await peakRssMiB(this.current.pid);
    if (rss !== null) this.peak = Math.max(this.peak, rss);
  }
  async restart(signal: NodeJS.Signals): Promise<void> {
    await this.sample();
    (this.current as { expected?: boolean }).expected = true;
    this.current.proc.kill(signal);
    await this.current.exited;
    this.earlier += this.current.stderr();
    this.restarts++;
    await this.start();
  }
  /** JSON log lines at level error from every process of the scenario */
  errors(): string[] {
    const text = this.earlier + (this.current?.stderr() ?? '');
    return text.split('\n').filter((l) => l.includes('"level":"error"'));
  }
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sampler);
    await this.sample();
    if (this.current && this.current.proc.exitCode === null) {
      this.current.proc.kill('SIGTERM');
      const t = setTimeout(() => this.current.proc.kill('SIGKILL'), 60_000);
      await this.current.exited;
      clearTimeout(t);
    }
  }
}

async function templates(): Promise<Uint16Array[]> {
  const out: Uint16Array[] = [];
  for (let seed = 1; seed <= 4; seed++) out.push(Uint16Array.from((await decodeModality(chestDicom({ size, seed }))).values));
  return out;
}

async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler.bin');
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) await fh.write(chunk);
  } catch {
    // ENOSPC: full
  } finally {
    await fh.close();
  }
  return path;
}

async function runScenario(scenario: Scenario, pixels: Uint16Array[]): Promise<Result> {
  const root = await mkdtemp(join(tmpdir(), `cxr-fault-${scenario}-`));
  const dicomDir = join(root, 'dicom');
  await mkdir(dicomDir);
  let mounted = false;
  const empty = {
    requests: 0,
    statuses: {},
    transportErrors: 0,
    accepted: 0,
    scored: 0,
    failed: 0,
    lost: 0,
    orphanFiles: 0,
    auditChainOk: true,
    auditRowsMissing: 0,
    peakRssMiB: null,
    restarts: 0,
    crashes: [],
    serverErrors: 0,
    serverErrorSamples: [],
  };
  if (scenario === 'disk-full') {
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', dicomDir], { encoding: 'utf8' });
    if (m.status !== 0) {
      await rm(root, { recursive: true, force: true });
      return { scenario, skipped: `cannot mount a tmpfs (needs root): ${m.stderr.trim()}`, ...empty };
    }
    mounted = true;
  }
  const dbName = `cxr_fault_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${dbName}`));
  const dbUrl = (() => {
    const u = new URL(args['admin-url']);
    u.pathname = `/${dbName}`;
    return u.toString();
  })();
  const { DATABASE_URL: _d, ...rest } = process.env;
  const servers = new Servers(
    {
      ...rest,
      DATABASE_URL: dbUrl,
      // no DIMSE listener: only HTTP is measured, and port 11112 may be taken
      CXR_DIMSE_PORT: '0',
      CXR_DATA_DIR: join(root, 'data'),
      CXR_DICOM_DIR: dicomDir,
      CXR_MODELS_DIR: resolve(process.env.CXR_MODELS_DIR ?? 'models'),
      CXR_JWT_SECRET: jwtSecret,
      CXR_HMAC_KEY: randomBytes(32).toString('hex'),
      CXR_QUEUE_SIZE: String(Math.max(64, clients * 4)),
      CXR_DRAIN_TIMEOUT_S: '10',
    },
    await freePort(),
  );
  try {
    await servers.start();
    const url = servers.current.url; // the same port across restarts
    const statuses = new Map<string, number>();
    const acknowledged = new Set<string>();
    let requests = 0;
    let transportErrors = 0;
    const run = randomBytes(4).toString('hex');
    const deadline = Date.now() + seconds * 1000;
    const giveUp = deadline + 60_000;

    const client = async (k: number) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const body = Buffer.from(encodeChestCr(pixels[(k + i) % pixels.length], size, { uidParts: ['fault', run, k, i], patientId: `FAULT-${k}-${i % 5}` }));
        // re-send the same instance until it is acknowledged (or refused for what it is)
        let backoff = 250;
        while (Date.now() < giveUp) {
          requests++;
          try {
            const r = await fetch(`${url}/v1/studies?wait=true`, {
              method: 'POST',
              headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/dicom' },
              body,
            });
            const text = await r.text();
            statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1);
            if (r.status === 200 || r.status === 202) {
              acknowledged.add((JSON.parse(text) as { id: string }).id);
              break;
            }
            if (r.status < 500) break;
            await sleep(Math.min(1000, Number(r.headers.get('retry-after') ?? 1) * 1000));
          } catch {
            transportErrors++;
            await sleep(backoff);
            backoff = Math.min(2000, backoff * 2);
          }
        }
      }
    };

    const fault = async () => {
      await sleep((seconds * 1000) / 3);
      switch (scenario) {
        case 'kill9':
          log('  fault: SIGKILL the server, start it again');
          await servers.restart('SIGKILL');
          break;
        case 'sigterm':
          log('  fault: SIGTERM the server (drain), start it again');
          await servers.restart('SIGTERM');
          break;
        case 'pg-terminate':
          for (let n = 0; n < 3; n++) {
            const killed = await admin((c) =>
              c.query('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]),
            );
            log(`  fault: terminated ${killed.rows[0].n} database connection(s) of the service`);
            await sleep(1500);
          }
          break;
        case 'disk-full': {
          const filler = await fill(dicomDir);
          log('  fault: originals directory full for 4 s');
          await sleep(4000);
          await rm(filler);
          log('  fault: room again');
          break;
        }
      }
    };

    log(`${scenario}: ${clients} clients for ${seconds} s against ${url}…`);
    await Promise.all([...Array.from({ length: clients }, (_, k) => client(k)), fault()]);

    // every acknowledged study must be scored (or failed visibly) without further help
    const ids = [...acknowledged];
    const ds = await openDatabase({ url: dbUrl, poolSize: 2 });
    try {
      let rows: { id: string; status: string }[] = [];
      const until = Date.now() + settleS * 1000;
      for (;;) {
        rows = await ds.query('SELECT id, status FROM studies WHERE id = ANY($1::uuid[])', [ids]);
        if ((rows.length === ids.length && rows.every((r) => r.status !== 'queued')) || Date.now() > until) break;
        await sleep(500);
      }
      const scored = rows.filter((r) => r.status === 'scored').length;
      const failed = rows.filter((r) => r.status === 'failed').length;
      const known: { sha256: string }[] = await ds.query('SELECT DISTINCT sha256 FROM studies');
      const referenced = new Set(known.map((r) => r.sha256.trim()));
      const files = (await readdir(dicomDir, { recursive: true })).map(String).filter((f) => f.endsWith('.dcm') || f.endsWith('.tmp'));
      const orphanFiles = files.filter((f) => f.endsWith('.tmp') || !referenced.has(/([0-9a-f]{64})\.dcm$/.exec(f)?.[1] ?? '')).length;
      const audited: { study_id: string }[] = await ds.query(
        `SELECT DISTINCT study_id FROM audit_log WHERE action = 'study.create' AND outcome = 'ok' AND study_id = ANY($1::uuid[])`,
        [ids],
      );
      const chain = await verifyAuditChain(ds);
      await servers.stop();
      const errorLines = servers.errors();
      const samples = [
        ...new Set(
          errorLines.map((l) => {
            const j = JSON.parse(l) as { msg?: string; error?: string };
            return `${j.msg}: ${String(j.error ?? '').split('\n')[0]}`.slice(0, 160);
          }),
        ),
      ].slice(0, 3);
      return {
        scenario,
        requests,
        statuses: Object.fromEntries([...statuses].sort()),
        transportErrors,
        accepted: ids.length,
        scored,
        failed,
        lost: ids.length - scored - failed,
        orphanFiles,
        auditChainOk: chain.ok,
        auditRowsMissing: ids.length - audited.length,
        peakRssMiB: servers.peak || null,
        restarts: servers.restarts,
        crashes: servers.crashes,
        serverErrors: errorLines.length,
        serverErrorSamples: samples,
      };
    } finally {
      await ds.destroy();
    }
  } finally {
    await servers.stop();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    if (mounted) spawnSync('umount', [dicomDir]);
    await rm(root, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const pixels = await templates();
  const results: Result[] = [];
  for (const s of scenarios) results.push(await runScenario(s, pixels));
  const ok = results.every((r) => r.skipped || (r.lost === 0 && r.orphanFiles === 0 && r.auditChainOk && r.auditRowsMissing === 0 && r.crashes.length === 0));
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ clients, seconds, size, results, ok })}\n`);
  } else {
    const lines = [`fault run: ${clients} clients, ${seconds} s per scenario, ${size}x${size} studies, ?wait=true`];
    for (const r of results) {
      if (r.skipped) {
        lines.push(`${r.scenario}: skipped (${r.skipped})`);
        continue;
      }
      lines.push(
        `${r.scenario}: requests ${r.requests} ${JSON.stringify(r.statuses)}, transport errors ${r.transportErrors}, restarts ${r.restarts}; ` +
          `accepted ${r.accepted}, scored ${r.scored}, failed ${r.failed}, lost ${r.lost}; orphan files ${r.orphanFiles}; ` +
          `audit chain ${r.auditChainOk ? 'verifies' : 'BROKEN'}, accepted without audit row ${r.auditRowsMissing}; peak RSS ${r.peakRssMiB ?? '?'} MiB; ` +
          `server error lines ${r.serverErrors}; server crashes ${r.crashes.length}`,
      );
      for (const c of r.crashes) lines.push(`    crash: ${c}`);
      for (const e of r.serverErrorSamples) lines.push(`    ${e}`);
    }
    lines.push(ok ? 'OK' : 'FAILED');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
