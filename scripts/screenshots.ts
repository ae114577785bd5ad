/**
 * Regenerates the README's screenshots of the web app: starts `cxr-triage serve` on the shipped
 * models and a fresh PostgreSQL database, posts the example study and a few synthetic films,
 * signs in as a clinician and an auditor in Debian's chromium, and writes
 * docs/screenshots/{worklist,viewer,audit}.png.
 *
 *   npx tsx scripts/screenshots.ts [--admin-url postgres://postgres@127.0.0.1:5432/test] [--out docs/screenshots]
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Page } from 'playwright-core';
import { chestDicom } from '../src/data/simple-chest-dicom.js';
import { addUser, serveOnFreshDatabase } from '../test/support/serve-process.js';

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
const PASSWORD = 'screenshots-only-password';

const fresh = await serveOnFreshDatabase({ adminUrl: args['admin-url'], prefix: 'cxr_screens' });
const base = fresh.server.url;

try {
  for (const [name, role] of [
    ['dr-ada', 'clinician'],
    ['au-bo', 'auditor'],
  ]) {
    addUser(fresh.env, name, role, PASSWORD, `Dr ${name.slice(3)}`);
  }
  const ws = fresh.token('workstation', 'ws-1');
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
  await fresh.stop();
}
