/**
 * The ONNX Runtime triage engine end to end on generated DICOM files, with random-weight
 * small model versions built by the real builders, saved, exported and hash-checked.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, appendFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { randomModels } from '../support/random-models.js';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { loadEngine, type OnnxTriageEngine } from '../../src/inference/engine.js';
import { onnxScorer } from '../../src/inference/scorer.js';
import { classActivationMap } from '../../src/inference/cam.js';
import { loadModel } from '../../src/ml/model-io.js';
import { featuresModel, HEAD_LAYER } from '../../src/ml/densenet.js';
import { deriveVersion, readManifest } from '../../src/ml/model-store/index.js';
import { CxrError } from '../../src/errors.js';
import { sessionOptions } from '../../src/inference/session.js';
import { float32ToBase64 } from '../../src/ml/float32-base64.js';
import { applyCalibration } from '../../src/ml/probability-calibration.js';
import { populationHeadProbability } from '../../src/ml/population-head.js';
import { grayImage, type GrayImage } from '../../src/imaging/types.js';

let root: string;
let dirs: { segmenter: string; classifier: string };
let engine: OnnxTriageEngine;
const dicom = chestDicom({ size: 512, seed: 3 });

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-engine-'));
  dirs = await randomModels(root, { size: 'small', seed: 1, threshold: 0.4 });
  engine = await loadEngine({ modelsDir: root, tta: 4, threads: 1 });
});

after(async () => {
  await engine?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

test('a study gets a well-formed report: 4 TTA views in one run, decision at the threshold, timings', async () => {
  const { report, meta } = await engine.analyze(dicom);
  assert.equal(meta.viewPosition, 'PA');
  assert.equal(report.tta.views, 4);
  assert.equal(report.tta.probabilities.length, 4);
  for (const p of report.tta.probabilities) assert.ok(p > 0 && p < 1);
  const mean = report.tta.probabilities.reduce((a, b) => a + b, 0) / 4;
  assert.ok(Math.abs(report.probability - mean) < 1e-9);
  assert.ok(report.tta.spread >= 0);
  assert.equal(report.threshold, 0.4);
  assert.equal(report.targetRecall, 0.95);
  assert.equal(report.decision, report.probability >= 0.4 ? 'positive' : 'negative');
  assert.equal(report.flagged, report.flagReasons.length > 0);
  assert.equal(report.flagReasons.includes('positive'), report.decision === 'positive');
  for (const f of report.qcFlags) assert.ok(report.flagReasons.includes(`qc:${f}`));
  assert.ok(report.lungAreaFraction >= 0 && report.lungAreaFraction <= 1);
  assert.deepEqual(report.image, { width: 512, height: 512 });
  assert.equal(report.window.source, 'header');
  for (const stage of ['decode', 'resize', 'segment', 'postprocess', 'crop', 'tta', 'classify', 'report', 'total']) {
    assert.equal(typeof report.timingsMs[stage], 'number', stage);
  }
  const segManifest = await readManifest(dirs.segmenter);
  assert.deepEqual(report.models.segmenter, { name: 'segmenter', version: 'random-small', sha256: segManifest.files['model.onnx'], precision: 'float' });
  assert.equal(report.models.classifier.version, 'random-small');
  assert.equal(report.cam!.values.length, report.cam!.width * report.cam!.height);
  assert.ok(report.cam!.values.every((v) => v >= 0 && v <= 1));
  // JSON round trip: nothing in the report that a database column could not hold
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
});

test('the TTA view count can be chosen per call', async () => {
  const one = await engine.analyze(dicom, { tta: 1 });
  assert.equal(one.report.tta.views, 1);
  assert.equal(one.report.tta.spread, 0);
  const six = await engine.analyze(dicom, { tta: 6 });
  assert.equal(six.report.tta.probabilities.length, 6);
  // the identity view scores the same crop whatever the batch around it
  assert.ok(Math.abs(six.report.tta.probabilities[0] - one.report.tta.probabilities[0]) < 1e-5);
});

test('artifacts: windowed image, 0/1 mask and [0,1] heatmap at the image size', async () => {
  const { artifacts, report } = await engine.analyze(dicom, { artifacts: true });
  assert.ok(artifacts);
  for (const img of [artifacts.windowed, artifacts.mask, artifacts.heatmap]) {
    assert.equal(img.width, 512);
    assert.equal(img.height, 512);
  }
  assert.ok(artifacts.mask.data.every((v) => v === 0 || v === 1));
  assert.ok(artifacts.heatmap.data.every((v) => v >= 0 && v <= 1));
  const maskPixels = artifacts.mask.data.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(maskPixels / (512 * 512) - report.lungAreaFraction) < 0.02);
});

test('a lateral view and a small image are flagged by QC', async () => {
  const { report } = await engine.analyze(chestDicom({ size: 200, seed: 4, viewPosition: 'LATERAL' }));
  assert.ok(report.qcFlags.includes('not_frontal_chest'));
  assert.ok(report.qcFlags.includes('image_too_small'));
  assert.equal(report.flagged, true);
  assert.ok(report.flagReasons.includes('qc:not_frontal_chest'));
});

test('bad DICOM bytes are a typed error, not a crash', async () => {
  await assert.rejects(engine.analyze(new TextEncoder().encode('not a dicom file at all')), (e: unknown) => e instanceof CxrError && e.code === 'E_NOT_DICOM');
});

test("the graph's cam output equals the head-weighted features of tfjs", async () => {
  const model = await loadModel(dirs.classifier);
  const withFeatures = featuresModel(model);
  const size = model.inputs[0].shape[1] as number;
  const input = Float32Array.from({ length: size * size }, (_, i) => ((i * 7919) % 1000) / 1000);
  const [, features] = withFeatures.predict(tf.tensor(input, [1, size, size, 1])) as tf.Tensor[];
  const [, h, w, c] = features.shape;
  const nhwc = features.dataSync() as Float32Array;
  const chw = new Float32Array(nhwc.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) chw[(k * h + y) * w + x] = nhwc[(y * w + x) * c + k];
  const kernel = model.getLayer(HEAD_LAYER).getWeights()[0].dataSync();
  const want = classActivationMap(chw, c, h, w, kernel);
  const session = await ort.InferenceSession.create(join(dirs.classifier, 'model.onnx'));
  const out = await session.run({ input: new ort.Tensor('float32', input, [1, 1, size, size]) });
  await session.release();
  const got = out.cam.data as Float32Array;
  assert.deepEqual(out.cam.dims, [1, 1, h, w]);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `cam[${i}] ${got[i]} vs ${want[i]}`);
  // and mean(cam) + bias is the logit of the probability output
  const bias = model.getLayer(HEAD_LAYER).getWeights()[1].dataSync()[0];
  const logit = want.reduce((a, b) => a + b, 0) / want.length + bias;
  assert.ok(Math.abs(1 / (1 + Math.exp(-logit)) - (out.probability.data as Float32Array)[0]) < 1e-5);
  model.dispose();
});

test('missing models are E_MODEL_MISSING with how to train and export', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'cxr-nomodels-'));
  try {
    await assert.rejects(loadEngine({ modelsDir: empty }), (e: unknown) => {
      return e instanceof CxrError && e.code === 'E_MODEL_MISSING' && /cxr-triage train segmenter/.test(e.message) && /export-onnx/.test(e.message);
    });
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

test('ACTIVE picks the served version; a version it names that is absent is E_MODEL_MISSING', async () => {
  const copy = await mkdtemp(join(tmpdir(), 'cxr-active-'));
  try {
    await cp(root, copy, { recursive: true });
    await writeFile(join(copy, 'classifier', 'ACTIVE'), 'v-none\n');
    await assert.rejects(loadEngine({ modelsDir: copy }), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_MISSING' && /ACTIVE/.test(e.message));
    await writeFile(join(copy, 'classifier', 'ACTIVE'), 'random-small\n');
    const e2 = await loadEngine({ modelsDir: copy, tta: 1, threads: 1 });
    assert.equal(e2.models.classifier.version, 'random-small');
    await e2.close();
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
});

test('a model.onnx that no longer matches its manifest hash is refused', async () => {
  const copy = await mkdtemp(join(tmpdir(), 'cxr-tamper-'));
  try {
    await cp(root, copy, { recursive: true });
    await appendFile(join(copy, 'segmenter', 'random-small', 'model.onnx'), new Uint8Array([0]));
    await assert.rejects(
      loadEngine({ modelsDir: copy }),
      (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /model\.onnx/.test(e.message),
    );
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
});

test('a GPU provider that cannot start falls back to CPU and says so', async () => {
  const warnings: string[] = [];
  const e = await loadEngine({ modelsDir: root, tta: 1, threads: 1, providers: ['cuda'], onWarning: (m) => warnings.push(m) });
  try {
    if (e.providers.classifier.includes('cuda')) return; // a machine with CUDA: nothing to fall back from
    assert.deepEqual(e.providers, { segmenter: ['cpu'], classifier: ['cpu'] });
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /cuda/);
    const { report } = await e.analyze(dicom);
    assert.equal(report.tta.views, 1);
  } finally {
    await e.close();
  }
});

test('the evaluate scorer gives the probability analyze reports for the same image', async () => {
  const { readWindowed } = await import('../../src/dicom/index.js');
  const scorer = await onnxScorer({ segmenterDir: dirs.segmenter, classifierDir: dirs.classifier, tta: 4, threads: 1 });
  try {
    const { encodeDicom, decodeModality, newUid } = await import('../../src/dicom/index.js');
    // analyze reads the film as words plus a window table; the scorer gets the float image:
    // the same probability to the last bit, for 16-bit MONOCHROME2 and 8-bit MONOCHROME1 alike
    const stored = (await decodeModality(dicom)).values;
    const side = Math.round(Math.sqrt(stored.length));
    let max = 0;
    for (const v of stored) max = Math.max(max, v);
    const eightBit = encodeDicom({
      rows: side,
      columns: side,
      bitsAllocated: 8,
      bitsStored: 8,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME1',
      pixels: Uint8Array.from(stored, (v) => 255 - Math.round((v / max) * 255)),
      modality: 'CR',
      studyInstanceUid: newUid(['engine', 'study']),
      seriesInstanceUid: newUid(['engine', 'series']),
      sopInstanceUid: newUid(['engine', 'sop']),
      patientId: 'P8',
    });
    for (const bytes of [dicom, eightBit]) {
      const win = await readWindowed(bytes);
      const scored = await scorer.score({ width: win.width, height: win.height, data: win.data });
      const { report } = await engine.analyze(bytes);
      assert.equal(scored.probability, report.probability);
      assert.equal(scorer.threshold, report.threshold);
      assert.equal(scored.mask.width * scored.mask.height > 0, true);
    }
  } finally {
    await scorer.dispose();
  }
});

test('sessions do not spin-wait between runs unless asked: two idle-spinning pools would share two cores', () => {
  const spinOf = (o: ort.InferenceSession.SessionOptions) => (o.extra as { session: Record<string, string> }).session['intra_op.allow_spinning'];
  const quietDefault = sessionOptions(2, ['cpu'], false, false);
  assert.equal(spinOf(quietDefault), '0');
  assert.equal(quietDefault.intraOpNumThreads, 2);
  assert.equal(quietDefault.graphOptimizationLevel, 'all');
  assert.equal(spinOf(sessionOptions(2, ['cpu'], false, true)), '1');
});

test("the same pixels as a child's, an adult's and an unknown-age study get their population's threshold (the lowest when unknown), recorded in the report", async () => {
  const copy = await mkdtemp(join(tmpdir(), 'cxr-population-'));
  try {
    await cp(root, copy, { recursive: true });
    const pops = {
      adult: { value: 0.2, validationSensitivity: 0.97, validationSpecificity: 0.4, n: 55, positives: 30, datasets: ['nih'] },
      pediatric: { value: 0.7, validationSensitivity: 0.95, validationSpecificity: 0.64, n: 476, positives: 342, datasets: ['kermany'] },
    };
    const derived = await deriveVersion(join(copy, 'classifier', 'random-small'), {
      reason: 'calibrate --population',
      change: async (_dir, m) => ({ ...m, threshold: { ...m.threshold!, populations: pops } }),
    });
    assert.equal(derived.manifest.version, 'random-small-r1');
    const e = await loadEngine({ modelsDir: copy, classifierDir: derived.dir, tta: 1, threads: 1 });
    try {
      const child = (await e.analyze(chestDicom({ size: 512, seed: 3, patientAge: '007Y' }))).report;
      const adult = (await e.analyze(chestDicom({ size: 512, seed: 3, patientBirthDate: '19600301', studyDate: '20261201' }))).report;
      const unknown = (await e.analyze(chestDicom({ size: 512, seed: 3 }))).report;
      assert.equal(child.probability, adult.probability);
      assert.equal(child.threshold, 0.7);
      assert.deepEqual(child.population, {
        name: 'pediatric',
        ageYears: 7,
        ageSource: 'PatientAge',
        thresholdOf: 'pediatric',
        reason: 'age 7 y from PatientAge: pediatric threshold',
      });
      assert.equal(child.validation.specificity, 0.64);
      assert.equal(child.decision, child.probability >= 0.7 ? 'positive' : 'negative');
      assert.equal(adult.threshold, 0.2);
      assert.equal(adult.population!.name, 'adult');
      assert.equal(adult.population!.ageYears, 66);
      assert.equal(adult.decision, adult.probability >= 0.2 ? 'positive' : 'negative');
      assert.equal(unknown.threshold, 0.2);
      assert.equal(unknown.population!.name, null);
      assert.equal(unknown.population!.thresholdOf, 'adult');
    } finally {
      await e.close();
    }
    // the version without populations keeps its one threshold whatever the age
    const plain = (await engine.analyze(chestDicom({ size: 512, seed: 3, patientAge: '007Y' }))).report;
    assert.equal(plain.threshold, 0.4);
    assert.equal(plain.population!.thresholdOf, 'version');
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
});

test("a study of unknown age is decided at the population the version's estimator is sure of, recorded with the estimate; unsure, recall first; a known age never asks it; a wrong width does not load", async () => {
  const copy = await mkdtemp(join(tmpdir(), 'cxr-estimate-'));
  try {
    await cp(root, copy, { recursive: true });
    const width = (await engine.scoreImage(toGrayForTest(), { tta: 1, features: true })).features![0].length;
    const pops = {
      adult: { value: 0.2, validationSensitivity: 0.97, validationSpecificity: 0.4, n: 55, positives: 30, datasets: ['nih'] },
      pediatric: { value: 0.7, validationSensitivity: 0.95, validationSpecificity: 0.64, n: 476, positives: 342, datasets: ['kermany'] },
    };
    const withEstimator = (version: string, bias: number, minConfidence: number, inputs = width) =>
      deriveVersion(join(copy, 'classifier', 'random-small'), {
        version,
        reason: 'fit-population',
        change: async (_dir, m) => ({
          ...m,
          threshold: { ...m.threshold!, populations: pops },
          populationEstimator: {
            above: 'pediatric' as const,
            below: 'adult' as const,
            inputs,
            // no weight: the bias alone says how sure it is
            weights: float32ToBase64(new Float32Array(inputs)),
            bias,
            minConfidence,
            featurePrecision: 'float',
            fittedOn: {
              subset: 'train' as const,
              n: 2,
              views: 1,
              l2: 0.01,
              sets: { kermany: 'pediatric' as const, nih: 'adult' as const },
              at: '2026-12-04T00:00:00.000Z',
            },
            validation: { n: 0, accuracy: 0, decided: 0, decidedWrong: 0, perSet: {} },
          },
        }),
      });
    const reportOf = async (dir: string, dicom: Uint8Array) => {
      const e = await loadEngine({ modelsDir: copy, classifierDir: dir, tta: 1, threads: 1 });
      try {
        assert.equal(e.threshold.estimatesPopulation, true);
        return (await e.analyze(dicom)).report;
      } finally {
        await e.close();
      }
    };
    const child = await withEstimator('sure-child', 10, 0.99);
    const unknown = await reportOf(child.dir, chestDicom({ size: 512, seed: 3 }));
    assert.equal(unknown.threshold, 0.7);
    assert.deepEqual([unknown.population!.name, unknown.population!.thresholdOf], ['pediatric', 'pediatric']);
    assert.deepEqual(unknown.population!.estimate, { population: 'pediatric', probability: 1 / (1 + Math.exp(-10)), confident: true });
    assert.match(unknown.population!.reason, /estimated pediatric from the film/);
    // evaluate's scorer on a folder named for no population: each film at its estimated population
    const scorerOf = (datasets: string[]) => onnxScorer({ modelsDir: copy, classifierDir: child.dir, tta: 1, threads: 1, datasets });
    const elsewhere = await scorerOf(['elsewhere']);
    try {
      assert.equal((await elsewhere.score(toGrayForTest())).threshold, 0.7);
      assert.deepEqual([elsewhere.threshold, elsewhere.population!.name, elsewhere.unusedPopulations], [0.7, 'pediatric', undefined]);
      assert.match(elsewhere.population!.why, /^estimated from each film: 1 pediatric; each decided at its own population's threshold$/);
    } finally {
      await elsewhere.dispose();
    }
    // a folder named for a population's validation set is decided at it, no estimate asked
    const named = await scorerOf(['nih']);
    try {
      assert.equal((await named.score(toGrayForTest())).threshold, undefined);
      assert.deepEqual([named.threshold, named.population!.name], [0.2, 'adult']);
    } finally {
      await named.dispose();
    }
    const aged = await reportOf(child.dir, chestDicom({ size: 512, seed: 3, patientAge: '045Y' }));
    assert.deepEqual([aged.threshold, aged.population!.name, aged.population!.estimate], [0.2, 'adult', undefined]);
    const unsureVersion = await withEstimator('unsure', 10, 1);
    const unsure = await reportOf(unsureVersion.dir, chestDicom({ size: 512, seed: 3 }));
    assert.deepEqual(
      [unsure.threshold, unsure.population!.name, unsure.population!.thresholdOf, unsure.population!.estimate!.confident],
      [0.2, null, 'adult', false],
    );
    // and evaluate decides such a film as the engine does: recall first
    const unsureScorer = await onnxScorer({ modelsDir: copy, classifierDir: unsureVersion.dir, tta: 1, threads: 1, datasets: ['elsewhere'] });
    try {
      assert.equal((await unsureScorer.score(toGrayForTest())).threshold, 0.2);
      assert.deepEqual([unsureScorer.threshold, unsureScorer.population!.name, unsureScorer.unusedPopulations], [0.2, 'adult', undefined]);
      assert.match(unsureScorer.population!.why, /^estimated from each film: none sure, 1 unsure \(decided at the lowest, adult, recall first\)/);
    } finally {
      await unsureScorer.dispose();
    }
    const wrong = await withEstimator('wrong-width', 10, 0.99, width + 1);
    await assert.rejects(
      loadEngine({ modelsDir: copy, classifierDir: wrong.dir, tta: 1, threads: 1 }),
      (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /populationEstimator reads \d+ features, the graph gives \d+/.test(e.message),
    );
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
});

test("a population with its own head is scored by it, through its own calibration, in analyze and in evaluate's scorer; other populations keep the graph's; a head of the wrong width does not load", async () => {
  const copy = await mkdtemp(join(tmpdir(), 'cxr-pophead-'));
  try {
    await cp(root, copy, { recursive: true });
    const width = (await engine.scoreImage(toGrayForTest(), { tta: 1, features: true })).features![0].length;
    const calibration = {
      method: 'platt' as const,
      a: 1.5,
      b: -0.2,
      fittedOn: { views: 4, subset: 'validation', n: 10, split: 'split.csv', at: '2026-12-04T00:00:00.000Z' },
      eceBefore: 0.1,
      eceAfter: 0.05,
    };
    const headInfo = (weights: Float32Array, bias: number) => ({
      inputs: weights.length,
      weights: float32ToBase64(weights),
      bias,
      featurePrecision: 'float',
      blend: { own: 0.25, joint: 0.75 },
      fittedOn: {
        subset: 'train' as const,
        n: 4,
        views: 1,
        l2: { own: 0.003, joint: 0.003 },
        jointSets: { nih: 1, kermany: 3 },
        sets: ['nih'],
        at: '2026-12-04T00:00:00.000Z',
      },
      chosenOn: { folds: 2, deals: 1, seed: 0, n: 4, positives: 2, tried: [{ own: 0.25, auc: 0.9, specificity: 0.5 }] },
    });
    const withHead = (version: string, weights: Float32Array, bias: number) =>
      deriveVersion(join(copy, 'classifier', 'random-small'), {
        version,
        reason: 'fit-population-head',
        change: async (_dir, m) => ({
          ...m,
          threshold: {
            ...m.threshold!,
            populations: {
              adult: {
                value: 0.3,
                validationSensitivity: 0.95,
                validationSpecificity: 0.5,
                n: 4,
                positives: 2,
                datasets: ['nih'],
                calibration,
                head: headInfo(weights, bias),
              },
              pediatric: { value: 0.7, validationSensitivity: 0.95, validationSpecificity: 0.64, n: 476, positives: 342, datasets: ['kermany'] },
            },
          },
        }),
      });
    // no weights: the head's probability is sigmoid(bias) whatever the film, so analyze's figure is known exactly
    const flat = await withHead('flat-head', new Float32Array(width), 0.3);
    const e = await loadEngine({ modelsDir: copy, classifierDir: flat.dir, tta: 2, threads: 1 });
    try {
      const adult = (await e.analyze(chestDicom({ size: 512, seed: 3, patientAge: '045Y' }))).report;
      const child = (await e.analyze(chestDicom({ size: 512, seed: 3, patientAge: '007Y' }))).report;
      assert.equal(adult.probability, applyCalibration(calibration, 1 / (1 + Math.exp(-0.3))));
      assert.deepEqual([adult.threshold, adult.population!.scoredBy], [0.3, 'adult']);
      assert.match(adult.population!.reason, /scored by the adult population's own head$/);
      assert.equal(adult.decision, adult.probability >= 0.3 ? 'positive' : 'negative');
      // the child is scored by the graph: the TTA views' mean, as without a head
      assert.equal(child.population!.scoredBy, undefined);
      assert.equal(child.probability, child.tta.probabilities.reduce((a, b) => a + b, 0) / child.tta.probabilities.length);
    } finally {
      await e.close();
    }
    // with weights: evaluate's scorer on the adult set gives the head's mean over the views of each view's sigmoid
    const weights = Float32Array.from({ length: width }, (_, i) => ((i % 7) - 3) / 50);
    const weighted = await withHead('weighted-head', weights, -0.1);
    const scorer = await onnxScorer({ modelsDir: copy, classifierDir: weighted.dir, tta: 2, threads: 1, datasets: ['nih'] });
    const views = (await engine.scoreImage(toGrayForTest(), { tta: 2, features: true })).features!;
    try {
      const s = await scorer.score(toGrayForTest());
      const expected = populationHeadProbability({ weights, bias: -0.1 }, views);
      assert.ok(Math.abs(s.rawProbability! - expected) < 1e-6, `${s.rawProbability} vs ${expected}`);
      assert.ok(Math.abs(s.probability - applyCalibration(calibration, expected)) < 1e-6);
      assert.equal(scorer.threshold, 0.3);
    } finally {
      await scorer.dispose();
    }
    const wrong = await withHead('wrong-head', new Float32Array(width + 1), 0);
    await assert.rejects(
      loadEngine({ modelsDir: copy, classifierDir: wrong.dir, tta: 1, threads: 1 }),
      (err: unknown) => err instanceof CxrError && err.code === 'E_MODEL_INVALID' && /its adult head reads \d+ features, the graph gives \d+/.test(err.message),
    );
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
});

/** a small gray film for scoreImage: bright body, two dark fields */
function toGrayForTest(): GrayImage {
  const size = 128;
  const img = grayImage(size, size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const dl = ((x - 40) / 20) ** 2 + ((y - 60) / 35) ** 2;
      const dr = ((x - 88) / 20) ** 2 + ((y - 60) / 35) ** 2;
      img.data[y * size + x] = dl < 1 || dr < 1 ? 0.2 : 0.8;
    }
  return img;
}
