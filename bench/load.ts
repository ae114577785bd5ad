/**
 * Load check: N concurrent workstation clients post synthetic chest studies for a bounded
 * time against the running service on 127.0.0.1, each waiting for its report (?wait=true),
 * as a modality would. Prints throughput and latency percentiles, then proves from the
 * database that every accepted study has exactly one prediction row and that no request
 * got a 5xx. Exit status 1 when either check fails.
 *
 *   npx tsx bench/load.ts                       # starts `cxr-triage serve` itself (fresh data dir)
 *   npx tsx bench/load.ts --url http://127.0.0.1:8080   # a service already running with this env
 *
 * Options: --clients 16 --seconds 30 --size 512 (image side) --templates 8 (pixel sets, one per client in turn) --warmup 0 --json
 * --warmup N: the first N of the --seconds are load but not measurement (models loading, the
 * first wave of uploads); throughput then counts the studies answered inside the measured
 * window, divided by its length, and the latency percentiles are of those answers.
 * The server runs on CXR_MODELS_DIR (default ./models); when that holds no models, random
 * full-size ones (real DenseNet121-SE and U-Net shapes, so real compute) are built once
 * into $TMPDIR/cxr-load-models.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { openServiceDatabase } from '../src/app/database.js';
import { signToken } from '../src/api/tokens.js';
import { decodeModality } from '../src/dicom/index.js';
import { chestDicom, encodeChestCr } from '../src/data/simple-chest-dicom.js';
import { newUid } from '../src/dicom/write.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    clients: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '0' },
    size: { type: 'string', default: '512' },
    templates: { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
  },
});
const clients = Number(args.clients);
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
if (!(warmup >= 0 && warmup < seconds)) throw new Error('--warmup must be at least 0 and less than --seconds');
const size = Number(args.size);
const log = (m: string) => process.stderr.write(`${m}\n`);

/** Pixel templates decoded once (--templates of them). */
async function templates(n: number): Promise<Uint16Array[]> {
  const out: Uint16Array[] = [];
  for (let seed = 1; seed <= n; seed++) {
    const img = await decodeModality(chestDicom({ size, seed }));
    out.push(Uint16Array.from(img.values));
  }
  return out;
}

/** Digits at the end of each UID that a post rewrites: client (3) and post number (9). */
const UID_DIGITS = 12;

/**
 * A client's study file, encoded once (a modality sends files it already has; re-encoding
 * 8 MB per post made the client, not the service, a third of this machine's load). Every post
 * rewrites the last digits of its UIDs in place, so each is a new instance of the same length.
 */
function clientStudy(pixels: Uint16Array, run: string, client: number): (i: number) => Buffer {
  const parts = ['load', run, client];
  const bytes = Buffer.from(encodeChestCr(pixels, size, { uidParts: parts, patientId: `LOAD-${client}` }));
  // each UID is 2.25.<128-bit number>, whose last digits can change and leave it a valid UID
  const head = bytes.subarray(0, 64 * 1024);
  const at: number[] = [];
  for (const uid of ['study', 'series', 'sop'].map((k) => newUid([...parts, k]))) {
    if (uid.length - uid.lastIndexOf('.') - 1 <= UID_DIGITS) throw new Error(`UID ${uid} is too short to rewrite`);
    for (let k = head.indexOf(uid); k >= 0; k = head.indexOf(uid, k + 1)) at.push(k + uid.length - UID_DIGITS);
  }
  return (i) => {
    // this client's previous post was answered before the next starts: rewriting is safe
    const digits = `${String(client).padStart(3, '0')}${String(i).padStart(9, '0')}`;
    for (const k of at) bytes.write(digits, k, 'latin1');
    return bytes;
  };
}

async function modelsDir(): Promise<string> {
  const configured = resolve(process.env.CXR_MODELS_DIR ?? 'models');
  if (existsSync(join(configured, 'segmenter')) && existsSync(join(configured, 'classifier'))) return configured;
  const cached = join(tmpdir(), 'cxr-load-models');
  if (!existsSync(join(cached, 'classifier', 'random-full', 'model.onnx'))) {
    log(`no models in ${configured}: building random full-size models into ${cached} (once)…`);
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const { createRandomModels } = await import('../src/ml/random-models.js');
    await createRandomModels(cached, { size: 'full', seed: 1, threshold: 0.5, log });
  }
  return cached;
}

async function startServer(env: NodeJS.ProcessEnv): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'cxr-triage.js'), 'serve', '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const url = await new Promise<string>((res, rej) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]);
    });
    proc.on('close', (code) => rej(new Error(`serve exited with ${code}:\n${err}`)));
  });
  return { url, proc };
}

/** Keep-alive connections, one per client at most. */
const agent = new Agent({ keepAlive: true, maxSockets: clients });

/**
 * One POST with node:http: the body goes to the socket as it is. fetch (undici) copies each
 * 8 MB body and pushes it through web streams, which cost this client a core's tenth.
 */
