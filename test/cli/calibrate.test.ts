/**
 * `calibrate` picks the threshold on the very probabilities `evaluate` (the served pipeline,
 * TTA included) reports for the split's rows, and writes it as a new version derived from the
 * calibrated one, which (active or not) stays byte for byte as it was.
 */
import { histogram } from '../../src/ml/drift-reference.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { perImageCsv } from '../../src/ml/evaluation-files.js';
import { basename, dirname, join } from 'node:path';
import { parseCsv } from '../../src/data/csv.js';
import { locateModelVersion, manifestDigest, readActive, readManifest, verifyManifest, writeActive } from '../../src/ml/model-store/index.js';
import { calibrateThreshold, confusionAt, binaryMetrics } from '../../src/ml/metrics.js';
import { runCli as cli } from '../support/cli.js';
import { scratchModelsAndData } from '../support/ml.js';
import { alternatingSplit } from '../support/data.js';
import { uncertaintyBound } from '../../src/ml/uncertainty-bound.js';
import { DEFAULT_UNCERTAIN_BOUND, loadEngine } from '../../src/inference/engine.js';

const STUDIES = 8;
const TARGET = 0.75;
/** `calibrate` on the test's split and models at TARGET recall, one thread, plus `extra`. */
const calibrateAtTarget = (...extra: string[]) =>
  cli(['calibrate', '--data', data, '--split', splitCsv, '--models', models, '--target-recall', String(TARGET), '--threads', '1', ...extra]);
let root: string;
let models: string;
let classifierDir: string;
let data: string;
let splitCsv: string;
let validation: Set<string>;

