/**
 * Regenerates the README's screenshots of the web app: starts `cxr-triage serve` on the shipped
 * models and a fresh PostgreSQL database, posts the example study and a few synthetic films,
 * signs in as a clinician and an auditor in Debian's chromium, and writes
 * docs/screenshots/{worklist,viewer,audit}.png.
 *
 *   npx tsx scripts/screenshots.ts [--admin-url postgres://postgres@127.0.0.1:5432/test] [--out docs/screenshots]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { chromium, type Page } from 'playwright-core';
import { chestDicom } from '../src/data/simple-chest-dicom.js';
import { signToken } from '../src/api/tokens.js';

const { values: args } = parseArgs({
  options: {
    'admin-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    out: { type: 'string', default: 'docs/screenshots' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('npx tsx scripts/screenshots.ts [--admin-url URL] [--out DIR] [--chromium PATH]\n');
  process.exit(0);
}

const repo = resolve(import.meta.dirname, '..');
const CLI = join(repo, 'bin', 'cxr-triage.js');
const PASSWORD = 'screenshots-only-password';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

const dbName = `cxr_screens_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: args['admin-url'] });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const dbUrl = new URL(args['admin-url']);
dbUrl.pathname = `/${dbName}`;
const root = await mkdtemp(join(tmpdir(), 'cxr-screens-'));
const secret = randomBytes(32).toString('base64');
const env = {
  ...process.env,
  DATABASE_URL: dbUrl.toString(),
  CXR_DATA_DIR: root,
  CXR_JWT_SECRET: secret,
  CXR_HMAC_KEY: randomBytes(32).toString('base64'),
  CXR_DIMSE_PORT: '0',
};
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(process.execPath, [CLI, 'serve', '--port', String(port)], { env, cwd: repo, stdio: 'ignore' });

try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // starting
    }
    if (i > 600) throw new Error('serve did not become ready');
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const [name, role] of [
    ['dr-ada', 'clinician'],
    ['au-bo', 'auditor'],
  ]) {
    const r = spawnSync(process.execPath, [CLI, 'user', 'add', name, '--role', role, '--display-name', `Dr ${name.slice(3)}`, '--password-stdin'], {
      env,
      input: `${PASSWORD}\n`,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
  }
  const ws = signToken(
    { secret: Buffer.from(secret, 'utf8'), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 },
    { sub: 'ws-1', role: 'workstation', kind: 'operator' },
  ).token;
  const studies = [readFileSync(join(repo, 'fixtures', 'example', 'chest.dcm')), ...[3, 4, 5].map((seed) => chestDicom({ size: 1024, seed }))];
  for (const body of studies) {
    const r = await fetch(`${base}/v1/studies?wait=true`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ws}`, 'Content-Type': 'application/dicom' },
      body,
    });
    process.stdout.write(`posted a study: ${r.status}\n`);
  }
  const out = resolve(repo, args.out);
  mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox'] });
  const signIn = async (name: string): Promise<Page> => {
    const page = await (await browser.newContext({ viewport: { width: 1440, height: 960 } })).newPage();
    await page.goto(`${base}/app/`);
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    return page;
  };
  const clin = await signIn('dr-ada');
  await clin.locator('table tbody tr').first().waitFor();
  await clin.screenshot({ path: join(out, 'worklist.png') });
  await clin.locator('table tbody tr a').first().click();
  await clin.getByText(/Window centre/).waitFor();
  await clin.waitForTimeout(500);
  await clin.screenshot({ path: join(out, 'viewer.png') });
  await clin.getByRole('button', { name: 'Agree', exact: true }).click();
  await clin.getByRole('button', { name: 'Save review' }).click();
  await clin.getByText('Review saved.').waitFor();
  const aud = await signIn('au-bo');
  await aud.getByRole('button', { name: 'Verify chain' }).click();
  await aud.getByText(/Chain intact/).waitFor();
  await aud.getByRole('heading', { name: 'Charts (last 30 days)' }).scrollIntoViewIfNeeded();
  await aud.waitForTimeout(300);
  await aud.screenshot({ path: join(out, 'audit.png'), fullPage: true });
  await browser.close();
  process.stdout.write(`screenshots written to ${out}\n`);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('close', r));
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  await rm(root, { recursive: true, force: true });
}
