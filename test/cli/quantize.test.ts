/**
 * `quantize` writes a new version (<version>-rN, the source untouched) holding model.onnx and
 * model.int8.onnx, compares both through the served pipeline on the validation rows, gives
 * the int8 classifier its own threshold and records the serving decision in a manifest that
 * verifies; the engine serves int8 when that decision says so, float when told
 * (CXR_PRECISION / --precision).
 */
import { test, before, after } from 'node:test';
import { uncertaintyBound } from '../../src/ml/uncertainty-bound.js';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { randomModels } from '../support/random-models.js';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { CxrError } from '../../src/errors.js';
import { loadEngine } from '../../src/inference/engine.js';
import { deriveVersion, manifestDigest, readManifest, servableVersion, verifyManifest, writeManifest } from '../../src/ml/model-store/index.js';
import { decodeModel, dimsOf, encodeModel, floatData, floatTensor, graphOf } from '../../src/ml/onnx/quantize/proto.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/ml/float16.js';
import { calibrateThreshold } from '../../src/ml/metrics.js';
import { applyCalibration, fitCalibration } from '../../src/ml/probability-calibration.js';
import { perImageCsv, readPerImageCsv } from '../../src/ml/evaluation-files.js';
import { histogram } from '../../src/ml/drift-reference.js';
import { itemsInSubset } from '../../src/ml/calibrate.js';
import { readSplitFile, splitBySet, writeSplit } from '../../src/data/split.js';
import { loadDatasets } from '../../src/data/multi-dataset.js';
import { loadEvalItems } from '../../src/ml/train/dataset-source.js';
import { exportNewRevision } from '../../src/ml/onnx/model-version.js';
import { decide } from '../../src/cli/quantize-version.js';
import { runCli as cli } from '../support/cli.js';
import { alternatingSplit } from '../support/data.js';

let root: string;
let models: string;
let dirs: { segmenter: string; classifier: string };
/** the versions quantize derives */
const derived: { segmenter?: string; classifier?: string } = {};
let data: string;
let splitCsv: string;
let validation: Set<string>;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-quantize-cli-'));
  models = join(root, 'models');
  data = join(root, 'data');
  dirs = await randomModels(models, { size: 'small', seed: 6 });
  await writeSynthDataset({ out: data, count: 10, seed: 31_337, sizeMin: 128, sizeMax: 160, workSize: 128 });
  splitCsv = join(root, 'run', 'split.csv');
  const split = await alternatingSplit(data, splitCsv);
  assert.ok(split.counts.normal >= 2 && split.counts.pneumonia >= 2, 'the synthetic set needs both labels in both subsets');
  validation = split.validation;
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const common = () => ['--calib', data, '--split', splitCsv, '--models', models, '--threads', '1', '--tta', '2', '--max-images', '4'];

/** Small random-weight models of their own (`seed`) in root/`name`, for a test that changes them. */
async function freshModels(name: string, seed: number) {
  const other = join(root, name);
  return { other, fresh: await randomModels(other, { size: 'small', seed }) };
}

