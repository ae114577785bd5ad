/**
 * A version that quantile-matches its crops (`intensity` in its manifest): the manifest is
 * checked, the reference is part of the decision rule, and `train --init` refuses it rather
 * than fine-tuning on crops unlike the ones it serves.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { isCxrError } from '../../src/errors.js';
import { decisionRule, intensityMatchOf, readManifest, writeManifest, type IntensityInfo } from '../../src/ml/model-store/index.js';
import { fitIntensityReference, referenceFilms } from '../../src/cli/intensity-reference.js';
import type { EvalItem } from '../../src/ml/evaluate.js';
import { runCli as cli } from '../support/cli.js';
import { randomModels } from '../support/random-models.js';

let root: string;
let classifier: string;
const reference: IntensityInfo = {
  method: 'quantile-match',
  quantiles: Array.from({ length: 256 }, (_, k) => Math.round(((k + 0.5) / 256) * 1e6) / 1e6),
  fittedOn: { films: 4, sets: { a: 2, b: 2 }, subset: 'train', segmenter: 'random', at: '2026-12-05T00:00:00.000Z' },
};

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-intensity-'));
  ({ classifier } = await randomModels(join(root, 'models'), { size: 'small', seed: 4 }));
  const { files: _files, ...m } = await readManifest(classifier);
  await writeManifest(classifier, { ...m, intensity: reference });
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('a manifest whose intensity reference is not a quantile function, or says not what it was fitted on, is E_MODEL_INVALID, naming the field', async () => {
  const path = join(classifier, 'manifest.json');
  const good = await readFile(path, 'utf8');
  try {
    const raw = JSON.parse(good);
    raw.intensity.quantiles = [0.5, 0.2];
    await writeFile(path, JSON.stringify(raw));
    await assert.rejects(readManifest(classifier), (e: unknown) => isCxrError(e) && e.code === 'E_MODEL_INVALID' && /intensity\.quantiles/.test(e.message));
    raw.intensity = { method: 'equalise', quantiles: [0, 1] };
    await writeFile(path, JSON.stringify(raw));
    await assert.rejects(readManifest(classifier), /intensity\.method/);
    raw.intensity = { ...reference, fittedOn: { ...reference.fittedOn, films: 0 } };
    await writeFile(path, JSON.stringify(raw));
    await assert.rejects(readManifest(classifier), /intensity\.fittedOn/);
    const { fittedOn: _f, ...noProvenance } = reference;
    raw.intensity = noProvenance;
    await writeFile(path, JSON.stringify(raw));
    await assert.rejects(readManifest(classifier), /intensity\.fittedOn/);
  } finally {
    await writeFile(path, good);
  }
});

test('the intensity reference is part of the decision rule: a version with another reference decides differently', async () => {
  const m = await readManifest(classifier);
  const other = { ...m, intensity: { ...reference, quantiles: reference.quantiles.map((q) => q * 0.9) } };
  assert.notDeepEqual(decisionRule(m), decisionRule(other));
  const { intensity: _i, ...without } = m;
  assert.notDeepEqual(decisionRule(m), decisionRule(without));
});

test('train --init of a version whose crops are quantile-matched is refused with E_BAD_ARGUMENT before any epoch', async () => {
  const data = join(root, 'data');
  const s = await cli(['synth', '--out', data, '--count', '8', '--seed', '3', '--size', '96-128', '--work-size', '96', '--quiet']);
  assert.equal(s.code, 0, s.stderr);
  const r = await cli([
    'train',
    'classifier',
    '--data',
    data,
    '--init',
    classifier,
    '--out',
    join(root, 'out'),
    '--runs',
    join(root, 'runs'),
    '--epochs',
    '1',
    '--workers',
    '0',
    '--no-onnx',
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /E_BAD_ARGUMENT: --init \S+ quantile-matches its crops/);
  assert.doesNotMatch(r.stderr, /epoch 1/);
});

test("the model card's provenance says the crops are quantile-matched, and to what", async () => {
  const r = await cli(['models', 'card', classifier]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^- lung crops quantile-matched to an intensity reference \(256 points: the mean quantile function of 4 train crops, 2 a, 2 b, segmenter random\)/m,
  );
});

test("referenceFilms spreads each set's picks over its train films (a folder lists normals before pneumonias), never taking validation or test films", () => {
  const item = (source: string, k: number, label: number): EvalItem => ({
    id: `${source}/${k}`,
    source,
    label,
    image: () => Promise.reject(new Error('not read')),
  });
  // set a: 6 normal then 6 pneumonia train films, and a validation film between them; set b: 2 films
  const items = [
    ...Array.from({ length: 6 }, (_, k) => item('a', k, 0)),
    item('a', 99, 1),
    ...Array.from({ length: 6 }, (_, k) => item('a', 6 + k, 1)),
    item('b', 0, 0),
    item('b', 1, 1),
  ];
  const picked = referenceFilms(items, (id) => id !== 'a/99', 4);
  assert.deepEqual(
    picked.map((i) => i.id),
    ['a/1', 'a/4', 'a/7', 'a/10', 'b/0', 'b/1'],
  );
  assert.deepEqual(
    picked.filter((i) => i.source === 'a').map((i) => i.label),
    [0, 0, 1, 1],
  );
});

test("intensityMatchOf applies a manifest's reference by its method's scope: crop ranks for quantile-match, film ranks for film-quantile-match, none without one", () => {
  assert.deepEqual(intensityMatchOf(reference), { quantiles: reference.quantiles, scope: 'crop' });
  assert.deepEqual(intensityMatchOf({ ...reference, method: 'film-quantile-match' }), { quantiles: reference.quantiles, scope: 'film' });
  assert.equal(intensityMatchOf(undefined), null);
});

test('fitting a reference on no films is E_BAD_ARGUMENT before any model is loaded', async () => {
  await assert.rejects(
    fitIntensityReference([], { classifierDir: '/nonexistent', segmenterDir: '/nonexistent', segmenterVersion: 'x', inputSize: 224, scope: 'crop' }),
    (e: unknown) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT' && /no train films/.test(e.message),
  );
});
