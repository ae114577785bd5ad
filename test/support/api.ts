/**
 * A real service for API tests: a fresh PostgreSQL database, random-weight model versions
 * built and exported by the real builders (src/ml/random-models.ts), the ONNX Runtime engine
 * on them, and the express app — nothing faked.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import { randomModels } from './random-models.js';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { startDimseServer, type DimseServer } from '../../src/api/dimse/scp.js';
import { buildService, type ServiceParts, type ServiceSettings } from '../../src/app/server.js';
import { isConnectionLost } from '../../src/db/data-source.js';
import { signToken } from '../../src/api/tokens.js';
import type { Role } from '../../src/db/entities.js';
import { loadEngine, type OnnxTriageEngine } from '../../src/inference/engine.js';
import { jsonLogger, silentLogger } from '../../src/service/log.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export { chestDicom };

export interface Harness {
  db: TestDatabase;
  root: string;
  modelsDir: string;
  settings: ServiceSettings;
  engine: OnnxTriageEngine;
  parts: ServiceParts;
  http: TestAgent;
  token(role: Role, sub?: string): string;
  /** builds a second service on the same database, store and engine (a restart), optionally with other settings */
  restart(overrides?: Partial<ServiceSettings>): Promise<ServiceParts>;
  close(): Promise<void>;
}

/** Random-weight small models under <root>/models, once per test file. */
async function testModels(root: string): Promise<string> {
  const modelsDir = join(root, 'models');
  await randomModels(modelsDir, { size: 'small', seed: 1, threshold: 0.4 });
  return modelsDir;
}

export async function startHarness(overrides: Partial<ServiceSettings> = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'cxr-api-'));
  const modelsDir = await testModels(root);
  const db = await createTestDatabase();
  const engine = await loadEngine({ modelsDir, tta: 2, threads: 1 });
  const settings: ServiceSettings = {
    jwt: { secret: randomBytes(32), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 },
    hmacKey: randomBytes(32),
    dicomDir: join(root, 'dicom'),
    maxBodyBytes: 2 * 1024 * 1024,
    queueSize: 16,
    inferConcurrency: 1,
    waitTimeoutMs: 60_000,
    modelsDir,
    ...overrides,
  };
  const build = (more: Partial<ServiceSettings> = {}) =>
    buildService({
      ds: db.ds,
      engine,
      settings: { ...settings, ...more },
      // CXR_TEST_LOG=1 shows the service's log lines when a test needs explaining
      log: process.env.CXR_TEST_LOG ? jsonLogger() : silentLogger,
      loadEngine: (pick) => loadEngine({ modelsDir, tta: 2, threads: 1, ...pick }),
      defaultMetrics: false,
    });
  const parts = await build();
  const extra: ServiceParts[] = [];
  return {
    db,
    root,
    modelsDir,
    settings,
    engine,
    parts,
    http: supertest(parts.app),
    token: (role, sub = `${role}-1`) => signToken(settings.jwt, { sub, role, kind: 'operator' }).token,
    restart: async (more) => {
      const p = await build(more);
      extra.push(p);
      return p;
    },
    close: async () => {
      for (const p of [parts, ...extra]) await p.close();
      await parts.service.closeEngine();
      await engine.close();
      await db.drop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A distinct small chest study per seed (UIDs derive from the seed). */
export function study(
  seed: number,
  opts: { size?: number; viewPosition?: string; studyInstanceUid?: string; accessionNumber?: string; studyDate?: string } = {},
): Buffer {
  return Buffer.from(chestDicom({ ...opts, size: opts.size ?? 256, seed }));
}

/** Polls until the study is no longer queued (the queue is in-process; this bounds a hang). */
/** The harness's service behind a DIMSE Storage SCP (AE CXRTRIAGE) on a free local port. */
export function startHarnessScp(h: Harness): Promise<DimseServer> {
  return startDimseServer({
    aeTitle: 'CXRTRIAGE',
    host: '127.0.0.1',
    port: 0,
    maxBytes: h.settings.maxBodyBytes,
    ds: h.db.ds,
    service: h.parts.service,
    log: silentLogger,
    metrics: h.parts.metrics,
  });
}

export async function waitScored(h: Harness, id: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    // a connection cut by a fault test is not the study's fate: ask again
    const rows: { status: string }[] = await h.db.ds.query('SELECT status FROM studies WHERE id = $1', [id]).catch((e) => {
      if (isConnectionLost(e)) return [];
      throw e;
    });
    if (rows[0] && rows[0].status !== 'queued') return;
    if (Date.now() > end) throw new Error(`study ${id} still queued after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
