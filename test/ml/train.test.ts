import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ArraySource, type Sample } from '../../src/ml/train/array-source.js';
import { defaultConfig, type TrainConfig } from '../../src/ml/train/config.js';
import { aucBySource, copyWeights, train } from '../../src/ml/train/loop.js';
import type { EpochRecord } from '../../src/ml/train/types.js';
import { buildModel, validateConfig } from '../../src/ml/train/config.js';
import { finalizeVersion } from '../../src/ml/train/finalize.js';
import { mulberry32 } from '../../src/ml/train/rng.js';
import { capItems, sourceSamplingWeights } from '../../src/ml/train/dataset-source.js';
import type { DatasetItem } from '../../src/data/dataset.js';
import { cosineDecay } from '../../src/ml/train/schedule.js';
import { readManifest, verifyManifest } from '../../src/ml/model-store/index.js';
import { loadModel } from '../../src/ml/model-io.js';
import { CxrError } from '../../src/errors.js';
import { setupBackend } from '../support/ml.js';

await setupBackend();

const S = 16;
const tmp = mkdtempSync(join(tmpdir(), 'cxr-train-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A bright disc on a noisy background; the mask is the disc. Pneumonia = a second bright patch. */
function sample(rand: () => number, positive: boolean): { image: Float32Array; mask: Float32Array } {
  const image = new Float32Array(S * S);
  const mask = new Float32Array(S * S);
  const cx = S / 4 + rand() * (S / 2);
  const cy = S / 4 + rand() * (S / 2);
  const r = S / 8 + rand() * (S / 8);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      mask[y * S + x] = inside ? 1 : 0;
      const patch = positive && Math.abs(x - cx) < 2 && Math.abs(y - cy) < 2 ? 0.3 : 0;
      image[y * S + x] = 0.2 + (inside ? 0.5 : 0) + patch + (rand() - 0.5) * 0.1;
    }
  }
  return { image, mask };
}

function samples(task: 'segmenter' | 'classifier', n: number, prefix: string, seed: number): Sample[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const s = sample(rand, label === 1);
    return { id: `${prefix}${i}`, image: s.image, target: task === 'segmenter' ? s.mask : label };
  });
}

function tinyConfig(task: 'segmenter' | 'classifier', epochs: number): TrainConfig {
  return {
    ...defaultConfig(task),
    inputSize: S,
    epochs,
    batchSize: 4,
    accumulate: 2,
    lr: 1e-2,
    patience: 0,
    architecture: task === 'segmenter' ? { base: 2, depth: 1 } : { blocks: [1, 1], growth: 4, stemFilters: 4 },
  };
}

function readJsonl(path: string): EpochRecord[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord);
}

test('cosine decay starts at the rate, halves mid-way and ends at the floor', () => {
  assert.equal(cosineDecay(0, 100, 1e-3), 1e-3);
  assert.ok(Math.abs(cosineDecay(50, 100, 1e-3) - 5e-4) < 1e-12);
  assert.ok(Math.abs(cosineDecay(100, 100, 1e-3, 0.1) - 1e-4) < 1e-12);
  assert.ok(Math.abs(cosineDecay(500, 100, 1e-3, 0.1) - 1e-4) < 1e-12);
});