async function quantize(dir: string, extra: string[] = [], models_ = models): Promise<{ dir: string; version: string; source: string }> {
  const r = await cli(['quantize', dir, ...common(), '--models', models_, '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("quantize a classifier: a new -r1 version with both models; the int8 threshold is calibrateThreshold on the int8 pipeline's validation probabilities", async () => {
  const before = manifestDigest(await readManifest(dirs.classifier));
  const out = await quantize(dirs.classifier);
  assert.equal(out.version, 'random-small-r1');
  assert.equal(out.source, 'random-small');
  derived.classifier = out.dir;
  assert.equal(manifestDigest(await readManifest(dirs.classifier)), before, 'the quantized version is untouched');
  const m = await readManifest(out.dir);
  assert.equal(m.derivedFrom?.reason, 'quantize');
  const q = m.quantization!;
  assert.equal(q.file, 'model.int8.onnx');
  assert.ok(m.files['model.int8.onnx'] && m.files['model.onnx'], 'both models are hashed in the manifest');
  assert.ok((await verifyManifest(out.dir)).ok);
  assert.ok(q.quantizedNodes > 0 && q.bytes.int8 < q.bytes.float);
  assert.equal(typeof q.halvedInitializers, 'number', 'the manifest says how many float tensors went to float16');
  assert.deepEqual(q.calibration.data, ['data', 'split.csv:train']);
  assert.equal(q.calibration.images, 4);
  assert.equal(q.calibration.inputsPerImage, 2);
  const c = q.comparison!;
  assert.equal(c.n, validation.size);
  assert.equal(c.otherModel.name, 'segmenter');
  assert.deepEqual({ served: q.served, decision: q.decision }, decide('classifier', c));
  assert.ok(q.threshold);
  assert.equal(c.int8.threshold, q.threshold.value);
  // no machine paths in what the manifest records
  assert.doesNotMatch(JSON.stringify(q), new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

  // the same pipeline, scored here: int8 classifier, the segmenter as served
  const items = itemsInSubset(await loadEvalItems(data), await readSplitFile(splitCsv), 'validation');
  const engine = await loadEngine({ modelsDir: models, classifierDir: out.dir, threads: 1, tta: 2, precision: { classifier: 'int8' } });
  const probs: number[] = [];
  const spreads: number[] = [];
  try {
    for (const item of items) {
      const s = await engine.scoreImage(await item.image());
      probs.push(s.probability);
      spreads.push(s.spread);
    }
  } finally {
    await engine.close();
  }
  const expected = calibrateThreshold(
    probs,
    items.map((i) => i.label),
    c.targetRecall,
  );
  assert.equal(q.threshold.value, expected.threshold);
  assert.equal(q.threshold.validationSensitivity, expected.sensitivity);
  // the int8 block's uncertainty bound is set on the int8 pipeline's spreads of the same images
  assert.deepEqual(q.threshold.uncertainty, uncertaintyBound(spreads));
});

test('quantize a segmenter: float-vs-int8 comparison with mask agreement and the decision the rule gives', async () => {
  const r = await cli(['quantize', dirs.segmenter, ...common()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /AUC\s+float \S+\s+int8 \S+/);
  assert.match(r.stdout, /mask agreement\s+mean Dice/);
  assert.match(r.stdout, /decision\s+(int8|float) served/);
  derived.segmenter = join(models, 'segmenter', 'random-small-r1');
  const m = await readManifest(derived.segmenter);
  const q = m.quantization!;
  const c = q.comparison!;
  assert.equal(c.views, 2);
  assert.ok(c.maskAgreement && c.maskAgreement.mean > 0.5 && c.maskAgreement.min <= c.maskAgreement.mean);
  assert.equal(c.otherModel.name, 'classifier');
  assert.equal(q.threshold, undefined, 'a segmenter has no threshold');
  assert.deepEqual({ served: q.served, decision: q.decision }, decide('segmenter', c));
});

test('the engine serves int8 where the manifest says so, with its own threshold; CXR_PRECISION=float and --precision float force float', async () => {
  for (const d of [derived.segmenter!, derived.classifier!]) {
    const { files: _f, ...m } = await readManifest(d);
    await writeManifest(d, { ...m, quantization: { ...m.quantization!, served: true } });
  }
  const cm = await readManifest(derived.classifier!);
  // the newest versions (the derived ones) are served
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

test('calibrate --scores --fit platt gives an int8-served version its own probability calibration, fitted on the saved raw probabilities, every threshold picked on the calibrated ones, and the engine serves it', async () => {
  // served int8 by the previous test; per-image CSVs of two sets as evaluate --save writes them
  const raw = { a: [0.9, 0.7, 0.6, 0.4, 0.3, 0.2], b: [0.95, 0.85, 0.5, 0.45, 0.1] };
  const labels = { a: [1, 1, 0, 1, 0, 0], b: [1, 1, 1, 0, 0] };
  const csvs: string[] = [];
  for (const set of ['a', 'b'] as const) {
    const path = join(root, `scores-${set}.csv`);
    // probability is what was served (squeezed here, as a calibration would); the fit must read raw_probability
    const rows = raw[set].map((p, i) => ({
      id: `${set}/images/${i}.png`,
      label: labels[set][i],
      probability: 0.5 + (p - 0.5) / 4,
      rawProbability: p,
      spread: 0.01 * (i + 1),
      lungAreaFraction: 0.2 + 0.01 * i,
    }));
    await writeFile(path, perImageCsv(rows, 0.5));
    csvs.push(path);
  }
  /** calibrate on the two CSVs at recall 0.6 (population a adult, b pediatric) into a new version */
  const calibrateScores = (classifier: string, version: string, ...extra: string[]) =>
    cli([
      'calibrate',
      '--classifier',
      classifier,
      '--scores',
      csvs[0],
      '--scores',
      csvs[1],
      '--population',
      'a=adult',
      '--population',
      'b=pediatric',
      '--target-recall',
      '0.6',
      '--version',
      version,
      ...extra,
    ]);
  const r = await calibrateScores(derived.classifier!, 'int8-platt', '--fit', 'platt');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /calibration\s+int8 model, platt: p' = sigmoid\(/);
  const m = await readManifest(join(models, 'classifier', 'int8-platt'));
  const allRaw = [...raw.a, ...raw.b];
  const allLabels = [...labels.a, ...labels.b];
  const fitted = fitCalibration(allRaw, allLabels, 'platt');
  const cal = m.quantization!.probabilityCalibration!;
  assert.deepEqual({ method: cal.method, a: cal.a, b: cal.b }, { method: fitted.method, a: fitted.a, b: fitted.b });
  assert.deepEqual({ n: cal.fittedOn.n, subset: cal.fittedOn.subset }, { n: 11, subset: 'validation' });
  const calibrated = (set: 'a' | 'b') => raw[set].map((p) => applyCalibration(fitted, p));
  const t = m.quantization!.threshold!;
  assert.equal(t.value, calibrateThreshold([...calibrated('a'), ...calibrated('b')], allLabels, 0.6).threshold, 'the pooled value is picked again');
  // each population gets its own calibration, fitted on its rows alone, and its threshold on what that gives
  for (const [pop, set] of [
    ['adult', 'a'],
    ['pediatric', 'b'],
  ] as const) {
    const own = fitCalibration(raw[set], labels[set], 'platt');
    const p = t.populations![pop]!;
    assert.deepEqual({ a: p.calibration!.a, b: p.calibration!.b, n: p.calibration!.fittedOn.n }, { a: own.a, b: own.b, n: raw[set].length });
    assert.equal(
      p.value,
      calibrateThreshold(
        raw[set].map((x) => applyCalibration(own, x)),
        labels[set],
        0.6,
      ).threshold,
    );
  }
  // the drift reference counts what the service will store: each study's probability on its population's scale
  const served = (['a', 'b'] as const).flatMap((set) => raw[set].map((x) => applyCalibration(fitCalibration(raw[set], labels[set], 'platt'), x)));
  const areas = (['a', 'b'] as const).flatMap((set) => raw[set].map((_, i) => 0.2 + 0.01 * i));
  assert.deepEqual(m.drift, { subset: 'validation', n: 11, probabilityHistogram: histogram(served, 0, 1), lungAreaHistogram: histogram(areas, 0, 0.6) });
  assert.equal(t.uncertainty!.bound, 0.06);
  // the engine applies the int8 model's own calibration to what its int8 model says
  const engine = await loadEngine({ modelsDir: models, classifierDir: join(models, 'classifier', 'int8-platt'), threads: 1, tta: 2 });
  try {
    assert.equal(engine.models.classifier.precision, 'int8');
    const [item] = await loadEvalItems(data);
    const s = await engine.scoreImage(await item.image());
    assert.equal(s.probability, applyCalibration(fitted, s.rawProbability));
    assert.notEqual(s.probability, s.rawProbability);
    // a study is decided on its population's own calibration (the example film's PatientAge is 66: adult)
    const { report } = await engine.analyze(new Uint8Array(await readFile('fixtures/example/chest.dcm')));
    assert.equal(report.population?.name, 'adult');
    const mean = report.tta.probabilities.reduce((x, y) => x + y, 0) / report.tta.probabilities.length;
    assert.ok(Math.abs(report.probability - applyCalibration(t.populations!.adult!.calibration!, mean)) < 1e-12);
    assert.equal(report.threshold, t.populations!.adult!.value);
  } finally {
    await engine.close();
  }
  // evaluate, deciding a folder as one population, reports that population's calibrated probabilities
  const perImage = join(root, 'int8-platt-adult.csv');
  const ev = await cli([
    'evaluate',
    '--data',
    data,
    '--models',
    models,
    '--classifier',
    join(models, 'classifier', 'int8-platt'),
    '--population',
    'adult',
    '--threads',
    '1',
    '--tta',
    '2',
    '--per-image',
    perImage,
    '--json',
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  const evaluated = await readPerImageCsv(perImage);
  assert.ok(evaluated.length > 0);
  for (const row of evaluated)
    assert.ok(Math.abs(row.probability - applyCalibration(t.populations!.adult!.calibration!, row.rawProbability!)) < 1e-12, row.file);
  // without --fit the int8 model's calibration is kept, and the thresholds are picked on the saved (served) probabilities
  const kept = await calibrateScores(join(models, 'classifier', 'int8-platt'), 'int8-kept');
  assert.equal(kept.code, 0, kept.stderr);
  const mk = await readManifest(join(models, 'classifier', 'int8-kept'));
  assert.deepEqual(mk.quantization!.probabilityCalibration, cal);
  assert.deepEqual(mk.quantization!.threshold!.populations!.adult!.calibration, t.populations!.adult!.calibration);
  assert.equal(
    mk.quantization!.threshold!.populations!.adult!.value,
    calibrateThreshold(
      raw.a.map((p) => 0.5 + (p - 0.5) / 4),
      labels.a,
      0.6,
    ).threshold,
  );
  // a value that is not a number is named with its line
  const garbled = join(root, 'scores-garbled.csv');
  await writeFile(garbled, 'file,label,probability,decision,raw_probability\na/images/0.png,pneumonia,0.4,negative,x\n');
  const bad = await cli(['calibrate', '--classifier', derived.classifier!, '--scores', garbled, '--population', 'a=adult', '--fit', 'platt', '--dry-run']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /E_BAD_DATASET.*line 2: raw_probability 'x' is not a number/);
  // scores whose probabilities were calibrated, saved without the raw ones, cannot be fitted on
  const noRaw = join(root, 'scores-noraw.csv');
  await writeFile(
    noRaw,
    perImageCsv(
      raw.a.map((p, i) => ({ id: `a/images/${i}.png`, label: labels.a[i], probability: p })),
      0.5,
    ),
  );
  const refused = await cli([
    'calibrate',
    '--classifier',
    join(models, 'classifier', 'int8-platt'),
    '--scores',
    noRaw,
    '--population',
    'a=adult',
    '--fit',
    'platt',
    '--dry-run',
  ]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /E_BAD_DATASET.*no raw_probability column and the int8 model applies a calibration/);
});

test('asking for int8 where a version has none is E_MODEL_MISSING; a manifest that says served but is not marked stays float under auto', async () => {
  const { other, fresh } = await freshModels('other', 7);
  await assert.rejects(
    loadEngine({ modelsDir: other, threads: 1, precision: 'int8' }),
    (e) => e instanceof CxrError && e.code === 'E_MODEL_MISSING' && /quantize/.test(e.message),
  );
  const out = await quantize(fresh.classifier, ['--no-compare'], other);
  const q = (await readManifest(out.dir)).quantization!;
  assert.equal(q.comparison, null);
  assert.equal(q.served, false);
  const e = await loadEngine({ modelsDir: other, threads: 1 });
  try {
    assert.equal(e.models.classifier.precision, 'float');
  } finally {
    await e.close();
  }
});

test('export-onnx on a quantized version writes a revision without the int8 model quantized from the previous model.onnx; the source keeps it', async () => {
  const { other, fresh } = await freshModels('other2', 8);
  const out = await quantize(fresh.segmenter, ['--no-compare', '--version', 'q1'], other);
  assert.equal(out.version, 'q1');
  assert.ok(existsSync(join(out.dir, 'model.int8.onnx')));
  const r = await exportNewRevision(out.dir);
  assert.equal(r.manifest.version, 'q1-r1');
  assert.ok(!existsSync(join(r.dir, 'model.int8.onnx')));
  assert.equal((await readManifest(r.dir)).quantization, undefined);
  assert.ok((await verifyManifest(r.dir)).ok);
  assert.ok(existsSync(join(out.dir, 'model.int8.onnx')));
  assert.notEqual((await readManifest(out.dir)).quantization, undefined);
  assert.ok((await verifyManifest(out.dir)).ok);
});

test('--drop-float ships only model.int8.onnx; float is rebuilt from the tfjs weights and served only with the recorded sha256', async () => {
  const { other, fresh } = await freshModels('other3', 9);
  const floatSha = (await readManifest(fresh.classifier)).files['model.onnx'];
  const out = await quantize(fresh.classifier, ['--no-compare', '--drop-float'], other);
  assert.ok(!existsSync(join(out.dir, 'model.onnx')));
  assert.ok(existsSync(join(out.dir, 'model.int8.onnx')));
  assert.ok((await verifyManifest(out.dir)).ok);
  const m = await readManifest(out.dir);
  assert.deepEqual({ sha256: m.quantization!.float!.sha256, shipped: m.quantization!.float!.shipped }, { sha256: floatSha, shipped: false });
  // it can be activated like any other version
  assert.equal((await servableVersion(other, 'classifier', out.version)).version, out.version);
  const e = await loadEngine({ modelsDir: other, threads: 1, precision: 'float' });
  try {
    assert.equal(e.models.classifier.precision, 'float');
    assert.equal(e.models.classifier.sha256, floatSha);
  } finally {
    await e.close();
  }
  // a rebuilt model that is not the one measured is refused
  const { files: _f, ...rest } = m;
  await writeManifest(out.dir, { ...rest, quantization: { ...rest.quantization!, float: { ...rest.quantization!.float!, metadata: { version: 'other' } } } });
  await assert.rejects(loadEngine({ modelsDir: other, threads: 1, precision: 'float' }), (err) => err instanceof CxrError && err.code === 'E_MODEL_INVALID');
  const q = await loadEngine({ modelsDir: other, threads: 1, precision: { classifier: 'int8' } });
  await q.close();
});

test('a version shipped int8 only can be quantized again with the comparison: its float is rebuilt into the new folder, byte-equal to the one recorded', async () => {
  const { other, fresh } = await freshModels('other4', 10);
  const floatSha = (await readManifest(fresh.classifier)).files['model.onnx'];
  const first = await quantize(fresh.classifier, ['--no-compare', '--drop-float'], other);
  assert.ok(!existsSync(join(first.dir, 'model.onnx')));
  const again = await quantize(first.dir, [], other);
  const m = await readManifest(again.dir);
  assert.ok(m.quantization!.comparison, 'compared float and int8');
  assert.equal(m.files['model.onnx'], floatSha);
  assert.ok((await verifyManifest(again.dir)).ok);
});

test('--data-ops none quantizes the convolutions alone (the graph before 2026-12-02); the default keeps pooling, up-sampling and concatenation in uint8; an unknown op is E_BAD_ARGUMENT', async () => {
  const { other, fresh } = await freshModels('other5', 11);
  const plain = await quantize(fresh.segmenter, ['--no-compare', '--data-ops', 'none'], other);
  const q = (await readManifest(plain.dir)).quantization!;
  assert.deepEqual({ dataNodes: q.dataNodes, dataOps: q.dataOps }, { dataNodes: 0, dataOps: [] });
  const full = (await readManifest((await quantize(fresh.segmenter, ['--no-compare'], other)).dir)).quantization!;
  assert.ok((full.dataNodes ?? 0) > 0);
  assert.deepEqual([...(full.dataOps ?? [])].sort(), ['Concat', 'DepthToSpace', 'MaxPool']);
  const bad = await cli(['quantize', fresh.segmenter, ...common(), '--models', other, '--data-ops', 'Resize']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /E_BAD_ARGUMENT.*--data-ops/);
});

test('quantize a version trained on a pool: --calib repeated with the pool split calibrates and compares on both sets', async () => {
  const child = join(root, 'child');
  await writeSynthDataset({ out: child, count: 10, seed: 4242, sizeMin: 128, sizeMax: 160, workSize: 128 });
  const pool = await loadDatasets([{ dir: data }, { dir: child }]);
  const split = splitBySet(
    pool.items.map((i) => ({ file: i.file, patientId: i.patientId, label: i.label, dataset: i.fields.source })),
    { seed: 1, fractions: [0.4, 0.6, 0] },
  );
  await writeSplit(join(root, 'pool'), split);
  const r = await cli([
    'quantize',
    dirs.classifier,
    '--calib',
    data,
    '--calib',
    child,
    '--split',
    join(root, 'pool', 'split.csv'),
    '--models',
    models,
    '--threads',
    '1',
    '--tta',
    '1',
    '--max-images',
    '4',
    '--version',
    'pooled',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const q = JSON.parse(r.stdout).quantization;
  assert.deepEqual(q.calibration.data, ['data', 'child', 'split.csv:train']);
  assert.deepEqual(q.comparison.data, ['data', 'child', 'split.csv:validation']);
  assert.equal(q.comparison.n, split.counts.validation.images, 'every validation film of both sets is compared');
});

test('models repack writes a version whose int8 model keeps its float16-exact float tensors as float16: smaller, the same probabilities, threshold and manifest otherwise; nothing to repack is E_BAD_ARGUMENT', async () => {
  // random weights are float32: round the int8 model's float tensors to float16 numbers, as
  // the shipped versions' (whose weights come as float16) are, in a version of their own
  const int8 = decodeModel(new Uint8Array(await readFile(join(derived.classifier!, 'model.int8.onnx'))));
  for (const t of graphOf(int8).initializer) {
    const d = floatData(t);
    if (d && d.length >= 64)
      Object.assign(
        t,
        floatTensor(
          t.name!,
          d.map((v) => float16BitsToFloat32(float32ToFloat16Bits(v))),
          dimsOf(t),
        ),
      );
  }
  const rounded = await deriveVersion(derived.classifier!, {
    version: 'rounded',
    reason: 'test',
    change: async (stage, m) => {
      await writeFile(join(stage, 'model.int8.onnx'), encodeModel(int8));
      return m;
    },
  });
  const before = await readFile(join(rounded.dir, 'manifest.json'), 'utf8');
  const r = await cli(['models', 'repack', 'rounded', '--models', models]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /classifier rounded -> rounded-r1: model\.int8\.onnx [\d.]+ -> [\d.]+ MB \(\d+ tensors as float16; outputs identical on 3 random batches\)/,
  );
  assert.equal(await readFile(join(rounded.dir, 'manifest.json'), 'utf8'), before, 'the source is untouched');
  const dir = join(models, 'classifier', 'rounded-r1');
  const [a, b] = [await readManifest(rounded.dir), await readManifest(dir)];
  assert.ok((await verifyManifest(dir)).ok);
  assert.equal(b.derivedFrom!.reason, 'repack');
  const size = (await readFile(join(dir, 'model.int8.onnx'))).length;
  assert.ok(size < (await readFile(join(rounded.dir, 'model.int8.onnx'))).length);
  assert.equal(b.quantization!.bytes.int8, size);
  assert.equal(b.quantization!.halvedInitializers, Number(/\((\d+) tensors as float16/.exec(r.stdout)![1]));
  assert.ok(b.quantization!.halvedInitializers! > 0);
  assert.deepEqual(b.quantization!.threshold, a.quantization!.threshold);
  // the service's probabilities, through the whole pipeline, are the same numbers
  const items = itemsInSubset(await loadEvalItems(data), await readSplitFile(splitCsv), 'validation');
  const scores = async (classifierDir: string) => {
    const engine = await loadEngine({ modelsDir: models, classifierDir, threads: 1, tta: 2, precision: { classifier: 'int8' } });
    try {
      const out: number[] = [];
      for (const item of items) out.push((await engine.scoreImage(await item.image())).rawProbability);
      return out;
    } finally {
      await engine.close();
    }
  };
  assert.deepEqual(await scores(dir), await scores(rounded.dir));
  const again = await cli(['models', 'repack', 'rounded-r1', '--models', models]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /E_BAD_ARGUMENT: rounded-r1: model\.int8\.onnx holds no float tensor that float16 stores exactly/);
  const none = await cli(['models', 'repack', dirs.classifier, '--models', models]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /has no int8 model \(model\.int8\.onnx\) to repack/);
});
