/**
 * `calibrate` picks the threshold on the very probabilities `evaluate` (the served pipeline,
 * TTA included) reports for the split's rows, and writes it into a manifest that still verifies.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createRandomModels } from '../../bench/latency-models.js';
import { loadDataset } from '../../src/data/dataset.js';
import { csvLine, parseCsv } from '../../src/data/csv.js';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { readManifest, verifyManifest } from '../../src/ml/manifest.js';
import { calibrateThreshold, confusionAt, binaryMetrics } from '../../src/ml/metrics.js';
import { runCli as cli } from './run-cli.js';

const STUDIES = 8;
const TARGET = 0.75;
let root: string;
let models: string;
let classifierDir: string;
let data: string;
let splitCsv: string;
let validation: Set<string>;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-calibrate-cli-'));
  models = join(root, 'models');
  data = join(root, 'data');
  classifierDir = (await createRandomModels(models, { size: 'small', seed: 4 })).classifier;
  await writeSynthDataset({ out: data, count: STUDIES, seed: 90_417, sizeMin: 128, sizeMax: 192, workSize: 128 });
  // Every other study of each label in validation, so recall is defined there and a cut is needed.
  const ds = await loadDataset(data);
  const seen = { normal: 0, pneumonia: 0 };
  const lines = [csvLine(['file', 'patient_id', 'label', 'split'])];
  const chosen: string[] = [];
  for (const i of ds.items) {
    const subset = seen[i.label]++ % 2 === 0 ? 'validation' : 'train';
    if (subset === 'validation') chosen.push(i.file);
    lines.push(csvLine([i.file, i.patientId, i.label, subset]));
  }
  assert.ok(seen.normal > 0 && seen.pneumonia > 0, 'the synthetic set needs both labels');
  await mkdir(join(root, 'run'));
  splitCsv = join(root, 'run', 'split.csv');
  await writeFile(splitCsv, `${lines.join('\n')}\n`);
  validation = new Set(chosen);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('calibrate --dry-run prints the new threshold and leaves the manifest byte for byte as it was', async () => {
  const before = await readFile(join(classifierDir, 'manifest.json'), 'utf8');
  const r = await cli(['calibrate', '--data', data, '--split', splitCsv, '--models', models, '--target-recall', String(TARGET), '--threads', '1', '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /threshold\s+\S+ -> \d\.\d{4}/);
  assert.equal(await readFile(join(classifierDir, 'manifest.json'), 'utf8'), before);
});

test("calibrate --fit none writes the threshold calibrateThreshold picks on evaluate's per-image probabilities of the validation rows, reaching the target recall there, and the manifest still verifies", async () => {
  const perImage = join(root, 'per-image.csv');
  const ev = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1', '--per-image', perImage]);
  assert.equal(ev.code, 0, ev.stderr);
  const rows = parseCsv(await readFile(perImage, 'utf8'))
    .rows.map((r) => r.fields)
    .filter(([file]) => validation.has(file));
  assert.equal(rows.length, validation.size);
  const scores = rows.map(([, , p]) => Number(p));
  const labels = rows.map(([, l]) => Number(l));
  const expected = calibrateThreshold(scores, labels, TARGET);

  const r = await cli([
    'calibrate',
    '--data',
    data,
    '--split',
    splitCsv,
    '--models',
    models,
    '--target-recall',
    String(TARGET),
    '--threads',
    '1',
    '--fit',
    'none',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest(classifierDir);
  assert.equal(m.calibration, undefined);
  // the manifest names the split relative to where the command ran, never by an absolute path
  assert.ok(!m.threshold!.calibratedOn!.split.startsWith('/'), m.threshold!.calibratedOn!.split);
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
  assert.deepEqual(await verifyManifest(classifierDir), { ok: true, modified: [], missing: [], unlisted: [] });
});

test('calibrate fits a Platt calibration on the raw served probabilities, picks the threshold on the calibrated ones, and the engine serves them', async () => {
  const r = await cli(['calibrate', '--data', data, '--split', splitCsv, '--models', models, '--target-recall', String(TARGET), '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /calibration\s+platt: p' = sigmoid\(/);
  const m = await readManifest(classifierDir);
  const cal = m.calibration!;
  assert.equal(cal.method, 'platt');
  assert.ok(cal.a > 0 && Number.isFinite(cal.b));
  assert.deepEqual({ subset: cal.fittedOn.subset, n: cal.fittedOn.n, views: cal.fittedOn.views }, { subset: 'validation', n: validation.size, views: 4 });
  assert.ok(cal.eceBefore >= 0 && cal.eceAfter >= 0);

  // evaluate now reports calibrated probabilities: sigmoid(a logit(raw) + b) of the raw ones
  const perImage = join(root, 'per-image-calibrated.csv');
  const ev = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1', '--per-image', perImage]);
  assert.equal(ev.code, 0, ev.stderr);
  const rows = parseCsv(await readFile(perImage, 'utf8'))
    .rows.map((x) => x.fields)
    .filter(([file]) => validation.has(file));
  const scores = rows.map(([, , p]) => Number(p));
  const labels = rows.map(([, l]) => Number(l));
  assert.equal(m.threshold!.value, calibrateThreshold(scores, labels, TARGET).threshold);
  const recall = binaryMetrics(confusionAt(scores, labels, m.threshold!.value)).recall!;
  assert.ok(recall >= TARGET, `recall ${recall} < ${TARGET}`);
  assert.equal(JSON.parse(ev.stdout).threshold, m.threshold!.value);
  assert.deepEqual(await verifyManifest(classifierDir), { ok: true, modified: [], missing: [], unlisted: [] });
});
