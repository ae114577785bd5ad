/**
 * `fit-population-head` on a version refit by refit-head on two sets: a new revision whose
 * adult operating point carries its own head (verified, derived from the version), which
 * `evaluate` then serves for the adult set's films exactly as the head says; nothing written
 * on --dry-run; a version without a refit recipe, an unknown population or a blend share
 * outside [0,1] refused with E_BAD_ARGUMENT; `calibrate` refuses to re-pick a headed version's
 * operating points without the head.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { randomModels } from '../support/random-models.js';
import { parseCsv } from '../../src/data/csv.js';
import { readManifest, verifyManifest } from '../../src/ml/model-store/index.js';
import { applyCalibration } from '../../src/ml/probability-calibration.js';
import { driftReference } from '../../src/ml/drift-reference.js';
import { loadPopulationHead, populationHeadProbability } from '../../src/ml/population-head.js';
import { readFeatureCache, type FeatureRow } from '../../src/ml/train/feature-cache.js';
import { runCli as cli } from '../support/cli.js';
import { poolEvaluateArgs, poolRefitArgs, writeSetPool } from '../support/set-pool.js';

let root: string;
let models: { segmenter: string; classifier: string };
/** the refit version (both sets, with a recipe) and its own features */
let joint: string;
const cache = () => join(root, 'joint-features.jsonl');
const sets = ['adult', 'child'];
const fit = (classifier: string, ...extra: string[]) =>
  cli([
    'fit-population-head',
    '--classifier',
    classifier,
    '--cache',
    cache(),
    '--population',
    'adult=adult',
    '--population',
    'child=pediatric',
    '--for',
    'adult',
    '--folds',
    '2',
    '--deals',
    '1',
    ...extra,
  ]);

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-pophead-'));
  models = await randomModels(join(root, 'models'), { size: 'small', seed: 6 });
  await writeSetPool(root, sets, { count: 12, seed: 900, fractions: [0.5, 0.3, 0.2] });
  const common = ['--views', '2', '--train-views', '2', '--threads', '1', '--target-recall', '0.5'];
  const refit = await cli([...poolRefitArgs(root, sets, models, join(root, 'models', 'classifier')), ...common, '--l2', '0.1', '--version', 'joint']);
  assert.equal(refit.code, 0, refit.stderr);
  joint = refit.stdout.trim();
  // the refit version's own served features, as fit-population-head needs them
  const extract = await cli([...poolRefitArgs(root, sets, { ...models, classifier: joint }), ...common, '--extract-only', '--cache', cache()]);
  assert.equal(extract.code, 0, extract.stderr);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test("fit-population-head writes a verified revision whose adult threshold carries its own head, and evaluate serves the head's probabilities for the adult set", async () => {
  const r = await fit(joint, '--blend', '0,1', '--version', 'headed');
  assert.equal(r.code, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.equal(dir, join(dirname(joint), 'headed'));
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const m = await readManifest(dir);
  assert.equal(m.derivedFrom!.reason, 'fit-population-head');
  assert.equal(m.derivedFrom!.version, 'joint');
  assert.match(r.stderr, /joint recipe of joint: adult:1, child:1, L2 0\.1, 2 train views/);
  assert.match(r.stderr, /own 0: AUC [\d.]+, specificity at recall 0\.5 /);
  assert.match(r.stderr, /own 1: AUC [\d.]+, specificity at recall 0\.5 /);
  assert.match(r.stderr, /<- chosen/);
  const adult = m.threshold!.populations!.adult!;
  const head = adult.head!;
  assert.deepEqual(adult.datasets, ['adult']);
  assert.equal(head.chosenOn.tried.length, 2);
  assert.deepEqual(head.fittedOn.jointSets, { adult: 1, child: 1 });
  assert.ok(adult.calibration, 'a head comes with its own calibration');
  // the card says which head scores adults and what it was chosen on
  const card = await cli(['models', 'card', dir, '--models', join(root, 'models')]);
  assert.equal(card.code, 0, card.stderr);
  assert.match(card.stdout, /\*\*The adult population's own head\*\* \(`fit-population-head`\)/);
  assert.match(card.stdout, new RegExp(`chosen on ${head.chosenOn.n} adult films \\(${head.chosenOn.positives} with pneumonia\\)`));

  // the served pipeline on the adult validation films: the head on each film's features, through its calibration
  const perImage = join(root, 'headed-served.csv');
  const ev = await cli(poolEvaluateArgs(root, 'adult', models.segmenter, dir, perImage));
  assert.equal(ev.code, 0, ev.stderr);
  const features = new Map<string, FeatureRow>();
  await readFeatureCache(cache(), features);
  const loaded = loadPopulationHead(head, 'test');
  const served = parseCsv(await readFile(perImage, 'utf8')).rows.map((x) => x.fields);
  assert.ok(served.length > 0);
  for (const [file, , p] of served) {
    const expected = applyCalibration(adult.calibration, populationHeadProbability(loaded, features.get(file)!.views));
    assert.ok(Math.abs(Number(p) - expected) < 1e-5, `${file}: served ${p}, the head gives ${expected}`);
  }
  // the drift reference counts what the service stores per validation study: the adults' head probabilities, the children's graph ones
  const childImage = join(root, 'headed-child.csv');
  const child = await cli(poolEvaluateArgs(root, 'child', models.segmenter, dir, childImage));
  assert.equal(child.code, 0, child.stderr);
  const childServed = parseCsv(await readFile(childImage, 'utf8')).rows.map((x) => Number(x.fields[2]));
  const expectedDrift = driftReference('validation', [...served.map((f) => Number(f[2])), ...childServed], []);
  assert.deepEqual(m.drift!.probabilityHistogram, expectedDrift.probabilityHistogram);
  assert.equal(m.drift!.n, expectedDrift.n);
  assert.deepEqual(m.drift!.lungAreaHistogram, (await readManifest(joint)).drift?.lungAreaHistogram, 'the lung areas do not change');
  // re-picking its operating points on validation alone would drop the head: refused, nothing written
  const recal = await cli([
    'calibrate',
    '--classifier',
    dir,
    '--scores',
    perImage,
    '--population',
    'adult=adult',
    '--precision',
    'float',
    '--version',
    'recal',
  ]);
  assert.equal(recal.code, 2);
  assert.match(recal.stderr, /E_BAD_ARGUMENT.*the adult population has its own head \(fit-population-head\)/);
  assert.ok(!existsSync(join(dirname(dir), 'recal')));
});

test('fit-population-head --dry-run prints the figures and writes nothing', async () => {
  const r = await fit(joint, '--blend', '0.5', '--version', 'dry', '--dry-run');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '');
  assert.match(r.stderr, /own 0\.5: AUC .*<- chosen/);
  assert.ok(!existsSync(join(dirname(joint), 'dry')));
});

test('a version without a refit recipe, an unknown population, or a blend share outside [0,1] is E_BAD_ARGUMENT before anything is written', async () => {
  const plain = await fit(models.classifier, '--version', 'plain');
  assert.equal(plain.code, 2);
  assert.match(plain.stderr, /E_BAD_ARGUMENT.*was not fitted by refit-head on several sets/);
  const unknown = await fit(joint, '--for', 'elderly', '--version', 'elderly');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /E_BAD_ARGUMENT.*--for must be one of adult, pediatric/);
  const share = await fit(joint, '--blend', '0,2', '--version', 'share');
  assert.equal(share.code, 2);
  assert.match(share.stderr, /E_BAD_ARGUMENT.*--blend shares must be in \[0,1\]/);
  for (const v of ['plain', 'elderly', 'share']) assert.ok(!existsSync(join(dirname(joint), v)));
});
