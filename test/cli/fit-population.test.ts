/**
 * `fit-population` on a refit-head feature cache of two sets: a new revision carrying the
 * estimator (verified, derived from the version), nothing written on --dry-run, and a cache
 * of another width or a single population refused with E_BAD_ARGUMENT.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { randomModels } from '../support/random-models.js';
import { readManifest, verifyManifest } from '../../src/ml/model-store/index.js';
import { float32ToBase64 } from '../../src/ml/float32-base64.js';
import { runCli as cli } from '../support/cli.js';
import { poolRefitArgs, writeSetPool } from '../support/set-pool.js';

let root: string;
let models: { segmenter: string; classifier: string };
const cache = () => join(root, 'features.jsonl');
const fit = (...extra: string[]) =>
  cli([
    'fit-population',
    '--classifier',
    models.classifier,
    '--population',
    'adult=adult',
    '--population',
    'child=pediatric',
    '--min-confidence',
    '0.51',
    ...extra,
  ]);

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-fitpop-'));
  models = await randomModels(join(root, 'models'), { size: 'small', seed: 5 });
  await writeSetPool(root, ['adult', 'child'], { count: 8, seed: 700, fractions: [0.5, 0.5, 0] });
  const r = await cli([
    ...poolRefitArgs(root, ['adult', 'child'], models),
    '--cache',
    cache(),
    '--extract-only',
    '--views',
    '2',
    '--train-views',
    '2',
    '--threads',
    '1',
  ]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('fit-population writes a verified revision of the classifier carrying the estimator, fitted on train films and checked on validation ones', async () => {
  const r = await fit('--cache', cache(), '--version', 'est');
  assert.equal(r.code, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.equal(dir, join(dirname(models.classifier), 'est'));
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const m = await readManifest(dir);
  const base = await readManifest(models.classifier);
  assert.equal(m.derivedFrom!.reason, 'fit-population');
  assert.equal(m.derivedFrom!.version, base.version);
  const e = m.populationEstimator!;
  assert.deepEqual([e.above, e.below, e.minConfidence, e.featurePrecision], ['pediatric', 'adult', 0.51, 'float']);
  assert.equal(e.inputs, Number(base.onnx!.outputs.find((o) => o.name === 'features')!.shape[1]));
  assert.deepEqual(e.fittedOn.sets, { adult: 'adult', child: 'pediatric' });
  assert.ok(e.fittedOn.n > 0 && e.validation.n > 0, JSON.stringify(e.validation));
  assert.deepEqual(Object.keys(e.validation.perSet).sort(), ['adult', 'child']);
  assert.match(r.stderr, /validation: \d+ films, accuracy \d\.\d{4}, \d+ at confidence >= 0\.51/);
});

test('fit-population --dry-run prints the figures and writes nothing', async () => {
  const r = await fit('--cache', cache(), '--version', 'dry', '--dry-run');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '');
  assert.ok(!existsSync(join(dirname(models.classifier), 'dry')));
});

test('a cache of another width, one population, or a minimum confidence of 0.5 is E_BAD_ARGUMENT before anything is written', async () => {
  const narrow = join(root, 'narrow.jsonl');
  const row = (id: string, source: string) => JSON.stringify({ id, label: 0, source, split: 'train', views: [float32ToBase64(Float32Array.from([1, 2, 3]))] });
  await writeFile(narrow, `${row('a', 'adult')}\n${row('b', 'child')}\n`);
  const narrowed = await fit('--cache', narrow, '--version', 'narrow');
  assert.equal(narrowed.code, 2);
  assert.match(narrowed.stderr, /E_BAD_ARGUMENT.*the cache holds 3 features per view/);
  const one = await cli(['fit-population', '--classifier', models.classifier, '--cache', cache(), '--population', 'adult=adult', '--version', 'one']);
  assert.equal(one.code, 2);
  assert.match(one.stderr, /E_BAD_ARGUMENT.*two populations/);
  const half = await fit('--cache', cache(), '--min-confidence', '0.5');
  assert.equal(half.code, 2);
  assert.match(half.stderr, /--min-confidence must be in \(0\.5, 1\]/);
  for (const v of ['narrow', 'one']) assert.ok(!existsSync(join(dirname(models.classifier), v)));
});