test('segmenter training lowers the loss, checkpoints, and resumes from the saved epoch', async () => {
  const runDir = join(tmp, 'runs', 'seg');
  const data = {
    train: ArraySource.of(samples('segmenter', 16, 't', 1), { shuffle: true, seed: 3 }),
    validation: ArraySource.of(samples('segmenter', 4, 'v', 2)),
  };
  const log: string[] = [];
  const sink = { write: (s: string) => (log.push(s), true) };
  const first = await train({ config: tinyConfig('segmenter', 2), data, runDir, log: sink });
  first.model.dispose();
  assert.equal(first.state.epochsDone, 2);
  assert.ok(existsSync(join(runDir, 'checkpoint', 'model.json')));
  assert.ok(existsSync(join(runDir, 'checkpoint', 'optimizer.bin')));
  // 16 images, batch 4, accumulate 2 -> 2 optimizer steps per epoch
  assert.deepEqual(
    readJsonl(join(runDir, 'metrics.jsonl')).map((r) => [r.epoch, r.step]),
    [
      [1, 2],
      [2, 4],
    ],
  );

  const resumed = await train({ config: tinyConfig('segmenter', 4), data, runDir, resume: true, log: sink });
  resumed.model.dispose();
  assert.ok(log.some((l) => l.includes('resuming') && l.includes('after epoch 2')));
  const records = readJsonl(join(runDir, 'metrics.jsonl'));
  assert.deepEqual(
    records.map((r) => [r.epoch, r.step]),
    [
      [1, 2],
      [2, 4],
      [3, 6],
      [4, 8],
    ],
  );
  assert.ok(records[3].trainLoss < records[0].trainLoss, `loss ${records[0].trainLoss} -> ${records[3].trainLoss}`);
  for (const r of records) {
    assert.equal(r.valMetricName, 'dice');
    assert.ok(r.valMetric != null && r.valMetric >= 0 && r.valMetric <= 1);
    assert.ok(r.lr > 0 && r.lr <= 1e-2);
    assert.ok(r.imagesPerSecond > 0);
  }
  // every temporary disposed: the live tensor count does not grow from epoch to epoch
  assert.equal(records[1].tensors, records[0].tensors);
  assert.equal(records[3].tensors, records[2].tensors);
  const saved = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
  assert.equal(saved.config.batchSize, 4);
  assert.equal(saved.config.accumulate, 2);
});

