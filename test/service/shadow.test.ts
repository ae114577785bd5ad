/**
 * Shadow models and promotion over a real service (PostgreSQL, job queue, ONNX Runtime on
 * random-weight models): `cxr-triage model shadow` sets a candidate in the database; the
 * workers score a deterministic sample of studies with it as well and keep its results apart
 * from everything that reads predictions; the comparison reaches auditors and admins and
 * /metrics; `cxr-triage model promote` switches what the running workers serve, ends the
 * shadow run and is audited; a candidate that cannot load never costs a study its result.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyAuditChain } from '../../src/db/audit.js';
import { randomModels } from '../support/random-models.js';
import { activateOnDisk, readManifest } from '../../src/ml/model-store/index.js';
import { inShadowSample } from '../../src/service/shadow.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';
import { runCli } from '../support/cli.js';
import { waitJobsDone } from '../support/jobs.js';

let h: Harness;
let env: Record<string, string>;
const CANDIDATE = 'random-cand';
const FRACTION = 0.5;
const N = 16;
/** study ids by StudyInstanceUID, posted while the candidate runs */
const posted = new Map<string, string>();

before(async () => {
  h = await startHarness({ jobPollMs: 50 });
  await randomModels(h.modelsDir, { size: 'small', seed: 5, threshold: 0.6, version: CANDIDATE });
  // the candidate is newer: without ACTIVE it would be what a process loads
  await activateOnDisk(h.modelsDir, 'classifier', 'random-small', { segmenter: 'random-small' });
  await mkdir(join(h.root, 'data'), { recursive: true });
  env = { DATABASE_URL: h.db.url, CXR_DATA_DIR: join(h.root, 'data'), CXR_MODELS_DIR: h.modelsDir };
});

after(async () => {
  await h?.close();
});

const auth = (role: Parameters<Harness['token']>[0]) => `Bearer ${h.token(role)}`;

async function post(seed: number): Promise<{ id: string; uid: string }> {
  const r = await h.http.post('/v1/studies').set('Authorization', auth('workstation')).set('Content-Type', 'application/dicom').send(study(seed));
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const row: { study_instance_uid: string }[] = await h.db.ds.query('SELECT study_instance_uid FROM studies WHERE id = $1', [r.body.id]);
  return { id: r.body.id as string, uid: row[0].study_instance_uid };
}

interface Pair {
  study_id: string;
  cp: number;
  cd: string;
  cf: boolean;
  ap: number;
  ad: string;
  af: boolean;
}

test('the sample is a hash of the StudyInstanceUID: deterministic, near the fraction, and nested as the fraction grows', () => {
  const uids = Array.from({ length: 4000 }, (_, i) => `1.2.826.0.1.3680043.8.498.${1000 + i}`);
  for (const f of [0.1, 0.5]) {
    const share = uids.filter((u) => inShadowSample(u, f)).length / uids.length;
    assert.ok(Math.abs(share - f) < 0.03, `fraction ${f}: sampled ${share}`);
  }
  assert.deepEqual(
    uids.map((u) => inShadowSample(u, 0.3)),
    uids.map((u) => inShadowSample(u, 0.3)),
  );
  for (const u of uids) if (inShadowSample(u, 0.1)) assert.ok(inShadowSample(u, 0.5), 'a study sampled at 0.1 stays sampled at 0.5');
  assert.ok(uids.every((u) => inShadowSample(u, 1)));
});

