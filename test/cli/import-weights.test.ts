/**
 * `import-weights` turns a weights.bin trained elsewhere (scripts/gpu/finetune.py) for a
 * version's graph into a new version: the same model.json with the new weights, model.onnx
 * exported from them, its threshold picked on the served pipeline over the split's validation
 * films, provenance naming the version it started from; a file that does not fit the graph,
 * or holds a value that is not finite, is refused before anything is written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readManifest, verifyManifest, writeManifest } from '../../src/ml/model-store/index.js';
import { loadEngine } from '../../src/inference/engine.js';
import { runCli as cli } from '../support/cli.js';
import { importWeightsArgs, scratchModelsAndData } from '../support/ml.js';
import { weightLayout, type WeightSpec } from '../../src/ml/imported-weights.js';
import { alternatingSplit } from '../support/data.js';

let root: string;
let models: string;
let classifierDir: string;
let segmenterDir: string;
let data: string;
let splitCsv: string;
let validation: Set<string>;
let testCount: number;
/** the base version's weights with the output layer's bias moved, so the import is a new model */
let moved: string;
/** whether the graph stores its weights as float16 (else float32) */
let half: boolean;

before(async () => {
  ({ root, models, data, classifierDir, segmenterDir } = await scratchModelsAndData('cxr-import-weights-', {
    count: 8,
    seed: 51_733,
    sizeMin: 128,
    sizeMax: 192,
    workSize: 128,
  }));
  splitCsv = join(root, 'split.csv');
  validation = (await alternatingSplit(data, splitCsv)).validation;
  // every other train film becomes a test film, so the import has test figures to record
  let k = 0;
  const lines = (await readFile(splitCsv, 'utf8')).trimEnd().split('\n');
  const rewritten = lines.map((l, i) => (i > 0 && l.endsWith(',train') && k++ % 2 === 0 ? l.replace(/,train$/, ',test') : l));
  testCount = rewritten.filter((l) => l.endsWith(',test')).length;
  await writeFile(splitCsv, `${rewritten.join('\n')}\n`);
  const graph = JSON.parse(await readFile(join(classifierDir, 'model.json'), 'utf8')) as { weightsManifest: { weights: WeightSpec[] }[] };
  const bytes = new Uint8Array(await readFile(join(classifierDir, 'weights.bin')));
  const layout = weightLayout(graph.weightsManifest[0].weights);
  half = layout[0].bytesPerValue === 2;
  const bias = layout.find((w) => w.spec.name === 'probability/bias');
  if (bias) {
    const v = new DataView(bytes.buffer, bytes.byteOffset);
    if (bias.bytesPerValue === 2)
      v.setUint16(bias.offset, 0x4000, true); // 2.0
    else v.setFloat32(bias.offset, 2, true);
  }
  moved = join(root, 'moved.weights.bin');
  await writeFile(moved, bytes);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const importArgs = (weights: string, ...extra: string[]) =>
  importWeightsArgs(weights, { from: classifierDir, split: splitCsv, data, segmenter: segmenterDir }, ...extra);

test('an imported weights.bin becomes a verified version: its weights, model.onnx from them, a threshold picked on validation films, and where it started from', async () => {
  const logFile = join(root, 'train.log');
  await writeFile(logFile, 'epoch 1 loss 0.5\n');
  const r = await cli([...importArgs(moved, '--version', 'v-imported', '--epochs', '3', '--best-epoch', '2', '--method', 'a test run', '--log', logFile)]);
  assert.equal(r.code, 0, r.stderr);
  const dir = join(dirname(classifierDir), 'v-imported');
  assert.equal(r.stdout.trim(), dir);
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const weights = await readFile(moved);
  assert.deepEqual(await readFile(join(dir, 'weights.bin')), weights);
  assert.deepEqual(await readFile(join(dir, 'model.json')), await readFile(join(classifierDir, 'model.json')));
  assert.deepEqual(await readFile(join(dir, 'split.csv')), await readFile(splitCsv));
  assert.equal(await readFile(join(dir, 'training', 'train.log'), 'utf8'), 'epoch 1 loss 0.5\n');
  const m = await readManifest(dir);
  const base = await readManifest(classifierDir);
  assert.ok(m.files['model.onnx'] && m.files['model.onnx'] !== base.files['model.onnx'], 'model.onnx is exported from the imported weights');
  assert.equal(m.onnx!.parityMaxAbsDiff <= 1e-3, true);
  assert.deepEqual(m.training.config, {
    method: 'a test run',
    weightsFile: 'moved.weights.bin',
    weightsSha256: createHash('sha256').update(weights).digest('hex'),
    logs: ['training/train.log'],
  });
  assert.equal(m.training.epochs, 3);
  assert.equal(m.training.bestEpoch, 2);
  assert.equal(m.training.initFrom!.version, base.version);
  assert.equal(m.training.dataHash, base.training.dataHash);
  assert.equal(m.derivedFrom, undefined);
  // picked on the validation films of the split, on the served pipeline
  assert.equal(m.threshold!.targetRecall, 0.75);
  assert.equal(m.threshold!.calibratedOn!.subset, 'validation');
  assert.equal(m.threshold!.calibratedOn!.n, validation.size);
  assert.ok(m.threshold!.validationSensitivity >= 0.75);
  assert.equal(m.metrics.validation.n, validation.size);
  assert.equal(m.metrics.validation.threshold, m.threshold!.value);
  assert.equal(m.metrics.validation.recall, m.threshold!.validationSensitivity);
  // the split's test films scored through the version as served, at the same threshold
  assert.ok(testCount > 0);
  assert.equal(m.metrics.test.n, testCount);
  assert.equal(m.metrics.test.threshold, m.threshold!.value);
  assert.ok(m.metrics.test.ci95, 'test figures carry bootstrap intervals');
  assert.equal(m.drift!.n, validation.size);
  // the engine serves it by name
  const engine = await loadEngine({ modelsDir: models, classifierDir: dir, threads: 1 });
  assert.equal(engine.models.classifier.version, 'v-imported');
  await engine.close();
});

test('a weights file that does not fit the graph, or holds a NaN, is E_MODEL_INVALID and writes no version', async () => {
  const before = await readdir(dirname(classifierDir));
  const short = join(root, 'short.bin');
  await writeFile(short, (await readFile(moved)).subarray(0, 100));
  const a = await cli(importArgs(short));
  assert.notEqual(a.code, 0);
  assert.match(a.stderr, /E_MODEL_INVALID.*the weights file has 100 bytes/);
  const nan = join(root, 'nan.bin');
  const bytes = new Uint8Array(await readFile(moved));
  if (half) new DataView(bytes.buffer, bytes.byteOffset).setUint16(0, 0x7e00, true);
  else new DataView(bytes.buffer, bytes.byteOffset).setFloat32(0, Number.NaN, true);
  await writeFile(nan, bytes);
  const b = await cli(importArgs(nan));
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /E_MODEL_INVALID.*not finite/);
  assert.deepEqual(await readdir(dirname(classifierDir)), before);
});

test('an import without the data and segmenter to calibrate on, of a segmenter, or with two --log files of one name is E_BAD_ARGUMENT', async () => {
  const r = await cli(['import-weights', moved, '--from', classifierDir, '--split', splitCsv, '--version', 'v-none']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /E_BAD_ARGUMENT.*give --data/);
  const seg = await cli(['import-weights', moved, '--from', segmenterDir, '--data', data, '--segmenter', segmenterDir]);
  assert.match(seg.stderr, /E_BAD_ARGUMENT.*is a segmenter version: import-weights makes classifier versions/);
  const a = join(root, 'a');
  const b = join(root, 'b');
  for (const d of [a, b]) {
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'log.txt'), d);
  }
  const twice = await cli([...importArgs(moved, '--version', 'v-none'), '--log', join(a, 'log.txt'), '--log', join(b, 'log.txt')]);
  assert.match(twice.stderr, /E_BAD_ARGUMENT.*two --log files are both named log\.txt/);
  assert.equal(existsSync(join(dirname(classifierDir), 'v-none')), false);
});

test('an import for a version whose crops are quantile-matched is E_BAD_ARGUMENT: weights trained on crops as they are would be served matched', async () => {
  const matched = join(root, 'matched', 'v-matched');
  await cp(classifierDir, matched, { recursive: true });
  const { files: _files, ...m } = await readManifest(matched);
  const quantiles = Array.from({ length: 256 }, (_, k) => (k + 0.5) / 256);
  const fittedOn = { films: 2, sets: { a: 2 }, subset: 'train' as const, segmenter: 'random', at: '2026-12-05T00:00:00.000Z' };
  await writeManifest(matched, { ...m, intensity: { method: 'quantile-match', quantiles, fittedOn } });
  const r = await cli(importWeightsArgs(moved, { from: matched, split: splitCsv, data, segmenter: segmenterDir }, '--version', 'v-from-matched'));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /E_BAD_ARGUMENT.*quantile-matches its crops/);
  assert.equal(existsSync(join(dirname(matched), 'v-from-matched')), false);
});
