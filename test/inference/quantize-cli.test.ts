/**
 * `quantize` writes model.int8.onnx next to model.onnx, compares both through the served
 * pipeline on the validation rows, gives the int8 classifier its own threshold, records the
 * serving decision in a manifest that still verifies; the engine serves int8 when that
 * decision says so, float when told (CXR_PRECISION / --precision), and never half of either.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createRandomModels } from '../../bench/latency-models.js';
import { csvLine, parseCsv } from '../../src/data/csv.js';
import { loadDataset } from '../../src/data/dataset.js';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { CxrError } from '../../src/errors.js';
import { loadEngine } from '../../src/inference/engine.js';
import { readManifest, verifyManifest, writeManifest } from '../../src/ml/manifest.js';
import { calibrateThreshold } from '../../src/ml/metrics.js';
import { exportModelVersion } from '../../src/ml/onnx/model-version.js';
import { decide } from '../../src/cli/quantize-version.js';
import { runCli as cli } from './run-cli.js';

let root: string;
let models: string;
let dirs: { segmenter: string; classifier: string };
let data: string;
let splitCsv: string;
let validation: Set<string>;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-quantize-cli-'));
  models = join(root, 'models');
  data = join(root, 'data');
  dirs = await createRandomModels(models, { size: 'small', seed: 6 });
  await writeSynthDataset({ out: data, count: 10, seed: 31_337, sizeMin: 128, sizeMax: 160, workSize: 128 });
  const ds = await loadDataset(data);
  const seen = { normal: 0, pneumonia: 0 };
  const lines = [csvLine(['file', 'patient_id', 'label', 'split'])];
  const chosen: string[] = [];
  for (const i of ds.items) {
    const subset = seen[i.label]++ % 2 === 0 ? 'validation' : 'train';
    if (subset === 'validation') chosen.push(i.file);
    lines.push(csvLine([i.file, i.patientId, i.label, subset]));
  }
  assert.ok(seen.normal >= 2 && seen.pneumonia >= 2, 'the synthetic set needs both labels in both subsets');
  await mkdir(join(root, 'run'));
  splitCsv = join(root, 'run', 'split.csv');
  await writeFile(splitCsv, `${lines.join('\n')}\n`);
  validation = new Set(chosen);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const common = () => ['--calib', data, '--split', splitCsv, '--models', models, '--threads', '1', '--tta', '2', '--max-images', '4'];

test('quantize a segmenter: model.int8.onnx, float-vs-int8 comparison with mask agreement, the decision the rule gives, a manifest that verifies', async () => {
  const r = await cli(['quantize', dirs.segmenter, ...common(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { kind: string; quantization: { file: string } };
  assert.equal(out.kind, 'segmenter');
  const m = await readManifest(dirs.segmenter);
  const q = m.quantization!;
  assert.equal(q.file, 'model.int8.onnx');
  assert.ok(existsSync(join(dirs.segmenter, q.file)));
  assert.ok(m.files['model.int8.onnx'], 'the int8 model is hashed in the manifest');
  assert.ok((await verifyManifest(dirs.segmenter)).ok);
  assert.ok(q.quantizedNodes > 0 && q.bytes.int8 < q.bytes.float);
  assert.deepEqual(q.calibration.data, ['data', 'split.csv:train']);
  assert.equal(q.calibration.images, 4);
  const c = q.comparison!;
  assert.equal(c.n, validation.size);
  assert.equal(c.views, 2);
  assert.ok(c.maskAgreement && c.maskAgreement.mean > 0.5 && c.maskAgreement.min <= c.maskAgreement.mean);
  assert.equal(c.otherModel.name, 'classifier');
  assert.equal(q.threshold, undefined, 'a segmenter has no threshold');
  assert.deepEqual({ served: q.served, decision: q.decision }, decide('segmenter', c));
  // no machine paths in what the manifest records
  assert.doesNotMatch(JSON.stringify(q), new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test("quantize a classifier: the int8 threshold is calibrateThreshold on the int8 pipeline's validation probabilities (evaluate with CXR_PRECISION=int8)", async () => {
  const r = await cli(['quantize', dirs.classifier, ...common()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /AUC\s+float \S+\s+int8 \S+/);
  assert.match(r.stdout, /decision\s+(int8|float) served/);
  const m = await readManifest(dirs.classifier);
  const q = m.quantization!;
  assert.ok(q.threshold && q.comparison);
  assert.equal(q.comparison.int8.threshold, q.threshold.value);
  assert.equal(q.comparison.float.threshold !== null, true);

  const perImage = join(root, 'per-image-int8.csv');
  const ev = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1', '--tta', '2', '--per-image', perImage], {
    CXR_PRECISION: 'int8',
  });
  assert.equal(ev.code, 0, ev.stderr);
  const rows = parseCsv(await readFile(perImage, 'utf8')).rows.map((x) => x.fields).filter(([file]) => validation.has(file));
  const expected = calibrateThreshold(rows.map(([, , p]) => Number(p)), rows.map(([, l]) => Number(l)), q.comparison.targetRecall);
  assert.equal(q.threshold.value, expected.threshold);
  assert.equal(q.threshold.validationSensitivity, expected.sensitivity);
});

test('the engine serves int8 where the manifest says so, with its own threshold; CXR_PRECISION=float and --precision float force float', async () => {
  for (const d of [dirs.segmenter, dirs.classifier]) {
    const { files: _f, ...m } = await readManifest(d);
    await writeManifest(d, { ...m, quantization: { ...m.quantization!, served: true } });
  }
  const cm = await readManifest(dirs.classifier);
  const auto = await loadEngine({ modelsDir: models, threads: 1, precision: 'auto' });
  try {
    assert.equal(auto.models.segmenter.precision, 'int8');
    assert.equal(auto.models.classifier.precision, 'int8');
    assert.equal(auto.models.classifier.sha256, cm.files['model.int8.onnx']);
    assert.equal(auto.threshold.value, cm.quantization!.threshold!.value);
  } finally {
    await auto.close();
  }
  const dcm = 'fixtures/dicom/cr-mono1-u12.dcm';
  const a = await cli(['analyze', dcm, '--models', models, '--threads', '1', '--json']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(JSON.parse(a.stdout).models.classifier.precision, 'int8');
  const f = await cli(['analyze', dcm, '--models', models, '--threads', '1', '--json'], { CXR_PRECISION: 'float' });
  assert.equal(f.code, 0, f.stderr);
  const rf = JSON.parse(f.stdout);
  assert.equal(rf.models.classifier.precision, 'float');
  assert.equal(rf.models.classifier.sha256, cm.files['model.onnx']);
  assert.equal(rf.threshold, cm.threshold!.value);
  const p = await cli(['analyze', dcm, '--models', models, '--threads', '1', '--json', '--precision', 'float'], { CXR_PRECISION: 'int8' });
  assert.equal(JSON.parse(p.stdout).models.segmenter.precision, 'float');
  const bad = await cli(['analyze', dcm, '--models', models, '--precision', 'fp8']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /E_BAD_ARGUMENT/);
});

test('asking for int8 where a version has none is E_MODEL_MISSING; a manifest that says served but is not marked stays float under auto', async () => {
  const other = join(root, 'other');
  const fresh = await createRandomModels(other, { size: 'small', seed: 7 });
  await assert.rejects(
    loadEngine({ modelsDir: other, threads: 1, precision: 'int8' }),
    (e) => e instanceof CxrError && e.code === 'E_MODEL_MISSING' && /quantize/.test(e.message),
  );
  const r = await cli(['quantize', fresh.classifier, ...common(), '--models', other, '--no-compare']);
  assert.equal(r.code, 0, r.stderr);
  const q = (await readManifest(fresh.classifier)).quantization!;
  assert.equal(q.comparison, null);
  assert.equal(q.served, false);
  const e = await loadEngine({ modelsDir: other, threads: 1 });
  try {
    assert.equal(e.models.classifier.precision, 'float');
  } finally {
    await e.close();
  }
});

test('export-onnx drops an int8 model quantized from the previous model.onnx; quantize --remove drops it too', async () => {
  const other = join(root, 'other2');
  const fresh = await createRandomModels(other, { size: 'small', seed: 8 });
  let r = await cli(['quantize', fresh.segmenter, ...common(), '--models', other, '--no-compare']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(fresh.segmenter, 'model.int8.onnx')));
  await exportModelVersion(fresh.segmenter);
  assert.ok(!existsSync(join(fresh.segmenter, 'model.int8.onnx')));
  assert.equal((await readManifest(fresh.segmenter)).quantization, undefined);
  assert.ok((await verifyManifest(fresh.segmenter)).ok);
  r = await cli(['quantize', fresh.segmenter, ...common(), '--models', other, '--no-compare']);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['quantize', fresh.segmenter, '--remove']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!existsSync(join(fresh.segmenter, 'model.int8.onnx')));
  assert.ok((await verifyManifest(fresh.segmenter)).ok);
});
