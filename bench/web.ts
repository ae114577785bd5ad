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
import { parseArgs } from 'node:util';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { chestDicom } from '../src/data/simple-chest-dicom.js';
import { addUser, serveOnFreshDatabase } from '../test/support/serve-process.js';
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
const PASSWORD = 'bench-only-password';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const fresh = await serveOnFreshDatabase({ adminUrl: args['admin-url'], prefix: 'cxr_bench_web' });
const server = fresh.server;
const db = new pg.Client({ connectionString: fresh.dbUrl });
try {
  await db.connect();
  addUser(fresh.env, 'dr-bench', 'clinician', PASSWORD);
  const ws = fresh.token('workstation', 'ws-bench');
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
  await db.end();
  await fresh.stop();
}