before(async () => {
  ({ root, models, data, classifierDir } = await scratchModelsAndData('cxr-calibrate-cli-', {
    count: STUDIES,
    seed: 90_417,
    sizeMin: 128,
    sizeMax: 192,
    workSize: 128,
  }));
  // Every other study of each label in validation, so recall is defined there and a cut is needed.
  splitCsv = join(root, 'run', 'split.csv');
  const split = await alternatingSplit(data, splitCsv);
  assert.ok(split.counts.normal > 0 && split.counts.pneumonia > 0, 'the synthetic set needs both labels');
  validation = split.validation;
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/**
 * `evaluate --per-image` on the test's data (plus `extra`), and the validation rows of the CSV it
 * wrote: their fields, probabilities and labels.
 */
async function evaluateValidation(name: string, ...extra: string[]) {
  const perImage = join(root, `${name}.csv`);
  const ev = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1', '--per-image', perImage, ...extra]);
  assert.equal(ev.code, 0, ev.stderr);
  const rows = parseCsv(await readFile(perImage, 'utf8'))
    .rows.map((r) => r.fields)
    .filter(([file]) => validation.has(file));
  return { ev, perImage, rows, scores: rows.map(([, , p]) => Number(p)), labels: rows.map(([, l]) => (l === 'pneumonia' ? 1 : 0)) };
}

test('calibrate --dry-run prints the new threshold and leaves the manifest byte for byte as it was', async () => {
  const before = await readFile(join(classifierDir, 'manifest.json'), 'utf8');
  const r = await calibrateAtTarget('--dry-run');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /threshold\s+\S+ -> \d\.\d{4}/);
  assert.equal(await readFile(join(classifierDir, 'manifest.json'), 'utf8'), before);
});

test("calibrating the active version leaves it untouched and active, and writes a new version -r1 (derivedFrom it) with the threshold calibrateThreshold picks on evaluate's per-image probabilities of the validation rows", async () => {
  const active = basename(classifierDir);
  await writeActive(models, 'classifier', active);
  const sourceManifest = await readFile(join(classifierDir, 'manifest.json'), 'utf8');
  const sourceDigest = manifestDigest(await readManifest(classifierDir));
  const { perImage, rows, scores, labels } = await evaluateValidation('per-image');
  assert.equal(rows.length, validation.size);
  const expected = calibrateThreshold(scores, labels, TARGET);

  // --fit none: the threshold on the raw probabilities, as evaluate printed them
  const r = await calibrateAtTarget('--fit', 'none');
  assert.equal(r.code, 0, r.stderr);
  // the calibrated version is untouched and still the one served
  assert.equal(await readFile(join(classifierDir, 'manifest.json'), 'utf8'), sourceManifest);
  assert.deepEqual(await verifyManifest(classifierDir), { ok: true, modified: [], missing: [], unlisted: [] });
  assert.equal(await readActive(models, 'classifier'), active);
  assert.equal(await locateModelVersion(models, 'classifier'), classifierDir);
  const derivedDir = join(dirname(classifierDir), `${active}-r1`);
  assert.match(r.stdout, new RegExp(`new version\\s+${active}-r1`));
  assert.match(r.stderr, /models activate classifier/);
  const m = await readManifest(derivedDir);
  assert.equal(m.version, `${active}-r1`);
  assert.deepEqual({ ...m.derivedFrom!, at: '' }, { name: 'classifier', version: active, digest: sourceDigest, reason: 'calibrate', at: '' });
  assert.deepEqual(m.threshold!.calibratedOn!.split, { root: 'external', path: 'split.csv' });
  assert.equal(m.files['model.onnx'], (await readManifest(classifierDir)).files['model.onnx']);
  assert.equal(m.calibration, undefined);
  assert.equal(m.threshold!.value, expected.threshold);
  assert.equal(m.threshold!.targetRecall, TARGET);
  assert.equal(m.threshold!.validationSensitivity, expected.sensitivity);
  assert.equal(m.threshold!.validationSpecificity, expected.specificity);
  assert.deepEqual(
    {
      views: m.threshold!.calibratedOn!.views,
      scorer: m.threshold!.calibratedOn!.scorer,
      subset: m.threshold!.calibratedOn!.subset,
      n: m.threshold!.calibratedOn!.n,
    },
    { views: 4, scorer: 'onnxruntime', subset: 'validation', n: validation.size },
  );
  const recall = binaryMetrics(confusionAt(scores, labels, m.threshold!.value)).recall!;
  assert.ok(recall >= TARGET, `recall ${recall} < ${TARGET}`);
  assert.deepEqual(await verifyManifest(derivedDir), { ok: true, modified: [], missing: [], unlisted: [] });
  // the validation distributions the service's drift PSI compares against
  assert.equal(m.drift!.subset, 'validation');
  assert.equal(m.drift!.n, validation.size);
  assert.deepEqual(m.drift!.probabilityHistogram, histogram(scores, 0, 1));
  assert.equal(
    m.drift!.lungAreaHistogram!.reduce((x, y) => x + y, 0),
    validation.size,
  );
  // the uncertainty bound: the 99th percentile of the TTA spreads evaluate reported on the same rows
  const spreadColumn = parseCsv(await readFile(perImage, 'utf8')).header.indexOf('spread');
  assert.ok(spreadColumn > 0, 'evaluate --per-image writes each image its TTA spread');
  const expectedBound = uncertaintyBound(rows.map((f) => Number(f[spreadColumn])));
  assert.ok(expectedBound && expectedBound.n === validation.size);
  assert.deepEqual(m.threshold!.uncertainty, expectedBound);
  assert.match(r.stdout, /uncertain above\s+TTA spread \d\.\d{4} \(quantile 0\.99 of \d+ images/);
  // the engine decides 'uncertain' by the version's bound; a version without one keeps the default
  for (const [dir, bound] of [
    [derivedDir, expectedBound.bound],
    [classifierDir, DEFAULT_UNCERTAIN_BOUND],
  ] as const) {
    const engine = await loadEngine({ modelsDir: models, classifierDir: dir, threads: 1 });
    assert.equal(engine.settings.uncertainBound, bound);
    await engine.close();
  }
  // with few positives the threshold carries a warning, in the manifest and on stderr
  assert.match(m.threshold!.warnings![0], /fewer than 20/);
  assert.match(r.stderr, /warning: calibrated on \d+ positive image/);
  // a second calibration of the same source is the next revision, not an overwrite
  const again = await cli(['calibrate', '--data', data, '--split', splitCsv, '--models', models, '--target-recall', '0.5', '--threads', '1']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await readManifest(join(dirname(classifierDir), `${active}-r2`))).derivedFrom!.version, active);
});

test('models diff shows the threshold change between a version and its calibrated revision; models activate switches ACTIVE, models list and show report it', async () => {
  const active = basename(classifierDir);
  const revision = `${active}-r1`;
  const a = await readManifest(classifierDir);
  const b = await readManifest(join(dirname(classifierDir), revision));
  const diff = await cli(['models', 'diff', `classifier@${active}`, `classifier@${revision}`, '--models', models]);
  assert.equal(diff.code, 0, diff.stderr);
  assert.ok(diff.stdout.includes(`threshold.value: ${a.threshold!.value} -> ${b.threshold!.value}`), diff.stdout);
  assert.match(diff.stdout, /derivedFrom: \(none\) -> \{/);
  assert.doesNotMatch(diff.stdout, /files\.model\.onnx/);
  const json = JSON.parse(
    (await cli(['models', 'diff', `classifier/${active}`, join(dirname(classifierDir), revision), '--models', models, '--json'])).stdout,
  ) as { key: string }[];
  assert.ok(json.some((c) => c.key === 'threshold.value'));

  const act = await cli(['models', 'activate', 'classifier', revision, '--models', models]);
  assert.equal(act.code, 0, act.stderr);
  assert.equal(await readActive(models, 'classifier'), revision);
  // the segmenter is pinned to what it was, so activating the classifier never changes it
  assert.equal(await readActive(models, 'segmenter'), basename(await locateModelVersion(models, 'segmenter')));
  const list = JSON.parse((await cli(['models', 'list', '--models', models, '--json'])).stdout) as {
    name: string;
    version: string;
    active: boolean;
    derivedFrom: string | null;
  }[];
  assert.deepEqual(
    list.filter((v) => v.name === 'classifier' && v.active).map((v) => [v.version, v.derivedFrom]),
    [[revision, `${active} (calibrate)`]],
  );
  const show = await cli(['models', 'show', `classifier@${revision}`, '--models', models]);
  assert.match(show.stdout, /\(ACTIVE\)/);
  assert.match(show.stdout, new RegExp(`derived from\\s+classifier@${active} \\(calibrate`));
  // a version that does not exist, or whose files were changed, is not activated
  assert.equal((await cli(['models', 'activate', 'classifier', 'v-nope', '--models', models])).code, 2);
  await appendFile(join(dirname(classifierDir), `${active}-r2`, 'model.json'), ' ');
  const bad = await cli(['models', 'activate', 'classifier', `${active}-r2`, '--models', models]);
  assert.match(bad.stderr, /E_MODEL_INVALID.*modified: model\.json/);
  assert.equal(await readActive(models, 'classifier'), revision);
});

test('calibrate fits a Platt calibration on the raw served probabilities into the new version, picks the threshold on the calibrated ones, and the engine serves them', async () => {
  const r = await calibrateAtTarget('--version', 'platt');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /calibration\s+platt: p' = sigmoid\(/);
  const dir = join(dirname(classifierDir), 'platt');
  const m = await readManifest(dir);
  const cal = m.calibration!;
  assert.equal(cal.method, 'platt');
  assert.ok(cal.a > 0 && Number.isFinite(cal.b));
  assert.deepEqual({ subset: cal.fittedOn.subset, n: cal.fittedOn.n, views: cal.fittedOn.views }, { subset: 'validation', n: validation.size, views: 4 });
  assert.ok(cal.eceBefore >= 0 && cal.eceAfter >= 0);
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });

  // evaluate with the new version reports calibrated probabilities, and the threshold reaches the target on them
  const { ev, scores, labels } = await evaluateValidation('per-image-platt', '--classifier', dir);
  assert.equal(m.threshold!.value, calibrateThreshold(scores, labels, TARGET).threshold);
  assert.ok(binaryMetrics(confusionAt(scores, labels, m.threshold!.value)).recall! >= TARGET);
  assert.equal(JSON.parse(ev.stdout).threshold, m.threshold!.value);
  assert.ok(typeof JSON.parse(ev.stdout).ece === 'number');
});

