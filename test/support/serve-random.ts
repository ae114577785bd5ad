/**
 * `cxr-triage serve` as a child process on random-weight models and a fresh PostgreSQL test
 * database (for the hostile-client and fuzz tests): what a hostile client
 * meets over real HTTP. The test reads the process's liveness, its resident memory from
 * /proc, and its JSON log lines; tokens are signed with the secret given to the server.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomModels } from './random-models.js';
import { startServe as spawnServe } from './serve-process.js';
import { signToken } from '../../src/api/tokens.js';
import type { Role } from '../../src/db/entities.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export interface ServeProcess {
  url: string;
  pid: number;
  db: TestDatabase;
  root: string;
  /** stored DICOM files live here */
  dicomDir: string;
  token(role: Role, sub?: string): string;
  /** still running (not exited) */
  alive(): boolean;
  stderr(): string;
  /** the JSON lines the server logged so far */
  logLines(): Record<string, unknown>[];
  /** current and peak resident set size in KiB (VmRSS, VmHWM) */
  memory(): { rssKiB: number; peakKiB: number };
  stop(): Promise<number | null>;
}

export async function startServe(env: Record<string, string> = {}): Promise<ServeProcess> {
  const root = await mkdtemp(join(tmpdir(), 'cxr-hostile-'));
  await randomModels(join(root, 'models'), { size: 'small', seed: 1, threshold: 0.4 });
  const db = await createTestDatabase();
  const jwtSecret = randomBytes(32).toString('hex');
  const dicomDir = join(root, 'dicom');
  let serve: Awaited<ReturnType<typeof spawnServe>>;
  try {
    serve = await spawnServe({
      ...process.env,
      DATABASE_URL: db.url,
      CXR_DATA_DIR: join(root, 'data'),
      CXR_DICOM_DIR: dicomDir,
      CXR_MODELS_DIR: join(root, 'models'),
      CXR_JWT_SECRET: jwtSecret,
      CXR_HMAC_KEY: randomBytes(32).toString('hex'),
      CXR_TTA: '2',
      CXR_INFER_THREADS: '1',
      ...env,
    });
  } catch (e) {
    await db.drop();
    await rm(root, { recursive: true, force: true });
    throw e;
  }
  let exitCode: number | null | undefined;
  const exited = serve.exited.then(({ code }) => {
    exitCode = code;
    return code;
  });
  const err = serve.stderr;
  const proc = serve.proc;
  const url = serve.url;
  const jwt = { secret: Buffer.from(jwtSecret, 'utf8'), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 };
  return {
    url,
    pid: proc.pid!,
    db,
    root,
    dicomDir,
    token: (role, sub = `${role}-1`) => signToken(jwt, { sub, role, kind: 'operator' }).token,
    alive: () => exitCode === undefined,
    stderr: err,
    logLines: () =>
      err()
        .split('\n')
        // the last piece is a line still being written (or empty)
        .slice(0, -1)
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    memory: () => {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return { rssKiB: kib('VmRSS'), peakKiB: kib('VmHWM') };
    },
    stop: async () => {
      if (exitCode === undefined) proc.kill('SIGTERM');
      const code = await exited;
      await db.drop();
      await rm(root, { recursive: true, force: true });
      return code;
    },
  };
}