function post(url: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (e) {
          reject(e);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<number> {
  let url = args.url;
  let server: ChildProcess | null = null;
  if (!url) {
    if (!process.env.CXR_DATA_DIR) {
      process.env.CXR_DATA_DIR = await mkdtemp(join(tmpdir(), 'cxr-load-'));
      await chmod(process.env.CXR_DATA_DIR, 0o755); // the embedded PostgreSQL may run as another user
    }
    process.env.CXR_MODELS_DIR = await modelsDir();
    process.env.CXR_QUEUE_SIZE ??= String(Math.max(64, clients * 2));
    process.env.CXR_DIMSE_PORT ??= '0'; // HTTP load only; leave 11112 to a real server
    log(`starting cxr-triage serve (data ${process.env.CXR_DATA_DIR}, models ${process.env.CXR_MODELS_DIR})…`);
    ({ url, proc: server } = await startServer({ ...process.env }));
  }
  const cfg = loadConfig();
  const token = signToken(cfg.jwt, { sub: 'load-bench', role: 'workstation', kind: 'operator' }, seconds + 600).token;
  const run = `${Date.now()}`;
  const pixels = await templates(Number(args.templates));
  const studies = Array.from({ length: clients }, (_, c) => clientStudy(pixels[c % pixels.length], run, c));

  log(`${clients} clients posting ${size}x${size} studies to ${url} for ${seconds} s…`);
  const latencies: number[] = [];
  /** answers inside the measured window [t0 + warmup, deadline]: accepted count and latencies */
  const measured: number[] = [];
  const statuses = new Map<number, number>();
  const accepted: string[] = [];
  const errors: string[] = [];
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const windowStart = t0 + warmup * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const body = studies[client](i);
        const start = performance.now();
        try {
          const r = await post(`${url}/v1/studies?wait=true`, body, { Authorization: `Bearer ${token}`, 'Content-Type': 'application/dicom' });
          const json = r.json as { id?: string };
          const end = performance.now();
          latencies.push(end - start);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if ((r.status === 200 || r.status === 202) && json.id) {
            accepted.push(json.id);
            if (end >= windowStart && end <= deadline) measured.push(end - start);
          }
        } catch (e) {
          errors.push(String(e));
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();

  // Every accepted study must end with exactly one prediction row.
  const db = await openServiceDatabase(cfg);
  let counts: { id: string; status: string; n: number }[] = [];
  try {
    const until = Date.now() + 120_000;
    for (;;) {
      counts = await db.ds.query(
        `SELECT s.id, s.status, count(p.id)::int AS n FROM studies s LEFT JOIN predictions p ON p.study_id = s.id WHERE s.id = ANY($1::uuid[]) GROUP BY s.id, s.status`,
        [accepted],
      );
      if (counts.every((c) => c.status !== 'queued') || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await db.close();
  }
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.on('close', r));
  }

  const windowed = warmup > 0;
  const sorted = [...(windowed ? measured : latencies)].sort((a, b) => a - b);
  const fivexx = [...statuses].filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0);
  const exactlyOne = counts.filter((c) => c.n === 1).length;
  const result = {
    clients,
    seconds: Math.round(elapsed * 10) / 10,
    imageSize: size,
    requests: latencies.length,
    accepted: accepted.length,
    warmupSeconds: warmup,
    measuredAnswers: windowed ? measured.length : accepted.length,
    throughputPerSecond: Math.round((windowed ? measured.length / (seconds - warmup) : accepted.length / elapsed) * 100) / 100,
    latencyMs: {
      p50: Math.round(percentile(sorted, 50)),
      p90: Math.round(percentile(sorted, 90)),
      p99: Math.round(percentile(sorted, 99)),
      max: Math.round(sorted[sorted.length - 1] ?? NaN),
    },
    statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
    transportErrors: errors.length,
    studiesFound: counts.length,
    studiesWithExactlyOnePrediction: exactlyOne,
    fivexx,
  };
  const ok = fivexx === 0 && errors.length === 0 && accepted.length > 0 && counts.length === accepted.length && exactlyOne === accepted.length;
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ ...result, ok })}\n`);
  } else {
    process.stdout.write(
      `${[
        `clients ${result.clients}, ${result.seconds} s, ${size}x${size} studies, ?wait=true`,
        `requests ${result.requests}, accepted ${result.accepted}, throughput ${result.throughputPerSecond} studies/s${windowed ? ` (${measured.length} answered in the ${seconds - warmup} s after a ${warmup} s warm-up)` : ''}`,
        `latency p50 ${result.latencyMs.p50} ms, p90 ${result.latencyMs.p90} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms`,
        `statuses ${JSON.stringify(result.statuses)}, transport errors ${errors.length}${errors.length ? ` (${errors[0]})` : ''}`,
        `accepted studies with exactly one prediction row: ${exactlyOne}/${accepted.length}${counts.length !== accepted.length ? ` (only ${counts.length} found)` : ''}`,
        `5xx responses: ${fivexx}`,
        ok ? 'OK' : 'FAILED',
      ].join('\n')}\n`,
    );
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