test('a run folder holding a run is not overwritten without --resume', async () => {
  const runDir = join(tmp, 'runs', 'seg');
  const data = { train: ArraySource.of(samples('segmenter', 4, 't', 1)), validation: ArraySource.of(samples('segmenter', 2, 'v', 2)) };
  await assert.rejects(train({ config: tinyConfig('segmenter', 1), data, runDir }), (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT');
});

test('classifier run ends in a version folder with a calibrated threshold and a verified manifest', async () => {
  const runDir = join(tmp, 'runs', 'clf');
  const data = {
    train: ArraySource.of(samples('classifier', 16, 't', 5), { shuffle: true, seed: 4 }),
    validation: ArraySource.of(samples('classifier', 8, 'v', 6)),
    test: ArraySource.of(samples('classifier', 8, 's', 7)),
    trainLabels: Array.from({ length: 16 }, (_, i) => i % 2),
  };
  const config = { ...tinyConfig('classifier', 2), classWeights: 'balanced' as const, targetRecall: 0.75 };
  const result = await train({ config, data, runDir });
  const records = readJsonl(join(runDir, 'metrics.jsonl'));
  assert.equal(records.length, 2);
  assert.equal(records[0].valMetricName, 'auc');
  const { dir, manifest } = await finalizeVersion({
    result,
    data,
    outDir: join(tmp, 'models', 'classifier'),
    version: 'v-test',
    training: { data: { root: 'external', path: 'in-memory' }, dataHash: 'test', dataSize: 32, split: { train: 16, validation: 8, test: 8 } },
    now: new Date('2025-02-03T04:05:06Z'),
  });
  result.model.dispose();
  assert.equal(dir, join(tmp, 'models', 'classifier', 'v-test'));
  assert.equal(manifest.architecture, 'densenet121-se');
  assert.equal(manifest.inputSize, S);
  assert.equal(manifest.createdAt, '2025-02-03T04:05:06.000Z');
  assert.deepEqual(Object.keys(manifest.files).sort(), ['model.json', 'weights.bin']);
  assert.deepEqual(await readManifest(dir), manifest);
  assert.equal((await verifyManifest(dir)).ok, true);
  // the threshold keeps validation recall at or above the target, and is what the metrics used
  const t = manifest.threshold!;
  assert.equal(t.targetRecall, 0.75);
  assert.ok(t.validationSensitivity >= 0.75);
  assert.equal(manifest.metrics.validation.threshold, t.value);
  assert.equal(manifest.metrics.validation.recall, t.validationSensitivity);
  assert.equal(manifest.metrics.test.n, 8);
  for (const k of ['auc', 'accuracy', 'precision', 'recall', 'specificity', 'f1', 'confusion']) assert.ok(k in manifest.metrics.test, k);
  // the shipped weights are float16 and load
  const m = await loadModel(dir);
  const p = tf.tidy(() => (m.predict(tf.zeros([1, S, S, 1])) as tf.Tensor).dataSync()[0]);
  assert.ok(p >= 0 && p <= 1);
  m.dispose();
  await assert.rejects(
    finalizeVersion({ result, data, outDir: join(tmp, 'models', 'classifier'), version: 'v-test', training: manifest.training }),
    (e: unknown) => e instanceof CxrError && e.code === 'E_CONFLICT',
  );
});

test('classifier training with a gradient worker splits every batch, keeps tf.memory flat and learns', async () => {
  const runDir = join(tmp, 'runs', 'clf-workers');
  const data = {
    train: ArraySource.of(samples('classifier', 16, 't', 15), { shuffle: true, seed: 4 }),
    validation: ArraySource.of(samples('classifier', 8, 'v', 16)),
  };
  // shares of 4 (batch-norm statistics over a share of 2 are too noisy to learn steadily), no
  // dropout (the replicas draw their own masks), a moderate rate: the loss must fall every run
  const config = {
    ...tinyConfig('classifier', 4),
    batchSize: 8,
    accumulate: 1,
    lr: 3e-3,
    architecture: { blocks: [1, 1], growth: 4, stemFilters: 4, dropout: 0 },
  };
  const result = await train({ config, data, runDir, workers: 1 });
  result.model.dispose();
  const records = readJsonl(join(runDir, 'metrics.jsonl'));
  assert.equal(records.length, 4);
  assert.equal(records[0].trainImages, 16);
  for (const r of records) assert.ok(Number.isFinite(r.trainLoss) && Number.isFinite(r.valLoss));
  const losses = records.map((r) => r.trainLoss);
  assert.ok(Math.min(losses[2], losses[3]) < losses[0], `train loss ${losses.map((l) => l.toFixed(4)).join(' -> ')}`);
  assert.equal(records[3].tensors, records[1].tensors);
});

test('a run given initial weights starts from them, and a different architecture is refused', async () => {
  const config = { ...tinyConfig('classifier', 1), lr: 1e-12, seed: 9 };
  const start = buildModel({ ...config, seed: 77 });
  const startWeights = start.getWeights().map((w) => w.dataSync().slice());
  const data = { train: ArraySource.of(samples('classifier', 8, 't', 21)), validation: ArraySource.of(samples('classifier', 4, 'v', 22)) };
  const result = await train({ config, data, runDir: join(tmp, 'runs', 'clf-init'), initFrom: start });
  // with a vanishing learning rate the trained kernels are the initial ones, not seed 9's
  const fresh = buildModel(config);
  const kernel = result.model.weights.findIndex((w) => w.originalName.endsWith('/kernel'));
  const trained = result.model.weights[kernel].read().dataSync();
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  assert.ok(maxDiff(trained, startWeights[kernel]) < 1e-6);
  assert.ok(maxDiff(trained, fresh.weights[kernel].read().dataSync()) > 1e-3);
  const wider = buildModel({ ...config, architecture: { blocks: [1, 1], growth: 8, stemFilters: 4 } });
  assert.throws(
    () => copyWeights(start, wider),
    (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
  );
  for (const m of [result.model, fresh, wider, start]) m.dispose();
});

test('--max-images keeps whole patients and never exceeds the cap', () => {
  // patients A:3 images, B:1, C:2, D:1
  const items = ['A', 'A', 'A', 'B', 'C', 'C', 'D'].map((p, i) => ({ file: `f${i}`, patientId: p }) as DatasetItem);
  for (const max of [1, 2, 3, 4, 5, 6]) {
    const kept = capItems(items, max, 1);
    assert.ok(kept.length <= max && kept.length > 0, `cap ${max}: kept ${kept.length}`);
    for (const p of new Set(kept.map((i) => i.patientId))) {
      assert.equal(kept.filter((i) => i.patientId === p).length, items.filter((i) => i.patientId === p).length);
    }
  }
  assert.equal(capItems(items, 10, 1).length, 7);
  assert.deepEqual(capItems(items, 4, 2), capItems(items, 4, 2));
});

test('source sampling weights give each source its share of an epoch however many images it has', () => {
  const item = (source: string | undefined): DatasetItem => ({ fields: source === undefined ? {} : { source } }) as unknown as DatasetItem;
  const items = [item('nih'), item('kermany'), item('kermany'), item('kermany'), item(undefined)];
  const w = sourceSamplingWeights(items, { nih: 1, kermany: 3 });
  assert.deepEqual(w, [1, 1, 1, 1, 1]);
  const share = (s: number[], k: number[]): number => k.reduce((a, i) => a + s[i], 0) / s.reduce((a, b) => a + b, 0);
  assert.equal(share(sourceSamplingWeights(items), [0]), 1 / 3);
  assert.equal(share(sourceSamplingWeights(items), [1, 2, 3]), 1 / 3);
});

test('with several validation sources the epoch metric is the mean of per-source AUCs', () => {
  // source a ranks perfectly (AUC 1), source b exactly backwards (AUC 0); pooled AUC would differ
  const scores = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.95]);
  const labels = Float32Array.from([1, 0, 1, 0, 1]);
  const by = aucBySource(scores, labels, ['a', 'a', 'b', 'b', 'a']);
  assert.deepEqual(by, { a: 1, b: 0 });
  assert.equal(aucBySource(scores, labels, ['a', 'a', 'a', 'a', 'a']), null);
  assert.equal(aucBySource(scores, labels, undefined), null);
});

test('freezeBlocks keeps the stem and the first blocks at their initial weights while later blocks and the head learn', async () => {
  const config: TrainConfig = {
    ...tinyConfig('classifier', 1),
    lr: 1e-2,
    freezeBlocks: 1,
    architecture: { blocks: [1, 1], growth: 4, stemFilters: 4, dropout: 0 },
  };
  const start = buildModel({ ...config, seed: 5 });
  const before = new Map(start.weights.map((w) => [w.originalName, w.read().dataSync().slice()]));
  const data = { train: ArraySource.of(samples('classifier', 8, 't', 31)), validation: ArraySource.of(samples('classifier', 4, 'v', 32)) };
  const result = await train({ config, data, runDir: join(tmp, 'frozen'), initFrom: start });
  const changed = (name: string): boolean => {
    // by original name: the reloaded best model's variables carry a uniqueness suffix
    const w = result.model.weights.find((x) => x.originalName === name)!;
    const now = w.read().dataSync();
    const was = before.get(name)!;
    return now.some((v, i) => v !== was[i]);
  };
  const kernels = start.weights.filter((w) => w.originalName.endsWith('/kernel')).map((w) => w.originalName);
  const frozen = kernels.filter((n) => /^(stem|block1_|transition1_)/.test(n));
  const trained = kernels.filter((n) => /^(block2_|probability)/.test(n));
  assert.ok(frozen.length > 0 && trained.length > 0);
  for (const n of frozen) assert.ok(!changed(n), `${n} moved`);
  for (const n of trained) assert.ok(changed(n), `${n} did not move`);
  result.model.dispose();
  start.dispose();
  assert.throws(() => validateConfig({ ...config, task: 'segmenter', freezeBlocks: 1 }), /freezeBlocks is for the classifier/);
});