test('model shadow sets a candidate; workers score the sampled studies with it too, and no reader of predictions sees its results', async () => {
  const set = await runCli(['model', 'shadow', `classifier@${CANDIDATE}`, '--fraction', String(FRACTION), '--models', h.modelsDir], env);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, new RegExp(`classifier@${CANDIDATE} now scores 0.5 of new studies in shadow`));
  const shown = await runCli(['models', 'shadow', '--json'], env);
  assert.equal(shown.code, 0, shown.stderr);
  const running = JSON.parse(shown.stdout).running;
  assert.deepEqual([running.name, running.version, running.fraction], ['classifier', CANDIDATE, FRACTION]);
  // the active version has nothing to be compared with; a fraction outside (0, 1] is refused
  assert.equal((await runCli(['model', 'shadow', 'classifier@random-small', '--fraction', '0.5', '--models', h.modelsDir], env)).code, 2);
  assert.equal((await runCli(['model', 'shadow', `classifier@${CANDIDATE}`, '--fraction', '1.5', '--models', h.modelsDir], env)).code, 2);

  for (let i = 0; i < N; i++) {
    const p = await post(4100 + i);
    posted.set(p.uid, p.id);
  }
  for (const id of posted.values()) await waitScored(h, id);
  await waitJobsDone(h.db.ds);

  const expected = [...posted].filter(([uid]) => inShadowSample(uid, FRACTION)).map(([, id]) => id);
  assert.ok(expected.length > 0 && expected.length < N, `the sample is a part of the studies (${expected.length} of ${N})`);
  const shadow: { study_id: string; segmenter: string; classifier: string; probability: number; threshold: number; decision: string }[] = await h.db.ds.query(
    `SELECT sp.study_id, seg.name || '@' || seg.version AS segmenter, cls.name || '@' || cls.version AS classifier, sp.probability, sp.threshold, sp.decision
       FROM shadow_predictions sp JOIN model_versions seg ON seg.id = sp.segmenter_id JOIN model_versions cls ON cls.id = sp.classifier_id`,
  );
  assert.deepEqual(shadow.map((s) => s.study_id).sort(), [...expected].sort(), 'exactly the hashed sample was shadow-scored');
  const candThreshold = (await readManifest(join(h.modelsDir, 'classifier', CANDIDATE))).threshold!.value;
  for (const s of shadow) {
    assert.deepEqual([s.segmenter, s.classifier], ['segmenter@random-small', `classifier@${CANDIDATE}`], 'the exact versions behind it');
    assert.equal(s.threshold, candThreshold, "decided at the candidate's own threshold");
    assert.equal(s.decision, s.probability >= s.threshold ? 'positive' : 'negative');
  }

  // the served results: one per study, all from the active model
  const served: { study_id: string; classifier: string; probability: number }[] = await h.db.ds.query(
    `SELECT p.study_id, cls.name || '@' || cls.version AS classifier, p.probability FROM predictions p JOIN model_versions cls ON cls.id = p.classifier_id`,
  );
  assert.equal(served.length, N);
  assert.ok(served.every((p) => p.classifier === 'classifier@random-small'));
  const servedProbability = new Map(served.map((p) => [p.study_id, p.probability]));

  const wl = await h.http.get('/v1/worklist?limit=200').set('Authorization', auth('clinician'));
  assert.equal(wl.status, 200);
  const instances = (wl.body.items as { instances: { id: string; probability: number }[] }[]).flatMap((i) => i.instances);
  assert.equal(instances.length, N);
  for (const i of instances) assert.equal(i.probability, servedProbability.get(i.id), 'the worklist shows the active result');
  const hist = await h.http.get(`/v1/predictions?model=classifier@${CANDIDATE}`).set('Authorization', auth('auditor'));
  assert.deepEqual(hist.body.items, [], "the auditor's prediction history holds no shadow result");
  const one = await h.http.get(`/v1/studies/${expected[0]}`).set('Authorization', auth('clinician'));
  assert.equal(one.body.prediction.report.models.classifier.version, 'random-small');
});