test('calibrate --scores --population picks one threshold per population on saved per-image probabilities (no scoring) into a new version, in the threshold block of the precision given', async () => {
  const scores = join(root, 'scores');
  await mkdir(scores, { recursive: true });
  const adultCsv = join(scores, 'adult.csv');
  const childCsv = join(scores, 'child.csv');
  const adult = { p: [0.9, 0.6, 0.3, 0.5, 0.2], l: [1, 1, 1, 0, 0] };
  const child = { p: [0.95, 0.8, 0.7, 0.1], l: [1, 1, 0, 0] };
  const spreads = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.3];
  const rows = (set: string, s: { p: number[]; l: number[] }, from: number) =>
    s.p.map((probability, i) => ({ id: `${set}/images/${i}.png`, label: s.l[i], probability, spread: spreads[from + i] }));
  await writeFile(adultCsv, perImageCsv(rows('nih', adult, 0), 0.5));
  await writeFile(childCsv, perImageCsv(rows('kermany', child, adult.p.length), 0.5));
  const before = await readFile(join(classifierDir, 'manifest.json'), 'utf8');
  const args = [
    'calibrate',
    '--classifier',
    classifierDir,
    '--scores',
    adultCsv,
    '--scores',
    childCsv,
    '--population',
    'nih=adult',
    '--population',
    'kermany=pediatric',
    '--target-recall',
    '0.6',
  ];
  const r = await cli([...args, '--version', 'pop-r1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /unknown age {7}0\.6000 \(adult's, the lowest: recall first\)/);
  assert.match(r.stderr, /warning: adult: calibrated on 3 positive images/);
  assert.equal(await readFile(join(classifierDir, 'manifest.json'), 'utf8'), before);
  const m = await readManifest(join(models, 'classifier', 'pop-r1'));
  assert.equal(m.derivedFrom!.reason, 'calibrate --population');
  const pops = m.threshold!.populations!;
  assert.equal(pops.adult!.value, calibrateThreshold(adult.p, adult.l, 0.6).threshold);
  assert.equal(pops.pediatric!.value, calibrateThreshold(child.p, child.l, 0.6).threshold);
  assert.deepEqual([pops.adult!.n, pops.adult!.positives, pops.pediatric!.n, pops.pediatric!.positives], [5, 3, 4, 2]);
  assert.equal(pops.pediatric!.pickedOn!.precision, 'float');
  // the spreads saved with the scores set the bound: with nine images, the 99th percentile is the largest
  assert.deepEqual(m.threshold!.uncertainty, { bound: 0.3, quantile: 0.99, n: 9, largest: 0.3 });
  // the pooled value is kept for a reader of one number
  assert.equal(m.threshold!.value, (await readManifest(classifierDir)).threshold!.value);
  // a version that serves no int8 model has no int8 block to write into
  const int8 = await cli([...args, '--precision', 'int8', '--dry-run']);
  assert.equal(int8.code, 3);
  assert.match(int8.stderr, /E_MODEL_INVALID/);
  // a set of the scores without a population is refused
  const missing = await cli(['calibrate', '--classifier', classifierDir, '--scores', adultCsv, '--scores', childCsv, '--population', 'nih=adult', '--dry-run']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no --population for set\(s\) kermany/);
  // scores an evaluation folder says are of the test films are refused, not recorded as validation
  const testEval = join(scores, 'eval-test');
  await mkdir(testEval, { recursive: true });
  await writeFile(join(testEval, 'per-image.csv'), perImageCsv(rows('nih', adult, 0), 0.5));
  await writeFile(join(testEval, 'summary.json'), JSON.stringify({ subset: 'test', n: adult.p.length }));
  const onTest = await cli([...args.map((a) => (a === adultCsv ? join(testEval, 'per-image.csv') : a)), '--dry-run']);
  assert.equal(onTest.code, 2);
  assert.match(onTest.stderr, /E_BAD_ARGUMENT: .*eval-test\/per-image\.csv scored the test films .*thresholds are picked on validation scores/);
});

