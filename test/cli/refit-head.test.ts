/**
 * `refit-head` on a pool of two sets: the new version verifies, carries per-set figures, a
 * Platt calibration and a threshold, names no absolute path, and the probabilities it reports
 * for validation images are the ones the served pipeline (`evaluate`) gives with the new head.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { randomModels } from '../support/random-models.js';
import { parseCsv } from '../../src/data/csv.js';
import { isQuantileFunction } from '../../src/imaging/intensity-match.js';
import { readManifest, verifyManifest } from '../../src/ml/model-store/index.js';
import { runCli as cli } from '../support/cli.js';
import { poolEvaluateArgs, poolRefitArgs, writeSetPool } from '../support/set-pool.js';
import { fromAssignments, readSplitFile, writeSplit } from '../../src/data/split.js';

let root: string;
let models: { segmenter: string; classifier: string };
const sets = ['adult', 'child'];

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-refit-'));
  models = await randomModels(join(root, 'models'), { size: 'small', seed: 4 });
  await writeSetPool(root, sets, { count: 10, seed: 500, fractions: [0.4, 0.4, 0.2] });
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** refit-head on both sets with the random models, 2 views, 1 thread, recall target 0.5, into `out`/`version`; `extra` adds or overrides. */
function refitArgs(out: string, version: string, ...extra: string[]): string[] {
  return [...poolRefitArgs(root, sets, models, out), '--views', '2', '--threads', '1', '--target-recall', '0.5', '--version', version, ...extra];
}

