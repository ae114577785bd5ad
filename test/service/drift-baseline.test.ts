/**
 * A site's own drift baseline (`cxr-triage model baseline`) over a real service and PostgreSQL:
 * set from a window of a version's predictions, audited, shown and cleared; /metrics measures
 * drift and the expected positive rate against it instead of validation; too few predictions,
 * an unknown or non-classifier version, a bad date or conflicting flags are refused (exit 2)
 * and change nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import supertest from 'supertest';
import { verifyAuditChain } from '../../src/db/audit.js';
import { parseWhen } from '../../src/cli/commands/model-baseline.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { runCli } from '../support/cli.js';
import { cloneScored, sample } from '../support/predictions.js';

let h: Harness;
let env: Record<string, string>;
let version: string;

before(async () => {
  h = await startHarness();
  await mkdir(join(h.root, 'data'), { recursive: true });
  env = { DATABASE_URL: h.db.url, CXR_DATA_DIR: join(h.root, 'data'), CXR_MODELS_DIR: h.modelsDir };
  const r = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation', 'ws-b')}`)
    .set('Content-Type', 'application/dicom')
    .send(study(411));
  assert.equal(r.status, 202);
  await waitScored(h, r.body.id);
  // 80 more: 40 scored in early November (the window a site reviewed), 40 now; a quarter positive in each
  const decisions = (n: number) => Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 'positive' : 'negative') as 'positive' | 'negative');
  const old = await cloneScored(h.db, r.body.id, decisions(40));
  await h.db.ds.query(`UPDATE predictions SET created_at = '2026-11-05T12:00:00Z' WHERE study_id = ANY($1)`, [old]);
  const recent = await cloneScored(h.db, r.body.id, decisions(40));
  await h.db.ds.query(`UPDATE predictions SET created_at = now() WHERE study_id = ANY($1)`, [recent]);
  await h.db.ds.query(`UPDATE predictions SET created_at = '2026-11-06T12:00:00Z', decision = 'negative' WHERE study_id = $1`, [r.body.id]);
  const [row] = (await h.db.ds.query(`SELECT version FROM model_versions WHERE kind = 'classifier'`)) as { version: string }[];
  version = row.version;
});

after(async () => {
  await h?.close();
});

const baselineRows = async () => (await h.db.ds.query('SELECT n, positive FROM drift_baselines')) as { n: number; positive: number }[];

test('model baseline counts the window, stores it, audits it and prints it; --show reads it back', async () => {
  const r = await runCli(['model', 'baseline', `classifier@${version}`, '--from', '2026-11-01', '--to', '2026-11-10', '--min', '30'], env);
  assert.equal(r.code, 0, r.stderr);
  // the 40 copies and the original study (moved into the window too, decided negative)
  assert.match(
    r.stdout,
    new RegExp(`classifier@${version}: baseline of 41 predictions from 2026-11-01T00:00:00.000Z to 2026-11-10T00:00:00.000Z, 10 positive \\(24.4%\\)`),
  );
  assert.deepEqual(await baselineRows(), [{ n: 41, positive: 10 }]);
  const audit = (await h.db.ds.query(`SELECT action, detail FROM audit_log WHERE action LIKE 'model.baseline%'`)) as {
    action: string;
    detail: Record<string, unknown>;
  }[];
  assert.equal(audit.length, 1);
  assert.equal(audit[0].action, 'model.baseline.set');
  assert.equal(audit[0].detail.n, 41);
  assert.equal((await verifyAuditChain(h.db.ds)).ok, true);

  const shown = await runCli(['model', 'baseline', version, '--show', '--json'], env);
  assert.equal(shown.code, 0, shown.stderr);
  const b = JSON.parse(shown.stdout) as { n: number; positive: number; probabilityHistogram: number[]; lungAreaHistogram: number[] };
  assert.equal(b.n, 41);
  assert.equal(
    b.probabilityHistogram.reduce((a, x) => a + x, 0),
    41,
  );
  assert.equal(
    b.lungAreaHistogram.reduce((a, x) => a + x, 0),
    41,
  );
});

test('with a baseline, /metrics measures drift and the expected positive rate against it', async () => {
  // a process started now: nothing cached from before the baseline
  const p = await h.restart({});
  const m = (await supertest(p.app).get('/metrics')).text;
  assert.equal(sample(m, 'cxr_drift_baseline_studies', { model_version: `classifier@${version}` }), 41);
  assert.equal(sample(m, 'cxr_model_flag_rate_expected', { model_version: `classifier@${version}` }), 10 / 41);
  // recent: 40 copies of the same study, 10 positive, against the baseline's 10 of 41 (the same probabilities and lung areas)
  const positive = sample(m, 'cxr_drift_psi', { model_version: `classifier@${version}`, feature: 'positive_rate' }) ?? Number.NaN;
  const e = 10 / 41;
  const want = (0.25 - e) * Math.log(0.25 / e) + (0.75 - (1 - e)) * Math.log(0.75 / (1 - e));
  assert.ok(Math.abs(positive - want) < 1e-12, `positive_rate PSI ${positive}`);
  assert.equal(sample(m, 'cxr_drift_psi', { model_version: `classifier@${version}`, feature: 'probability' }), 0);
  assert.equal(sample(m, 'cxr_drift_psi', { model_version: `classifier@${version}`, feature: 'lung_area' }), 0);
});

test('too few predictions, a segmenter, an unknown version, a bad date and --show with --clear are refused with exit 2 and change nothing', async () => {
  const before = await baselineRows();
  const cases: [string[], RegExp][] = [
    [
      ['--from', '2026-11-01', '--to', '2026-11-10', '--min', '1000'],
      /error E_BAD_ARGUMENT: .* made 41 predictions .*; a baseline needs at least 1000 \(--min\)/,
    ],
    [['--from', '2026-11-10', '--to', '2026-11-01'], /error E_BAD_ARGUMENT: the window must end after it starts/],
    [['--from', 'last tuesday'], /error E_BAD_ARGUMENT: --from must be an ISO 8601 date/],
    [['--days', ''], /error E_BAD_ARGUMENT: --days must be a number/],
    [['--show', '--clear'], /error E_BAD_ARGUMENT: --show and --clear exclude each other/],
  ];
  for (const [args, want] of cases) {
    const r = await runCli(['model', 'baseline', `classifier@${version}`, ...args], env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
  const seg = await runCli(['model', 'baseline', 'segmenter@random-small', '--min', '1'], env);
  assert.equal(seg.code, 2);
  assert.match(seg.stderr, /error E_BAD_ARGUMENT: a drift baseline belongs to a classifier version/);
  const unknown = await runCli(['model', 'baseline', 'classifier@v-never', '--min', '1'], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /error E_NOT_FOUND: classifier@v-never is not in this service's registry/);
  assert.deepEqual(await baselineRows(), before);
  const audit = (await h.db.ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action LIKE 'model.baseline%'`)) as { n: number }[];
  assert.equal(audit[0].n, 1, 'refusals write no baseline audit row');
});

test('--clear goes back to validation: the row is removed, audited, and /metrics has no baseline', async () => {
  const r = await runCli(['model', 'baseline', `classifier@${version}`, '--clear'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /baseline removed; drift is measured against its validation split again/);
  assert.deepEqual(await baselineRows(), []);
  const again = await runCli(['model', 'baseline', `classifier@${version}`, '--clear'], env);
  assert.match(again.stdout, /had no baseline/);
  const actions = ((await h.db.ds.query(`SELECT action FROM audit_log WHERE action LIKE 'model.baseline%' ORDER BY seq`)) as { action: string }[]).map(
    (a) => a.action,
  );
  assert.deepEqual(actions, ['model.baseline.set', 'model.baseline.clear']);
  const p = await h.restart({});
  const m = (await supertest(p.app).get('/metrics')).text;
  assert.equal(sample(m, 'cxr_drift_baseline_studies', { model_version: `classifier@${version}` }), null);
});

test('window ends are ISO 8601 dates or date-times, UTC unless an offset is given; impossible dates are refused', () => {
  assert.equal(parseWhen('--from', '2026-11-01').toISOString(), '2026-11-01T00:00:00.000Z');
  assert.equal(parseWhen('--from', '2026-11-01T08:30:00+01:00').toISOString(), '2026-11-01T07:30:00.000Z');
  assert.equal(parseWhen('--from', '2026-11-01T08:30').toISOString(), '2026-11-01T08:30:00.000Z', 'no offset: UTC, whatever TZ says');
  for (const bad of ['', '11/01/2026', '2026-13-01', 'now', '2026-02-30', '2026-04-31T10:00Z', '2026-11-01T24:00'])
    assert.throws(() => parseWhen('--to', bad), /--to must be an ISO 8601 date/, bad);
});
