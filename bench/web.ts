/**
 * Web app speed with a full database: `cxr-triage serve` on the shipped models and a fresh
 * PostgreSQL database, one real 2048x2048 study scored, then cloned in SQL to N studies (default
 * 10,000: the same film and prediction under new UIDs), and Debian's chromium timing
 *   - the worklist: sign-in done -> first page of rows rendered, and a reload of it;
 *   - the viewer: click on a row -> film windowed and drawn (the window readout appears).
 * Prints the figures (median of --repeat runs); asserts nothing.
 *
 *   npx tsx bench/web.ts [--studies 10000] [--repeat 5] [--admin-url postgres://postgres@127.0.0.1:5432/test]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { signToken } from '../src/api/tokens.js';
import { chestDicom } from '../src/data/simple-chest-dicom.js';
import { CLI, startServe } from '../test/support/serve-process.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values: args } = parseArgs({
  options: {
    studies: { type: 'string', default: '10000' },
    repeat: { type: 'string', default: '5' },
    'admin-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});

const N = Number(args.studies);
const repeat = Number(args.repeat);
const repo = resolve(import.meta.dirname, '..');
const PASSWORD = 'bench-only-password';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dbName = `cxr_bench_web_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: args['admin-url'] });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const url = new URL(args['admin-url']);
url.pathname = `/${dbName}`;
const root = await mkdtemp(join(tmpdir(), 'cxr-bench-web-'));
const secret = randomBytes(32).toString('base64');
const env = {
  ...process.env,
  DATABASE_URL: url.toString(),
  CXR_DATA_DIR: root,
  CXR_JWT_SECRET: secret,
  CXR_HMAC_KEY: randomBytes(32).toString('base64'),
  CXR_DIMSE_PORT: '0',
};
const server = await startServe(env);
const db = new pg.Client({ connectionString: url.toString() });
try {
  await db.connect();
  const add = spawnSync(process.execPath, [CLI, 'user', 'add', 'dr-bench', '--role', 'clinician', '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
    cwd: repo,
  });
  if (add.status !== 0) throw new Error(String(add.stderr));
  const ws = signToken(
    { secret: Buffer.from(secret, 'utf8'), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 },
    { sub: 'ws-bench', role: 'workstation', kind: 'operator' },
  ).token;
  const posted = await fetch(`${server.url}/v1/studies?wait=true`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ws}`, 'Content-Type': 'application/dicom' },
    body: chestDicom({ size: 2048, seed: 7 }),
  });
  const first = (await posted.json()) as { id: string };
  process.stdout.write(`scored one 2048x2048 study (${posted.status}); cloning it to ${N} studies in SQL\n`);
  const cols = (
    await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'studies' AND table_schema = 'public' ORDER BY ordinal_position`)
  ).rows.map((r: { column_name: string }) => r.column_name as string);
  const varying: Record<string, string> = {
    id: 'gen_random_uuid()',
    sop_instance_uid: `s.sop_instance_uid || '.' || g`,
    study_instance_uid: `s.study_instance_uid || '.' || g`,
    series_instance_uid: `s.series_instance_uid || '.' || g`,
    received_at: `s.received_at - make_interval(mins => g)`,
  };
  const copied = cols.filter((c) => c !== 'seq');
  const pcols = (
    await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'predictions' AND table_schema = 'public' ORDER BY ordinal_position`)
  ).rows
    .map((r: { column_name: string }) => r.column_name as string)
    .filter((c: string) => c !== 'id' && c !== 'study_id');
  const t0 = performance.now();
  await db.query(
    `WITH made AS (
       INSERT INTO studies (${copied.join(', ')})
       SELECT ${copied.map((c) => varying[c] ?? `s.${c}`).join(', ')} FROM studies s, generate_series(1, $2::int) g WHERE s.id = $1
       RETURNING id)
     INSERT INTO predictions (study_id, ${pcols.join(', ')})
     SELECT made.id, ${pcols.map((c) => `p.${c}`).join(', ')} FROM made, predictions p WHERE p.study_id = $1`,
    [first.id, N - 1],
  );
  process.stdout.write(`cloned in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox'] });
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 960 } })).newPage();
  await page.goto(`${server.url}/app/`);
  await page.getByLabel('Username').fill('dr-bench');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('table tbody tr').first().waitFor({ timeout: 60_000 });
  const worklist: number[] = [];
  const viewer: number[] = [];
  for (let i = 0; i < repeat; i++) {
    let t = performance.now();
    await page.goto(`${server.url}/app/worklist`);
    await page.locator('table tbody tr').first().waitFor({ timeout: 60_000 });
    worklist.push(performance.now() - t);
    t = performance.now();
    await page.locator('table tbody tr a').first().click();
    await page.getByText(/Window centre/).waitFor({ timeout: 60_000 });
    viewer.push(performance.now() - t);
  }
  await browser.close();
  const load = (await import('node:os')).loadavg()[0].toFixed(1);
  process.stdout.write(
    `studies in the database: ${N}\n` +
      `worklist first page rendered: median ${median(worklist).toFixed(0)} ms (runs: ${worklist.map((x) => x.toFixed(0)).join(', ')})\n` +
      `2048x2048 film open in the viewer: median ${median(viewer).toFixed(0)} ms (runs: ${viewer.map((x) => x.toFixed(0)).join(', ')})\n` +
      `load average at the end: ${load}\n`,
  );
} finally {
  server.proc.kill('SIGTERM');
  await server.exited;
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  await rm(root, { recursive: true, force: true });
}