test('calibrate --population on scored rows: a single folder is its own set, and its population threshold is the pooled rule on the same rows', async () => {
  const fixed = 'calibrate --threads 1 --fit none --dry-run'.split(' ');
  const r = await cli([
    ...fixed,
    '--data',
    data,
    '--split',
    splitCsv,
    '--models',
    models,
    '--target-recall',
    String(TARGET),
    '--population',
    `${basename(data)}=pediatric`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const pooled = /threshold\s+\S+ -> (\d\.\d{4})/.exec(r.stdout)![1];
  const child = /pediatric\s+(\d\.\d{4}) \(data: (\d+) images/.exec(r.stdout)!;
  assert.equal(child[1], pooled);
  assert.equal(Number(child[2]), validation.size);
  assert.match(r.stdout, new RegExp(`unknown age\\s+${pooled} \\(\\w+'s, the lowest: recall first\\)`));
});

test('calibrate --population --fit platt on scored rows gives each population its own calibration, fitted on its rows, and picks its threshold on it', async () => {
  const r = await calibrateAtTarget('--fit', 'platt', '--population', `${basename(data)}=adult`, '--version', 'pop-platt');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /adult\s+\d\.\d{4} \(.*; its own calibration platt: p' = sigmoid\(/);
  const m = await readManifest(join(dirname(classifierDir), 'pop-platt'));
  const adult = m.threshold!.populations!.adult!;
  const own = adult.calibration!;
  // one folder: the population's rows are every row, so its fit is the version's, on the same images
  assert.deepEqual([own.method, own.a, own.b, own.fittedOn.n], [m.calibration!.method, m.calibration!.a, m.calibration!.b, validation.size]);
  assert.equal(adult.value, m.threshold!.value);
  // the engine decides this population's studies on its calibration
  const { scores, labels } = await evaluateValidation('per-image-pop-platt', '--classifier', join(dirname(classifierDir), 'pop-platt'));
  assert.equal(adult.value, calibrateThreshold(scores, labels, TARGET).threshold);
});

test('evaluate decides an image folder at the threshold of the population whose validation set it is (or the one --population names), and refuses a population the version has no threshold for', async () => {
  const r = await calibrateAtTarget('--population', `${basename(data)}=pediatric`, '--version', 'pop-eval');
  assert.equal(r.code, 0, r.stderr);
  const version = join(dirname(classifierDir), 'pop-eval');
  const m = await readManifest(version);
  const pediatric = m.threshold!.populations!.pediatric!.value;
  const evaluate = (...extra: string[]) => cli(['evaluate', '--data', data, '--models', models, '--classifier', version, '--threads', '1', '--json', ...extra]);

  const auto = await evaluate();
  assert.equal(auto.code, 0, auto.stderr);
  const a = JSON.parse(auto.stdout) as { threshold: number; population?: string };
  assert.deepEqual([a.threshold, a.population], [pediatric, 'pediatric']);
  const asked = JSON.parse((await evaluate('--population', 'pediatric')).stdout) as { threshold: number };
  assert.equal(asked.threshold, pediatric);
  const none = await evaluate('--population', 'adult');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /E_BAD_ARGUMENT: the classifier has no adult threshold \(it has: pediatric\)/);
  // a version with one threshold decides at it
  const plain = JSON.parse((await cli(['evaluate', '--data', data, '--models', models, '--classifier', classifierDir, '--threads', '1', '--json'])).stdout) as {
    threshold: number;
    population?: string;
  };
  assert.deepEqual([plain.threshold, plain.population], [(await readManifest(classifierDir)).threshold!.value, undefined]);
  assert.ok(!('unusedPopulations' in plain), 'a version without population thresholds has none to leave unused');
  // the same images under a folder name no population's validation sets carry: the pooled threshold, said loudly
  const renamed = join(dirname(data), 'elsewhere');
  await symlink(data, renamed);
  const other = await cli(['evaluate', '--data', renamed, '--models', models, '--classifier', version, '--threads', '1', '--json']);
  assert.equal(other.code, 0, other.stderr);
  const o = JSON.parse(other.stdout) as { threshold: number; population?: string; unusedPopulations?: string[] };
  assert.deepEqual([o.threshold, o.population, o.unusedPopulations], [m.threshold!.value, undefined, ['pediatric']]);
  assert.match(other.stderr, /warning: decided at the version's pooled threshold: it also has pediatric thresholds.*pass --population pediatric/);
  // robustness says the same, and will not save such a run where the model card would show it as the version's operating point
  const shifted = (...extra: string[]) =>
    cli([
      'robustness',
      '--data',
      renamed,
      '--models',
      models,
      '--classifier',
      version,
      '--threads',
      '1',
      '--tta',
      '1',
      '--shifts',
      'gamma-0.7',
      '--json',
      ...extra,
    ]);
  const warned = await shifted();
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /warning: decided at the version's pooled threshold, not its pediatric one; pass --population pediatric/);
  const unsaved = await shifted('--save');
  assert.equal(unsaved.code, 2, unsaved.stderr);
  assert.match(unsaved.stderr, /E_BAD_ARGUMENT: --save: these films would be decided at the version's pooled threshold/);
  // refused before any film is scored: no progress line of the films as they are
  assert.doesNotMatch(unsaved.stderr, /as they are \[/);
  assert.equal(existsSync(join(version, 'evaluations')), false);
  // the contact sheet flags each film at its set's population threshold too
  const sheet = await cli([
    'contact-sheet',
    '--data',
    data,
    '--models',
    models,
    '--classifier',
    version,
    '--per-set',
    '2',
    '--threads',
    '1',
    '--out',
    join(root, 'sheet.png'),
  ]);
  assert.equal(sheet.code, 0, sheet.stderr);
  assert.match(sheet.stderr, new RegExp(`flagged at ${pediatric.toFixed(4)} \\(pediatric threshold\\)`));
});