test('refit-head writes a verified version with per-set figures and calibration whose validation probabilities are what evaluate serves', async () => {
  const out = join(root, 'out');
  const report = join(root, 'report');
  const r = await cli(refitArgs(out, 'v1', '--l2', '0.1,1', '--report', report));
  assert.equal(r.code, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.equal(dir, join(out, 'v1'));
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const m = await readManifest(dir);
  assert.deepEqual(Object.keys(m.metrics.sets!).sort(), sets);
  assert.equal(m.training.config.featurePrecision, 'float', 'a float base gives float features');
  // the L2 strength is chosen by the specificity at the target recall unless told otherwise
  assert.equal(m.training.config.select, 'specificity');
  assert.match(r.stderr, new RegExp(`chose l2 ${m.training.config.l2} by specificity`));
  assert.equal(typeof m.training.config.validationMeanSetSpecificity, 'number');
  // the card it writes carries each set's validation row with its intervals
  const card = await readFile(join(dir, 'MODEL_CARD.md'), 'utf8');
  for (const s of sets) assert.match(card, new RegExp(`^\\| ${s} \\| validation \\| \\d+ \\(\\d+\\) \\| `, 'm'), card);
  assert.ok(!card.includes(root), 'the card names a machine path');
  assert.ok(m.calibration && m.calibration.method === 'platt');
  assert.equal(m.threshold!.calibratedOn!.split, 'split.csv');
  assert.ok(!(await readFile(join(dir, 'manifest.json'), 'utf8')).includes(root), 'the manifest names a machine path');
  assert.deepEqual(
    m.training.datasets!.map((d) => d.name),
    sets,
  );

  // the served pipeline with the new version, on the adult validation rows
  const { servedRows, perImage } = await servedMatchesReport(dir, join(report, 'v1-per-image.csv'));
  // the uncertainty bound is set on the validation rows' TTA spreads, which evaluate reproduces
  const u = m.threshold!.uncertainty!;
  assert.equal(u.n, m.threshold!.calibratedOn!.n);
  const spreadAt = parseCsv(await readFile(perImage, 'utf8')).header.indexOf('spread');
  const adultLargest = Math.max(...servedRows.map((f) => Number(f[spreadAt])));
  assert.ok(adultLargest <= u.largest + 1e-4, `adult validation spread ${adultLargest} above the largest recorded, ${u.largest}`);
});

/** evaluate's served probabilities for the new version's adult validation rows, checked against what refit-head reported. */
async function servedMatchesReport(dir: string, reportCsv: string): Promise<{ servedRows: string[][]; perImage: string }> {
  const perImage = join(dir, '..', `${dir.split('/').pop()}-served.csv`);
  const ev = await cli([...poolEvaluateArgs(root, 'adult', models.segmenter, dir, perImage), '--json']);
  assert.equal(ev.code, 0, ev.stderr);
  const servedRows = parseCsv(await readFile(perImage, 'utf8')).rows.map((x) => x.fields);
  const reported = new Map(parseCsv(await readFile(reportCsv, 'utf8')).rows.map((x) => [x.fields[0], Number(x.fields[5])] as const));
  assert.ok(servedRows.length > 0);
  for (const [file, , p] of servedRows) {
    // a pool split names its images by set, in evaluate as in the report
    const mine = reported.get(file);
    assert.ok(mine !== undefined, file);
    assert.ok(Math.abs(Number(p) - mine) < 1e-4, `${file}: served ${p}, refit-head reported ${mine}`);
  }
  return { servedRows, perImage };
}

test('--head-taps fits a multi-scale head on the tapped layers and the final features: its version exports their pooled input and serves what refit-head reported', async () => {
  const report = join(root, 'taps-report');
  const r = await cli(refitArgs(join(root, 'taps'), 'taps', '--l2', '0.1', '--head-taps', 'transition1_relu', '--report', report));
  assert.equal(r.code, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const m = await readManifest(dir);
  assert.deepEqual(m.architectureConfig.headTaps, ['transition1_relu']);
  assert.deepEqual(m.training.config.headTaps, ['transition1_relu']);
  assert.ok(
    m.onnx!.outputs.some((o) => o.name === 'pooled'),
    JSON.stringify(m.onnx!.outputs),
  );
  await servedMatchesReport(dir, join(report, 'taps-per-image.csv'));
  const bad = await cli(refitArgs(join(root, 'taps'), 'bad', '--head-taps', 'no_such_layer'));
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /E_BAD_ARGUMENT.*no_such_layer/);
});

test('--match-intensity fits a reference on train crops, extracts matched features, and its version serves what refit-head reported; a cache of unmatched features is refused', async () => {
  const report = join(root, 'matched-report');
  const cache = join(root, 'matched-cache.jsonl');
  const r = await cli(refitArgs(join(root, 'matched'), 'matched', '--l2', '0.1', '--match-intensity', '3', '--cache', cache, '--report', report));
  assert.equal(r.code, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const m = await readManifest(dir);
  assert.equal(m.intensity?.method, 'quantile-match');
  assert.equal(m.intensity.quantiles.length, 256);
  assert.ok(isQuantileFunction(m.intensity.quantiles));
  // three train films of each set (both sets have more)
  assert.deepEqual(m.intensity.fittedOn.sets, { adult: 3, child: 3 });
  assert.match(r.stderr, /intensity reference [0-9a-f]{16} \(quantile-match\) fitted on 6 train films/);
  // evaluate applies the manifest's reference: the served probabilities are the reported ones
  await servedMatchesReport(dir, join(report, 'matched-per-image.csv'));
  // and without it the same head serves other probabilities (the matching is not a no-op here)
  const plainCache = join(root, 'unmatched-cache.jsonl');
  const plain = await cli(refitArgs(join(root, 'matched'), 'unmatched', '--l2', '0.1', '--report', join(root, 'unmatched-report'), '--cache', plainCache));
  assert.equal(plain.code, 0, plain.stderr);
  // and an unmatched cache cannot feed a matched refit: refused before any reference is fitted
  const late = await cli(refitArgs(join(root, 'matched'), 'late', '--l2', '0.1', '--match-intensity', '3', '--cache', plainCache));
  assert.equal(late.code, 2, late.stderr);
  assert.match(late.stderr, /E_BAD_ARGUMENT: --match-intensity: the --cache holds features of unmatched crops/);
  assert.doesNotMatch(late.stderr, /intensity reference/);
  const probs = async (f: string) => parseCsv(await readFile(f, 'utf8')).rows.map((x) => Number(x.fields[4]));
  assert.notDeepEqual(await probs(join(report, 'matched-per-image.csv')), await probs(join(root, 'unmatched-report', 'unmatched-per-image.csv')));
  // the matched cache cannot feed an unmatched refit
  const mixed = await cli(refitArgs(join(root, 'matched'), 'mixed', '--l2', '0.1', '--cache', cache));
  assert.equal(mixed.code, 2, mixed.stderr);
  assert.match(mixed.stderr, /E_BAD_ARGUMENT: \d+ cached feature rows were extracted with an intensity reference/);
  // fit-population reads a cache only for the version whose reference its crops were matched to
  const populations = ['--population', 'adult=adult', '--population', 'child=pediatric', '--dry-run'];
  const wrong = await cli(['fit-population', '--classifier', join(root, 'matched', 'unmatched'), '--cache', cache, ...populations]);
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.match(wrong.stderr, /E_BAD_ARGUMENT: \d+ cached feature rows were extracted with an intensity reference, and unmatched matches none/);
  const right = await cli(['fit-population', '--classifier', dir, '--cache', cache, ...populations]);
  assert.equal(right.code, 0, right.stderr);
  // a version that already matches keeps its reference: asking for another is refused
  const again = await cli([
    ...poolRefitArgs(root, sets, { ...models, classifier: dir }, join(root, 'matched')),
    '--views',
    '2',
    '--threads',
    '1',
    '--match-intensity',
    '3',
  ]);
  assert.equal(again.code, 2, again.stderr);
  assert.match(again.stderr, /already matches its crops/);
  // a version derived from it (here quantized) keeps the reference, so it serves matched crops too
  const q = await cli([
    'quantize',
    dir,
    ...sets.flatMap((s) => ['--calib', join(root, s)]),
    '--split',
    join(root, 'run', 'split.csv'),
    '--segmenter',
    models.segmenter,
    '--max-images',
    '2',
    '--tta',
    '1',
    '--threads',
    '1',
    '--no-compare',
    '--json',
  ]);
  assert.equal(q.code, 0, q.stderr);
  assert.deepEqual((await readManifest(JSON.parse(q.stdout).dir)).intensity, m.intensity);
});

test("--match-scope film fits the reference on whole train films and serves crops matched by their films' ranks, as refit-head reported; a bad scope, or a scope without --match-intensity, is E_BAD_ARGUMENT", async () => {
  const report = join(root, 'film-report');
  const r = await cli(refitArgs(join(root, 'film'), 'film', '--l2', '0.1', '--match-intensity', '3', '--match-scope', 'film', '--report', report));
  assert.equal(r.code, 0, r.stderr);
  const dir = r.stdout.trim();
  const m = await readManifest(dir);
  assert.equal(m.intensity?.method, 'film-quantile-match');
  assert.ok(isQuantileFunction(m.intensity.quantiles));
  assert.match(r.stderr, /intensity reference [0-9a-f]{16} \(film-quantile-match\) fitted on 6 train films/);
  await servedMatchesReport(dir, join(report, 'film-per-image.csv'));
  // another scope is another decision: not the crop-scope version's probabilities
  const probs = async (f: string) => parseCsv(await readFile(f, 'utf8')).rows.map((x) => Number(x.fields[4]));
  assert.notDeepEqual(await probs(join(report, 'film-per-image.csv')), await probs(join(root, 'matched-report', 'matched-per-image.csv')));
  const bad = await cli(refitArgs(join(root, 'film'), 'bad', '--match-intensity', '3', '--match-scope', 'lungs'));
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /E_BAD_ARGUMENT: --match-scope must be crop or film, got 'lungs'/);
  const alone = await cli(refitArgs(join(root, 'film'), 'alone', '--match-scope', 'film'));
  assert.equal(alone.code, 2, alone.stderr);
  assert.match(alone.stderr, /E_BAD_ARGUMENT: --match-scope needs --match-intensity/);
});

test("--match-from fits the reference on the named sets' train films only, a one-folder run's too, its films counted under the folder's name; a set not among --data, or --match-from without --match-intensity, is E_BAD_ARGUMENT", async () => {
  const r = await cli(refitArgs(join(root, 'from'), 'from-adult', '--l2', '0.1', '--match-intensity', '3', '--match-from', 'adult'));
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest(r.stdout.trim());
  assert.deepEqual([m.intensity?.fittedOn.sets, m.intensity?.fittedOn.films], [{ adult: 3 }, 3]);
  // one folder with a split of its own (no dataset column): its items carry no pool set, yet the reference names the folder
  const own = join(root, 'adult-split');
  const pool = await readSplitFile(join(root, 'run', 'split.csv'));
  await writeSplit(
    own,
    fromAssignments(
      pool.seed,
      pool.fractions,
      pool.assignments.filter((a) => a.dataset === 'adult').map(({ dataset: _, ...a }) => ({ ...a, file: a.file.replace(/^adult\//, '') })),
    ),
  );
  const args = poolRefitArgs(root, ['adult'], models, join(root, 'from'));
  args[args.indexOf('--split') + 1] = join(own, 'split.csv');
  const one = await cli([
    ...args,
    '--views',
    '2',
    '--threads',
    '1',
    '--target-recall',
    '0.5',
    '--version',
    'adult-only',
    '--l2',
    '0.1',
    '--match-intensity',
    '3',
    '--match-from',
    'adult',
  ]);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual((await readManifest(one.stdout.trim())).intensity?.fittedOn.sets, { adult: 3 });
  const unknown = await cli(refitArgs(join(root, 'from'), 'bad', '--match-intensity', '3', '--match-from', 'adult,elderly'));
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /E_BAD_ARGUMENT: --match-from: elderly is not one of the --data sets \(adult, child\)/);
  const alone = await cli(refitArgs(join(root, 'from'), 'alone', '--match-from', 'adult'));
  assert.equal(alone.code, 2, alone.stderr);
  assert.match(alone.stderr, /E_BAD_ARGUMENT: --match-from needs --match-intensity/);
});

test('--train-views 2 fits the head on every view of the train rows: another head than one view gives from the same cache, recorded in the config; more train views than --views is E_BAD_ARGUMENT', async () => {
  const cache = join(root, 'views.jsonl');
  const refit = (trainViews: string, version: string, ...extra: string[]) =>
    cli(refitArgs(join(root, 'views'), version, '--train-views', trainViews, '--l2', '0.1', '--cache', cache, ...extra));
  const two = await refit('2', 'two');
  assert.equal(two.code, 0, two.stderr);
  // the second run reads every feature from the cache the first one wrote
  const one = await refit('1', 'one');
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stderr, /\(\d+ with features, 0 to extract\)/);
  const [m2, m1] = [await readManifest(join(root, 'views', 'two')), await readManifest(join(root, 'views', 'one'))];
  assert.deepEqual([m2.training.config.trainViews, m1.training.config.trainViews], [2, 1]);
  assert.notEqual(m2.files['weights.bin'], m1.files['weights.bin'], 'fitting on both views gives another head');
  // the same command with an unknown --select is refused before any work
  const badSelect = await refit('1', 'bad', '--select', 'accuracy');
  assert.equal(badSelect.code, 2);
  assert.match(badSelect.stderr, /E_BAD_ARGUMENT.*--select must be one of auc, specificity/);
  const tooMany = await refit('3', 'three');
  assert.equal(tooMany.code, 2);
  assert.match(tooMany.stderr, /E_BAD_ARGUMENT.*--train-views \(3\) must not exceed --views \(2\)/);
});

test('--cross-fit 2 scores the train films out of fold and chooses the L2 strength on them with validation: the manifest records the pooled choice; one fold is E_BAD_ARGUMENT', async () => {
  const cache = join(root, 'views.jsonl');
  const r = await cli(refitArgs(join(root, 'cross'), 'cf', '--l2', '0.1,1', '--cache', cache, '--cross-fit', '2'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /2-fold out-of-fold train AUC/);
  assert.match(r.stderr, /l2 1: fold 2\/2 fitted and scored/);
  assert.match(r.stderr, /chose l2 (0\.1|1) by specificity on the train films out of fold and the validation films/);
  const m = await readManifest(r.stdout.trim());
  const cf = m.training.config.crossFit as { folds: number; perSet: Record<string, { outOfFoldAuc: number | null; pooledAuc: number | null }> };
  assert.equal(cf.folds, 2);
  assert.deepEqual(Object.keys(cf.perSet).sort(), sets);
  for (const s of sets)
    assert.ok(cf.perSet[s].pooledAuc === null || (cf.perSet[s].pooledAuc >= 0 && cf.perSet[s].pooledAuc <= 1), JSON.stringify(cf.perSet[s]));
  // validation-only figures are still recorded under their own names
  assert.equal(typeof m.training.config.validationMeanSetAuc, 'number');
  const one = await cli(refitArgs(join(root, 'cross'), 'one-fold', '--cross-fit', '1', '--cache', cache));
  assert.equal(one.code, 2);
  assert.match(one.stderr, /E_BAD_ARGUMENT.*--cross-fit/);
});

test('--extract-only fills the feature cache without --out and writes no version; without --extract-only --out is E_BAD_ARGUMENT, and --extract-only without --cache is refused before any extraction', async () => {
  const cache = join(root, 'extract-only.jsonl');
  const base = [...poolRefitArgs(root, sets, models), '--views', '2', '--train-views', '2', '--threads', '1'];
  const r = await cli([...base, '--extract-only', '--cache', cache]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', 'no version is published');
  const rows = (await readFile(cache, 'utf8')).trim().split('\n');
  const images = Number(/^(\d+) images \(0 with features, (\d+) to extract\)/m.exec(r.stderr)?.[1]);
  assert.ok(images > 0, r.stderr);
  assert.equal(rows.length, images, 'one cache line per image');
  for (const row of rows) assert.equal((JSON.parse(row) as { views: string[] }).views.length, 2, 'every film with both views');
  const noOut = await cli([...base, '--cache', cache]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /E_BAD_ARGUMENT.*--out <dir> is required unless --extract-only/);
  const noCache = await cli([...base, '--extract-only']);
  assert.equal(noCache.code, 2);
  assert.match(noCache.stderr, /E_BAD_ARGUMENT.*--extract-only keeps nothing without --cache/);
  assert.doesNotMatch(noCache.stderr, /to extract/, 'refused before the images are even counted');
});

test('a feature cache extracted under one split and refitted under another fits, calibrates and tests on the subsets --split gives, not on the ones the cache remembers', async () => {
  const cache = join(root, 'other-split.jsonl');
  const splitA = join(root, 'run', 'split.csv');
  const args = (split: string, ...extra: string[]) => {
    const a = [
      ...poolRefitArgs(root, sets, models),
      '--views',
      '2',
      '--train-views',
      '2',
      '--threads',
      '1',
      '--target-recall',
      '0.5',
      '--cache',
      cache,
      ...extra,
    ];
    a[a.indexOf('--split') + 1] = split;
    return a;
  };
  const extracted = await cli(args(splitA, '--extract-only'));
  assert.equal(extracted.code, 0, extracted.stderr);
  // the same films with train and test swapped: whole patients move, so still a patient split
  const text = await readFile(splitA, 'utf8');
  const splitB = join(root, 'split-swapped.csv');
  await writeFile(
    splitB,
    text
      .replace(/,train,/g, ',TMP,')
      .replace(/,test,/g, ',train,')
      .replace(/,TMP,/g, ',test,'),
  );
  const subsets = (t: string) => {
    const rows = parseCsv(t, 'split').rows.map((r) => r.fields[3]);
    return {
      train: rows.filter((s) => s === 'train').length,
      validation: rows.filter((s) => s === 'validation').length,
      test: rows.filter((s) => s === 'test').length,
    };
  };
  const b = subsets(await readFile(splitB, 'utf8'));
  assert.notDeepEqual(b, subsets(text));
  const report = join(root, 'report-b');
  const r = await cli([...args(splitB, '--out', join(root, 'out-b'), '--version', 'vB', '--l2', '1', '--report', report)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /cached films belong to another subset in .*split-swapped\.csv than when they were extracted/);
  const m = await readManifest(r.stdout.trim());
  assert.deepEqual({ train: m.training.split.train, validation: m.training.split.validation, test: m.training.split.test }, b);
  // every film the report scores as test is a test film of split B
  const inB = new Map(parseCsv(await readFile(splitB, 'utf8'), 'split').rows.map((row) => [row.fields[0], row.fields[3]]));
  const scored = parseCsv(await readFile(join(report, 'vB-per-image.csv'), 'utf8'), 'report').rows.filter((row) => row.fields[2] === 'test');
  assert.ok(scored.length > 0);
  assert.deepEqual([...new Set(scored.map((row) => inB.get(row.fields[0])))], ['test']);
});

test('evaluate of one set folder without --split warns that films of it trained the pooled version (whose split names them by set)', async () => {
  const r = await cli(refitArgs(join(root, 'out-leak'), 'vLeak', '--l2', '1'));
  assert.equal(r.code, 0, r.stderr);
  const version = r.stdout.trim();
  const trained = parseCsv(await readFile(join(version, 'split.csv'), 'utf8'), 'split').rows.filter(
    (row) => row.fields[0].startsWith('adult/') && row.fields[3] !== 'test',
  ).length;
  assert.ok(trained > 0);
  const e = await cli(['evaluate', '--data', join(root, 'adult'), '--segmenter', models.segmenter, '--classifier', version, '--tta', '1', '--threads', '1']);
  assert.equal(e.code, 0, e.stderr);
  assert.match(
    e.stderr,
    new RegExp(`warning: ${trained} of the 10 images evaluated trained or validated classifier vLeak \\(its split\\.csv\\): these figures are optimistic`),
  );
});
