/**
 * The web app in a real browser: Debian's chromium driven by playwright-core against
 * `cxr-triage serve` (a child process) on a real PostgreSQL database, with people created by
 * `cxr-triage user add` and studies posted by a workstation. Nothing is faked: the pages read
 * the same API machines do, through the session cookie.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { randomModels } from '../support/random-models.js';
import { signToken } from '../../src/api/tokens.js';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { spawnCliSync } from '../support/cli.js';
import { addUser as addServerUser, type ServeProcess, startServe } from '../support/serve-process.js';

const CHROMIUM = process.env.CXR_CHROMIUM ?? '/usr/bin/chromium';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'correct horse battery staple';

let root: string;
let db: TestDatabase;
let server: ServeProcess;
let base: string;
let browser: Browser;
let jwtSecret: Buffer;
const studyIds: string[] = [];

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: db.url,
    CXR_DATA_DIR: join(root, 'data'),
    CXR_MODELS_DIR: join(root, 'models'),
    CXR_JWT_SECRET: jwtSecret.toString('utf8'),
    CXR_HMAC_KEY: randomBytes(32).toString('base64'),
    CXR_TTA: '2',
    CXR_DIMSE_PORT: '0',
  };
}

function token(role: 'workstation' | 'clinician' | 'auditor', sub: string): string {
  return signToken({ secret: jwtSecret, issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 }, { sub, role, kind: 'operator' }).token;
}

function addUser(name: string, role: string): void {
  assert.match(addServerUser(env(), name, role, PASSWORD), new RegExp(`user '${name}' \\(${role}\\) created`));
}

async function signIn(name: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${base}/app/`);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return { context, page };
}

/** Waits until a locator matches exactly n elements (the page's CSP forbids evaluating strings). */
async function countIs(l: Locator, n: number, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await l.count()) !== n) {
    if (Date.now() > until) assert.fail(`expected ${n} elements, found ${await l.count()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** axe-core in the page: no serious or critical violations. */
async function accessible(page: Page, what: string): Promise<void> {
  await page.evaluate(axeSource);
  const result = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as {
    violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  };
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `${what} has no serious or critical accessibility violations`,
  );
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-web-'));
  // the service takes the variable's UTF-8 bytes as the key
  jwtSecret = Buffer.from(randomBytes(32).toString('base64'), 'utf8');
  await tf.setBackend('cpu');
  await randomModels(join(root, 'models'), { size: 'small', seed: 1, threshold: 0.4 });
  db = await createTestDatabase();
  server = await startServe(env());
  base = server.url;
  addUser('dr-ada', 'clinician');
  addUser('au-bo', 'auditor');
  addUser('ad-cy', 'admin');
  const ws = token('workstation', 'ws-1');
  for (const seed of [11, 12, 13]) {
    const r = await fetch(`${base}/v1/studies?wait=true`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ws}`, 'Content-Type': 'application/dicom' },
      body: chestDicom({ size: 512, seed }),
    });
    const text = await r.text();
    assert.ok(r.status === 201 || r.status === 200, `study posted: ${r.status} ${text}`);
    studyIds.push((JSON.parse(text) as { id: string }).id);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  if (server) {
    server.proc.kill('SIGTERM');
    await server.exited;
  }
  await db?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('a clinician signs in, opens the top flagged study, toggles the heatmap, adjusts the window and saves a review that the API then returns', async () => {
  const { context, page } = await signIn('dr-ada');
  const rows = page.getByRole('table').locator('tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  assert.match((await rows.first().locator('td').first().innerText()).trim(), /^Flagged/, 'a flagged study sorts to the top');
  await accessible(page, 'the worklist');

  await rows.first().locator('a').click();
  await page.getByRole('heading', { name: 'Report' }).waitFor();
  const readout = page.locator('.window-readout');
  await readout.getByText(/Window centre/).waitFor();
  const heat = page.getByRole('button', { name: 'Heatmap (h)' });
  assert.equal(await heat.getAttribute('aria-pressed'), 'true');
  await page.keyboard.press('h');
  assert.equal(await heat.getAttribute('aria-pressed'), 'false', 'the h key turns the heatmap off');
  await heat.click();
  assert.equal(await heat.getAttribute('aria-pressed'), 'true');

  const before = await readout.innerText();
  const film = page.getByRole('img', { name: 'Chest film with overlays' });
  const box = (await film.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 - 80, { steps: 4 });
  await page.mouse.up();
  const after = await readout.innerText();
  assert.notEqual(after, before, 'dragging on the film changes the window');
  await page.getByRole('button', { name: 'Full range' }).click();
  await accessible(page, 'the viewer');

  const studyId = page.url().split('/').pop()!;
  await page.getByRole('button', { name: 'Agree', exact: true }).click();
  await page.getByLabel('Your reading').selectOption('pneumonia');
  await page.getByLabel('Note').fill('consolidation right lower lobe');
  await page.getByRole('button', { name: 'Save review' }).click();
  await page.getByRole('status').getByText('Review saved.').waitFor();

  const reviews = (await (
    await fetch(`${base}/v1/studies/${studyId}/reviews`, { headers: { Authorization: `Bearer ${token('clinician', 'dr-api')}` } })
  ).json()) as {
    items: { reviewer: string; verdict: string; label: string; note: string }[];
  };
  assert.deepEqual(
    reviews.items.map((r) => [r.reviewer, r.verdict, r.label, r.note]),
    [['dr-ada', 'agree', 'pneumonia', 'consolidation right lower lobe']],
  );

  // an amendment keeps the history
  await page.getByRole('button', { name: 'Disagree' }).click();
  await page.keyboard.press('Control+Enter');
  await page
    .getByRole('status')
    .getByText(/Review amended/)
    .waitFor();
  // the history is reloaded after the save: both reviews are listed, the second naming the first
  await countIs(page.locator('ol.history li'), 2);
  assert.match(await page.locator('ol.history li').nth(1).innerText(), /disagree.*\(amends #\d+\)/);
  await context.close();
});

test('the heatmap and outline images are drawn from what was stored with the prediction, without running a model', async () => {
  const clin = token('clinician', 'dr-api');
  const study = (await (await fetch(`${base}/v1/studies/${studyIds[0]}`, { headers: { Authorization: `Bearer ${clin}` } })).json()) as {
    prediction: { report: { mask: { width: number; height: number; runs: number[] }; cam: unknown } };
  };
  const mask = study.prediction.report.mask;
  assert.equal(
    mask.runs.reduce((a, b) => a + b, 0),
    mask.width * mask.height,
    'the stored mask covers the segmenter frame',
  );
  const r = await fetch(`${base}/v1/studies/${studyIds[0]}/heatmap.png`, { headers: { Authorization: `Bearer ${clin}` } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'image/png');
  const film = await fetch(`${base}/v1/studies/${studyIds[0]}/film`, { headers: { Authorization: `Bearer ${clin}` } });
  assert.equal(film.status, 200);
  assert.equal((await film.arrayBuffer()).byteLength, 512 * 512 * 2, 'the film is 16-bit codes at native size');
});

test('an auditor filters history, downloads the CSV and runs the chain verification', async () => {
  const { context, page } = await signIn('au-bo');
  await page.getByRole('heading', { name: 'Prediction history' }).waitFor();
  const rows = page.locator('table.history tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  const agreed = (
    (await (await fetch(`${base}/v1/predictions?agreement=agree`, { headers: { Authorization: `Bearer ${token('auditor', 'au-api')}` } })).json()) as {
      items: unknown[];
    }
  ).items.length;
  await page.getByLabel('Latest review').selectOption('agree');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await countIs(page.locator('table.history tbody tr'), agreed);

  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download CSV' }).click();
  const csv = readFileSync((await (await download).path())!, 'utf8');
  const lines = csv.trim().split('\n');
  assert.ok(lines[0].includes('probability'), `a CSV header: ${lines[0]}`);
  assert.equal(lines.length, 1 + agreed, 'the CSV holds what the filter selects');

  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page.getByText(/Chain intact: all \d+ rows verified/).waitFor();
  await page.getByRole('figure').first().waitFor();
  // the shadow comparison section is part of the models view (empty until a candidate runs)
  await page.getByRole('heading', { name: 'Shadow candidates' }).waitFor();
  await page.getByText('No candidate has run in shadow.').waitFor();
  await accessible(page, 'the audit pages');
  await context.close();
});

test('a clinician cannot reach the admin pages or the admin API; an admin can', async () => {
  const { context, page } = await signIn('dr-ada');
  await page.goto(`${base}/app/admin`);
  await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0, 'no admin link for a clinician');
  const r = await page.request.get(`${base}/v1/admin/users`);
  assert.equal(r.status(), 403);
  await context.close();

  // a long-lived operator token on record, for the admin page's "Operator tokens" table
  const minted = spawnCliSync(['token', '--role', 'workstation', '--sub', 'pacs-static', '--ttl', '31536000'], { env: env(), timeoutMs: 60_000 });
  assert.equal(minted.status, 0, minted.stderr);
  const tokenId = /token ([0-9a-f-]{36}) /.exec(minted.stderr)?.[1];
  const pacs = minted.stdout.trim();

  const admin = await signIn('ad-cy');
  await admin.page.getByRole('heading', { name: 'Users (people)' }).waitFor();
  await admin.page.getByRole('cell', { name: 'dr-ada', exact: true }).waitFor();
  await admin.page.getByRole('heading', { name: 'Operator tokens' }).waitFor();
  await admin.page.getByRole('cell', { name: 'pacs-static', exact: true }).waitFor();
  // the shadow-run control: its fields by their names; the active version is refused (a real POST with the page's CSRF token)
  await admin.page.getByRole('heading', { name: 'Shadow run' }).waitFor();
  await admin.page.getByText('No candidate runs in shadow.').waitFor();
  await admin.page.getByRole('combobox', { name: 'Candidate model' }).selectOption('classifier');
  await admin.page.getByRole('textbox', { name: 'Candidate version' }).fill('random-small');
  await admin.page.getByRole('spinbutton', { name: 'Sample fraction' }).fill('0.5');
  await admin.page.getByRole('button', { name: 'Start shadow run' }).click();
  await admin.page.getByRole('status').filter({ hasText: 'Refused: classifier@random-small is the active version' }).waitFor();
  await accessible(admin.page, 'the admin pages');
  const studies = () => fetch(`${base}/dicomweb/studies`, { headers: { Authorization: `Bearer ${pacs}` } }).then((r) => r.status);
  assert.equal(await studies(), 200);
  await admin.page.getByRole('button', { name: `Revoke token ${tokenId} (pacs-static)` }).click();
  await admin.page.getByText(`Token ${tokenId} (pacs-static) revoked.`).waitFor();
  assert.equal(await studies(), 401, 'a token revoked on the admin page is refused');
  await admin.context.close();
});

test('a change without the CSRF token is refused even with a valid session cookie', async () => {
  const { context, page } = await signIn('dr-ada');
  const url = `${base}/v1/studies/${studyIds[1]}/reviews`;
  const refused = await page.request.post(url, { data: { verdict: 'agree' } });
  assert.equal(refused.status(), 403);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'E_CSRF');
  const session = (await (await page.request.get(`${base}/v1/auth/session`)).json()) as { csrfToken: string };
  const ok = await page.request.post(url, { data: { verdict: 'agree' }, headers: { 'X-CSRF-Token': session.csrfToken } });
  assert.equal(ok.status(), 201);
  const cookies = await context.cookies();
  const c = cookies.find((x) => x.name === 'cxr_session')!;
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  await context.close();
});

test('an idle session expires: the next page load asks to sign in again and says why', async () => {
  const { context, page } = await signIn('dr-ada');
  const su = await db.superuser();
  await su.query(`UPDATE web_sessions SET last_seen_at = now() - interval '2 hours' WHERE user_id = 'dr-ada' AND ended_at IS NULL`);
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const ended = await su.query(`SELECT ended_reason FROM web_sessions WHERE user_id = 'dr-ada' ORDER BY created_at DESC LIMIT 1`);
  assert.equal(ended.rows[0].ended_reason, 'idle');
  const r = await page.request.get(`${base}/v1/worklist`);
  assert.equal(r.status(), 401);
  await accessible(page, 'the sign-in page');
  await context.close();
});

test('signing out ends the session in the database', async () => {
  const { context, page } = await signIn('dr-ada');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out.').waitFor();
  assert.equal((await page.request.get(`${base}/v1/worklist`)).status(), 401);
  await context.close();
});
