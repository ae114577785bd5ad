/**
 * Many processes, one database, one store: two API processes (`serve --workers 0`) and two
 * scoring processes (`worker`) share a PostgreSQL database and an object store. Studies are
 * posted to both APIs; a worker and an API process are killed with SIGKILL mid-run. Afterwards
 * every accepted study has exactly one prediction, every study is readable (report and image)
 * through both APIs, nothing is left in the store that no study names, and the audit chain
 * verifies. Run once for each CXR_STORE kind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { randomModels } from '../support/random-models.js';
import { signToken } from '../../src/api/tokens.js';
import { verifyAuditChain } from '../../src/db/audit.js';
import { collectGarbage, type StoreKind } from '../../src/service/object-store.js';
import { openObjectStore } from '../../src/service/stores.js';
import { study } from '../support/api.js';
import { createTestDatabase } from '../support/database.js';
import { CLI } from '../support/serve-process.js';

const JWT_SECRET = 'scale-test-jwt-secret-0123456789abcdef';
const jwt = { secret: Buffer.from(JWT_SECRET), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 };
let root: string;
const running = new Set<ChildProcess>();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-scale-'));
  await tf.setBackend('cpu');
  await randomModels(join(root, 'models'), { size: 'small', seed: 1, threshold: 0.4 });
});

after(async () => {
  for (const p of running) p.kill('SIGKILL');
  if (root) await rm(root, { recursive: true, force: true });
});

interface Proc {
  proc: ChildProcess;
  /** the API's base URL (API processes) */
  url: string;
  output: () => string;
}

/** Starts a CLI process and resolves once its output matches `ready` (its first group is the URL, if any). */
function start(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Proc> {
  const proc = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start in 120 s:\n${out}`)), 120_000);
    const seen = (c: Buffer) => {
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] ?? '', output: () => out });
      }
    };
    proc.stdout!.on('data', seen);
    proc.stderr!.on('data', seen);
    proc.on('close', (code) => {
      running.delete(proc);
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code} before it was ready:\n${out}`));
    });
  });
}

function kill9(p: Proc): Promise<void> {
  return new Promise((r) => {
    p.proc.once('close', () => r());
    p.proc.kill('SIGKILL');
  });
}

async function stop(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  await new Promise<void>((r) => {
    p.proc.once('close', () => r());
    p.proc.kill('SIGTERM');
  });
}

