/**
 * Throughput at saturation against the number of scoring workers, next to what the inference
 * engine alone does, in one run on this machine. For each worker count it starts
 * `cxr-triage serve --workers N` on a fresh database of the local PostgreSQL, drives it with
 * bench/load.ts (16 clients posting 2048x2048 studies with ?wait=true), and prints studies/s
 * and p50/p99 latency; the engine-alone figure is `cxr-triage bench latency` on a study of the
 * same size (studies/s = 1000 / p50 ms of 20, one stream, all the service's threads), measured
 * before and after the service runs, the faster counting. The last column is the
 * service's share of the engine-alone throughput. The service is measured in steady state: the
 * first --warmup seconds of load (models loading, the first wave of 16 uploads) are not counted.
 *
 *   npx tsx bench/throughput.ts                       # workers 1 and 2, 60 s each (20 s warm-up)
 *   npx tsx bench/throughput.ts --workers 1,2,4 --seconds 30 --clients 16 --size 2048 --json
 *
 * Options: --workers LIST, --seconds N (per worker count), --warmup N (of those seconds), --clients N, --size N (image side),
 * --threads N (ONNX Runtime threads per worker; default: cores / workers, at least 1), --tta N,
 * --store fs|pg, --database URL (admin connection; default CXR_TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432/test), --json. Models: CXR_MODELS_DIR or ./models.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { chestDicom } from '../src/data/simple-chest-dicom.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '20' },
    clients: { type: 'string', default: '16' },
    size: { type: 'string', default: '2048' },
    threads: { type: 'string' },
    tta: { type: 'string', default: '4' },
    store: { type: 'string', default: 'fs' },
    database: { type: 'string', default: process.env.CXR_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    json: { type: 'boolean', default: false },
  },
});
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'cxr-triage.js');
const workerCounts = args.workers.split(',').map((w) => Number(w));
const cores = availableParallelism();
const log = (m: string) => process.stderr.write(`${m}\n`);
const threadsFor = (workers: number) => (args.threads ? Number(args.threads) : Math.max(1, Math.floor(cores / Math.max(1, workers))));
const modelsDir = resolve(process.env.CXR_MODELS_DIR ?? join(ROOT, 'models'));

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: args.database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function engineAlone(file: string, threads: number): { p50: number; p90: number; perSecond: number } {
  const r = spawnSync(
    process.execPath,
    [CLI, 'bench', 'latency', file, '--repeat', '20', '--tta', args.tta, '--threads', String(threads), '--models', modelsDir, '--json'],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0) throw new Error(`bench latency failed:\n${r.stderr}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { per_study_ms_p50: number; per_study_ms_p90: number };
  return { p50: j.per_study_ms_p50, p90: j.per_study_ms_p90, perSecond: 1000 / j.per_study_ms_p50 };
}

function startServe(env: NodeJS.ProcessEnv, workers: number): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--workers', String(workers)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((res, rej) => {
    const seen = (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res({ url: m[1], proc });
    };
    proc.stdout!.on('data', seen);
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('close', (code) => rej(new Error(`serve exited with ${code}:\n${out.slice(-3000)}`)));
  });
}

interface LoadResult {
  throughputPerSecond: number;
  accepted: number;
  latencyMs: { p50: number; p99: number };
  fivexx: number;
  ok: boolean;
}

function runLoad(env: NodeJS.ProcessEnv, url: string): Promise<LoadResult> {
  return new Promise((res, rej) => {
    const p = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'bench', 'load.ts'),
        '--url',
        url,
        '--clients',
        args.clients,
        '--seconds',
        args.seconds,
        '--warmup',
        args.warmup,
        '--size',
        args.size,
        '--json',
      ],
      { env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.on('close', () => {
      try {
        res(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
      } catch {
        rej(new Error(`load.ts printed no result: ${out}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'cxr-throughput-'));
  const file = join(scratch, 'study.dcm');
  await writeFile(file, chestDicom({ size: Number(args.size), seed: 7 }));
  const rows: Record<string, unknown>[] = [];
  try {
    for (const workers of workerCounts) {
      const threads = threadsFor(workers);
      log(`engine alone: bench latency, ${threads * workers} threads, TTA ${args.tta}…`);
      const before = engineAlone(file, threads * workers);
      const name = `cxr_bench_${randomBytes(5).toString('hex')}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      const u = new URL(args.database);
      u.pathname = `/${name}`;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: u.toString(),
        CXR_DATA_DIR: join(scratch, `data-${workers}`),
        CXR_MODELS_DIR: modelsDir,
        CXR_STORE: args.store,
        CXR_JWT_SECRET: 'throughput-bench-jwt-secret-0123456789',
        CXR_HMAC_KEY: 'throughput-bench-hmac-key-0123456789ab',
        CXR_INFER_THREADS: String(threads),
        CXR_TTA: args.tta,
        CXR_QUEUE_SIZE: String(Math.max(64, Number(args.clients) * 4)),
        CXR_DIMSE_PORT: '0',
        CXR_WAIT_TIMEOUT_S: '600',
      };
      let server: ChildProcess | null = null;
      try {
        log(`service: serve --workers ${workers} (${threads} threads each), ${args.clients} clients, ${args.size}x${args.size}, ${args.seconds} s…`);
        const s = await startServe(env, workers);
        server = s.proc;
        const load = await runLoad(env, s.url);
        server.kill('SIGTERM');
        await new Promise((r) => server!.once('close', r));
        server = null;
        // measured again once the service is gone; the faster of the two is the figure (the
        // machine's other work, such as writing back the service's files, only ever slows it)
        log('engine alone again…');
        const after = engineAlone(file, threads * workers);
        const engine = after.perSecond > before.perSecond ? after : before;
        rows.push({
          workers,
          threadsPerWorker: threads,
          engineAlonePerSecond: round(engine.perSecond),
          engineAloneP50Ms: engine.p50,
          engineAloneRunsPerSecond: [round(before.perSecond), round(after.perSecond)],
          throughputPerSecond: load.throughputPerSecond,
          p50Ms: load.latencyMs.p50,
          p99Ms: load.latencyMs.p99,
          shareOfEngine: round(load.throughputPerSecond / engine.perSecond),
          accepted: load.accepted,
          fivexx: load.fivexx,
          ok: load.ok,
        });
      } finally {
        if (server) {
          server.kill('SIGTERM');
          await new Promise((r) => server!.once('close', r));
        }
        await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (args.json) {
    process.stdout.write(
      `${JSON.stringify({ cores, size: Number(args.size), clients: Number(args.clients), tta: Number(args.tta), store: args.store, rows })}\n`,
    );
    return;
  }
  process.stdout.write(`${cores} cores, ${args.clients} clients, ${args.size}x${args.size} studies, TTA ${args.tta}, store ${args.store}\n`);
  process.stdout.write('workers  threads  engine-alone/s  service/s  p50 ms  p99 ms  share  accepted  5xx\n');
  for (const r of rows) {
    process.stdout.write(
      `${String(r.workers).padStart(7)}  ${String(r.threadsPerWorker).padStart(7)}  ${String(r.engineAlonePerSecond).padStart(14)}  ${String(r.throughputPerSecond).padStart(9)}  ${String(r.p50Ms).padStart(6)}  ${String(r.p99Ms).padStart(6)}  ${String(r.shareOfEngine).padStart(5)}  ${String(r.accepted).padStart(8)}  ${String(r.fivexx).padStart(3)}\n`,
    );
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