test('the comparison (agreement, |Δp|, flag rates, sensitivity and specificity on reviews) reaches auditors and admins and /metrics', async () => {
  const sampled = [...posted].filter(([uid]) => inShadowSample(uid, FRACTION)).map(([, id]) => id);
  assert.ok(sampled.length >= 1);
  // reviews: a label, a verdict alone, and an uncertain label (which says nothing about the truth)
  const reviews: Record<string, unknown>[] = [{ verdict: 'agree', label: 'pneumonia' }, { verdict: 'disagree' }, { verdict: 'agree', label: 'uncertain' }];
  for (let i = 0; i < Math.min(reviews.length, sampled.length); i++) {
    const r = await h.http.post(`/v1/studies/${sampled[i]}/reviews`).set('Authorization', auth('clinician')).send(reviews[i]);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }

  // the expected figures, from the rows
  const pairs: Pair[] = await h.db.ds.query(
    `SELECT sp.study_id, sp.probability AS cp, sp.decision AS cd, sp.flagged AS cf, p.probability AS ap, p.decision AS ad, p.flagged AS af
       FROM shadow_predictions sp JOIN predictions p ON p.study_id = sp.study_id`,
  );
  const truth = new Map<string, string>();
  for (let i = 0; i < Math.min(reviews.length, sampled.length); i++) {
    const pair = pairs.find((p) => p.study_id === sampled[i])!;
    const rv = reviews[i];
    if (rv.label === 'pneumonia') truth.set(pair.study_id, 'positive');
    else if (rv.label === undefined) truth.set(pair.study_id, rv.verdict === 'agree' ? pair.ad : pair.ad === 'positive' ? 'negative' : 'positive');
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const figures = (pick: (p: Pair) => string) => {
    const rows = pairs.filter((p) => truth.has(p.study_id));
    const pos = rows.filter((p) => truth.get(p.study_id) === 'positive');
    const neg = rows.filter((p) => truth.get(p.study_id) === 'negative');
    const tp = pos.filter((p) => pick(p) === 'positive').length;
    const tn = neg.filter((p) => pick(p) === 'negative').length;
    return { sensitivity: pos.length ? tp / pos.length : null, specificity: neg.length ? tn / neg.length : null, n: rows.length };
  };

  for (const role of ['auditor', 'admin'] as const) {
    const r = await h.http.get(`/v1/models/classifier/${CANDIDATE}/shadow`).set('Authorization', auth(role));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const c = r.body;
    assert.equal(c.candidate, `classifier@${CANDIDATE}`);
    assert.equal(c.scored, sampled.length);
    assert.equal(c.compared, pairs.length);
    assert.deepEqual(c.candidateVersions, [{ segmenter: 'segmenter@random-small', classifier: `classifier@${CANDIDATE}`, n: pairs.length }]);
    assert.deepEqual(c.activeVersions, [{ segmenter: 'segmenter@random-small', classifier: 'classifier@random-small', n: pairs.length }]);
    assert.ok(Math.abs(c.decisionAgreement - mean(pairs.map((p) => (p.cd === p.ad ? 1 : 0)))) < 1e-12);
    assert.ok(Math.abs(c.meanAbsProbabilityDifference - mean(pairs.map((p) => Math.abs(p.cp - p.ap)))) < 1e-9);
    assert.ok(Math.abs(c.flaggedRate.candidate - mean(pairs.map((p) => (p.cf ? 1 : 0)))) < 1e-12);
    assert.ok(Math.abs(c.flaggedRate.active - mean(pairs.map((p) => (p.af ? 1 : 0)))) < 1e-12);
    const cand = figures((p) => p.cd);
    const act = figures((p) => p.ad);
    assert.equal(c.reviewed.n, cand.n);
    assert.deepEqual([c.reviewed.candidate.sensitivity, c.reviewed.candidate.specificity], [cand.sensitivity, cand.specificity]);
    assert.deepEqual([c.reviewed.active.sensitivity, c.reviewed.active.specificity], [act.sensitivity, act.specificity]);
    assert.equal(c.setting.running, true);
    assert.equal(c.setting.fraction, FRACTION);
  }
  const list = await h.http.get('/v1/models/shadow').set('Authorization', auth('auditor'));
  assert.equal(list.status, 200);
  assert.equal(list.body.running.candidate, `classifier@${CANDIDATE}`);
  assert.deepEqual(
    list.body.items.map((i: { candidate: string }) => i.candidate),
    [`classifier@${CANDIDATE}`],
  );
  for (const role of ['clinician', 'workstation'] as const)
    assert.equal((await h.http.get('/v1/models/shadow').set('Authorization', auth(role))).status, 403, role);
  assert.equal((await h.http.get('/v1/models/classifier/never-ran/shadow').set('Authorization', auth('auditor'))).status, 404);
  const read: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'models.shadow.read'`);
  assert.ok(read[0].n >= 3, 'reading comparisons is audited');

  const metrics = (await h.http.get('/metrics')).text;
  const agreement = new RegExp(`^cxr_shadow_agreement_ratio\\{candidate="classifier@${CANDIDATE}",running="true"\\} (\\S+)$`, 'm').exec(metrics);
  assert.ok(
    agreement,
    metrics
      .split('\n')
      .filter((l) => l.includes('shadow'))
      .join('\n'),
  );
  assert.ok(Math.abs(Number(agreement[1]) - mean(pairs.map((p) => (p.cd === p.ad ? 1 : 0)))) < 1e-9);
  assert.match(metrics, new RegExp(`^cxr_shadow_results_total\\{outcome="ok"\\} ${sampled.length}$`, 'm'));
});

test('model promote switches what the running workers serve, ends the shadow run, and is audited', async () => {
  const before: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions`);
  const r = await runCli(['model', 'promote', `classifier@${CANDIDATE}`, '--models', h.modelsDir], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`classifier random-small -> ${CANDIDATE} \\(shadow run of classifier@${CANDIDATE} ended\\)`));
  assert.equal((await readFile(join(h.modelsDir, 'classifier', 'ACTIVE'), 'utf8')).trim(), CANDIDATE);
  assert.equal((await readFile(join(h.modelsDir, 'segmenter', 'ACTIVE'), 'utf8')).trim(), 'random-small');
  const active: { v: string }[] = await h.db.ds.query(`SELECT name || '@' || version AS v FROM model_versions WHERE active ORDER BY 1`);
  assert.deepEqual(
    active.map((a) => a.v),
    [`classifier@${CANDIDATE}`, 'segmenter@random-small'],
  );
  const audit: { actor: string; role: string; detail: Record<string, unknown> }[] = await h.db.ds.query(
    `SELECT actor, role, detail FROM audit_log WHERE action = 'model.promote'`,
  );
  assert.equal(audit.length, 1);
  assert.match(audit[0].actor, /^operator:/);
  assert.equal(audit[0].role, 'admin');
  assert.deepEqual(
    [audit[0].detail.model, audit[0].detail.from, audit[0].detail.shadowStopped, audit[0].detail.via],
    [`classifier@${CANDIDATE}`, 'random-small', `classifier@${CANDIDATE}`, 'cli'],
  );
  const started: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'model.shadow.start'`);
  assert.equal(started[0].n, 1);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_settings WHERE stopped_at IS NULL`))[0].n, 0);

  // the service was not restarted: its worker follows the registry before the next study
  const p = await post(4300);
  await waitScored(h, p.id);
  await waitJobsDone(h.db.ds);
  const got = await h.http.get(`/v1/studies/${p.id}`).set('Authorization', auth('clinician'));
  assert.equal(got.body.prediction.report.models.classifier.version, CANDIDATE);
  assert.equal(got.body.prediction.threshold, (await readManifest(join(h.modelsDir, 'classifier', CANDIDATE))).threshold!.value);
  assert.equal(h.parts.service.models.classifier.version, CANDIDATE);
  const after: { n: number }[] = await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions`);
  assert.equal(after[0].n, before[0].n, 'no shadow scoring once the run ended');
  // the comparison stays readable after the run
  const c = await h.http.get(`/v1/models/classifier/${CANDIDATE}/shadow`).set('Authorization', auth('auditor'));
  assert.equal(c.status, 200);
  assert.equal(c.body.setting.running, false);
  assert.equal((await verifyAuditChain(h.db.ds)).ok, true);
});

test('a candidate that cannot load never costs a study its result; model shadow --off stops it', async () => {
  await randomModels(h.modelsDir, { size: 'small', seed: 6, version: 'random-broken' });
  await activateOnDisk(h.modelsDir, 'classifier', CANDIDATE, { segmenter: 'random-small' });
  const set = await runCli(['model', 'shadow', 'classifier@random-broken', '--fraction', '1', '--models', h.modelsDir], env);
  assert.equal(set.code, 0, set.stderr);
  // changed after it was accepted: the workers' hash check refuses it
  await appendFile(join(h.modelsDir, 'classifier', 'random-broken', 'model.onnx'), 'x');
  const ids = [(await post(4400)).id, (await post(4401)).id];
  for (const id of ids) await waitScored(h, id);
  await waitJobsDone(h.db.ds);
  const rows: { status: string; classifier: string }[] = await h.db.ds.query(
    `SELECT s.status, cls.version AS classifier FROM studies s JOIN predictions p ON p.study_id = s.id JOIN model_versions cls ON cls.id = p.classifier_id WHERE s.id = ANY($1::uuid[])`,
    [ids],
  );
  assert.deepEqual(rows, [
    { status: 'scored', classifier: CANDIDATE },
    { status: 'scored', classifier: CANDIDATE },
  ]);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM shadow_predictions WHERE study_id = ANY($1::uuid[])`, [ids]))[0].n, 0);
  assert.match((await h.http.get('/metrics')).text, /^cxr_shadow_results_total\{outcome="failed"\} 2$/m);

  const off = await runCli(['model', 'shadow', '--off'], env);
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /stopped shadow candidate classifier@random-broken/);
  assert.match((await runCli(['model', 'shadow'], env)).stdout, /no shadow candidate is running/);
  assert.equal((await h.db.ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'model.shadow.stop'`))[0].n, 1);
});

test('model and models are one command; shadow and promote have --help', async () => {
  for (const args of [
    ['model', '--help'],
    ['models', '--help'],
    ['model', 'shadow', '--help'],
    ['model', 'promote', '--help'],
  ]) {
    const r = await runCli(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /Usage: cxr-triage models?/, args.join(' '));
  }
  assert.match((await runCli(['model', '--help'])).stdout, /promote/);
  assert.match((await runCli(['model', 'shadow', '--help'])).stdout, /--fraction/);
});