for (const kind of ['fs', 'pg'] as StoreKind[]) {
  test(`2 APIs + 2 workers on one database and a shared ${kind} store survive kill -9 of a worker and an API`, { timeout: 300_000 }, async () => {
    const db = await createTestDatabase();
    const storeDir = join(root, `store-${kind}`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      CXR_STORE: kind,
      CXR_DICOM_DIR: storeDir,
      CXR_DATA_DIR: join(root, `data-${kind}`),
      CXR_MODELS_DIR: join(root, 'models'),
      CXR_JWT_SECRET: JWT_SECRET,
      CXR_HMAC_KEY: 'scale-test-hmac-key-0123456789abcdef',
      CXR_TTA: '2',
      CXR_DIMSE_PORT: '0',
      CXR_INFER_THREADS: '1',
      // a killed worker's job is taken to have died after 4 s, and maintenance looks every second
      CXR_JOB_TIMEOUT_S: '4',
      CXR_JOB_MAINTENANCE_S: '1',
      CXR_JOB_RETRY_DELAY_S: '1',
      CXR_JOB_POLL_MS: '100',
    };
    const procs: Proc[] = [];
    try {
      const api = () => start(['serve', '--port', '0', '--workers', '0'], env, /listening on (http:\/\/\S+)/);
      const worker = () => start(['worker'], env, /"msg":"worker ready"/);
      const [api1, api2, w1, w2] = await Promise.all([api(), api(), worker(), worker()]);
      procs.push(api1, api2, w1, w2);
      const ws = `Bearer ${signToken(jwt, { sub: 'ws-scale', role: 'workstation', kind: 'operator' }).token}`;
      const clin = `Bearer ${signToken(jwt, { sub: 'dr-scale', role: 'clinician', kind: 'operator' }).token}`;

      const N = 16;
      const accepted: string[] = [];
      const statuses: string[] = [];
      let next = 0;
      let killed = false;
      const lane = async () => {
        for (let i = next++; i < N; i = next++) {
          // alternate between the APIs while both live
          const target = i % 2 === 0 || killed ? api1 : api2;
          try {
            const r = await fetch(`${target.url}/v1/studies`, {
              method: 'POST',
              headers: { Authorization: ws, 'Content-Type': 'application/dicom' },
              body: study(1000 + i),
            });
            statuses.push(`${i}:${r.status}`);
            if (r.status === 202) accepted.push(((await r.json()) as { id: string }).id);
          } catch (e) {
            statuses.push(`${i}:${(e as Error).message}`); // the API died under this request
          }
          if (!killed && accepted.length >= 6) {
            killed = true;
            await Promise.all([kill9(w1), kill9(api2)]);
          }
        }
      };
      await Promise.all([lane(), lane(), lane()]);
      assert.ok(killed, 'the kills happened mid-run');
      assert.ok(accepted.length >= N - 4, `most posts accepted: ${statuses.join(' ')}`);

      // A new API process stands in for the killed one; every process can serve every study.
      const api3 = await api();
      procs.push(api3);

      // Every study the database holds was accepted (some answers may have died with api2): wait for all of them.
      const deadline = Date.now() + 120_000;
      for (;;) {
        const [{ n }] = await db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE status = 'queued'`);
        if (n === 0) break;
        assert.ok(Date.now() < deadline, `${n} studies still queued after 120 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const rows: { id: string; status: string; n: number }[] = await db.ds.query(
        `SELECT s.id, s.status, count(p.id)::int AS n FROM studies s LEFT JOIN predictions p ON p.study_id = s.id GROUP BY s.id`,
      );
      for (const id of accepted)
        assert.ok(
          rows.some((r) => r.id === id),
          `accepted study ${id} is recorded`,
        );
      for (const r of rows) assert.deepEqual({ status: r.status, n: r.n }, { status: 'scored', n: 1 }, `study ${r.id}`);

      for (const a of [api1, api3]) {
        for (const r of rows) {
          const got = await fetch(`${a.url}/v1/studies/${r.id}`, { headers: { Authorization: clin } });
          assert.equal(got.status, 200);
          const body = (await got.json()) as { status: string; prediction: { probability: number } | null };
          assert.equal(body.status, 'scored');
          assert.ok(body.prediction && body.prediction.probability >= 0);
          const img = await fetch(`${a.url}/v1/studies/${r.id}/image.png`, { headers: { Authorization: clin } });
          assert.equal(img.status, 200, `image of ${r.id} through ${a.url}`);
          assert.equal(img.headers.get('content-type'), 'image/png');
          await img.arrayBuffer();
        }
        for (const kindOfImage of ['mask', 'heatmap']) {
          const img = await fetch(`${a.url}/v1/studies/${rows[0].id}/${kindOfImage}.png`, { headers: { Authorization: clin } });
          assert.equal(img.status, 200);
          await img.arrayBuffer();
        }
      }

      // The AI result objects of every scored study get made too, by whichever worker is left.
      for (let i = 0; ; i++) {
        const [u] = await db.ds.query(`SELECT count(*)::int AS n FROM derived_objects WHERE sha256 IS NULL AND build_error IS NULL`);
        if (u.n === 0) break;
        assert.ok(i < 1200, `${u.n} result objects still unmade after 60 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // Files of accepts cut short by the kill (stored, never committed) are what the collector removes.
      const store = openObjectStore(kind, { dir: storeDir, ds: db.ds });
      await collectGarbage(db.ds, store, 0);
      const kept: string[] = [];
      for await (const page of store.list(new Date(Date.now() + 60_000))) kept.push(...page);
      const named: { sha256: string }[] = await db.ds.query(`SELECT sha256 FROM studies UNION SELECT sha256 FROM derived_objects WHERE sha256 IS NOT NULL`);
      assert.deepEqual(kept.sort(), named.map((r) => r.sha256).sort(), "the store holds exactly the studies' objects and their result objects");

      const verified = await verifyAuditChain(db.ds);
      assert.equal(verified.ok, true, JSON.stringify(verified.firstBroken));
      const created: { n: number }[] = await db.ds.query(
        `SELECT count(DISTINCT study_id)::int AS n FROM audit_log WHERE action = 'study.create' AND outcome = 'ok'`,
      );
      assert.equal(created[0].n, rows.length, 'every study has its study.create audit row');
    } finally {
      await Promise.all(procs.map(stop));
      await db.drop();
    }
  });
}
