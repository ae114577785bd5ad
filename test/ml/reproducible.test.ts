/**
 * Reproducible training: every random draw (initial weights, order, augmentation, dropout
 * masks, worker shares) follows from the seed, so two runs with the same seed and --workers
 * give bit-identical weights, and a run interrupted after an epoch and resumed ends exactly
 * where an uninterrupted one does. Tiny classifier (16 px, two dense blocks of one layer,
 * dropout 0.5) so it stays cheap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { CxrError } from '../../src/errors.js';
import { ArraySource, type Sample } from '../../src/ml/train/array-source.js';
import { defaultConfig, type TrainConfig } from '../../src/ml/train/config.js';
import { train } from '../../src/ml/train/loop.js';
import { mulberry32 } from '../../src/ml/train/rng.js';
import { readScalars } from '../../src/ml/train/tfevents.js';
import { setupBackend } from '../support/ml.js';

await setupBackend();

const S = 16;
const tmp = mkdtempSync(join(tmpdir(), 'cxr-repro-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function samples(n: number, prefix: string, seed: number): Sample[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const image = new Float32Array(S * S);
    for (let k = 0; k < image.length; k++) image[k] = rand() * 0.5 + (i % 2 === 1 && k % 7 === 0 ? 0.4 : 0);
    return { id: `${prefix}${i}`, image, target: i % 2 };
  });
}

// noise augmentation drawn from the source's seeded stream
const augment = (s: Sample, rand: () => number): Sample => ({ ...s, image: s.image.map((v) => v + (rand() - 0.5) * 0.05) });

function data() {
  return {
    train: ArraySource.of(samples(16, 't', 21), { shuffle: true, seed: 5, augment }),
    validation: ArraySource.of(samples(8, 'v', 22)),
  };
}

function config(epochs: number): TrainConfig {
  return {
    ...defaultConfig('classifier'),
    inputSize: S,
    epochs,
    batchSize: 4,
    accumulate: 1,
    lr: 1e-2,
    patience: 0,
    seed: 3,
    architecture: { blocks: [1, 1], growth: 4, stemFilters: 4, dropout: 0.5 },
  };
}

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function assertSameWeights(a: Float32Array[], b: Float32Array[], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((w, i) => {
    const differing = w.findIndex((v, k) => !Object.is(v, b[i][k]));
    assert.equal(differing, -1, `${what}: weight ${i} differs at ${differing} (${w[differing]} vs ${b[i][differing]})`);
  });
}

function losses(runDir: string): number[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { trainLoss: number }).trainLoss);
}

async function run(id: string, epochs: number, workers = 0): Promise<Float32Array[]> {
  const r = await train({ config: config(epochs), data: data(), runDir: join(tmp, id), workers });
  const w = weightsOf(r.model);
  r.model.dispose();
  return w;
}

test('two classifier runs with the same seed (dropout 0.5, shuffled, augmented) give bit-identical weights and losses', async () => {
  const a = await run('a', 3);
  const b = await run('b', 3);
  assertSameWeights(a, b, 'run b vs run a');
  assert.deepEqual(losses(join(tmp, 'b')), losses(join(tmp, 'a')));
  // the run is tracked for TensorBoard too: a loss per optimizer step, the epoch figures per epoch
  const events = readdirSync(join(tmp, 'a')).filter((f) => f.startsWith('events.out.tfevents.'));
  assert.equal(events.length, 1);
  const { scalars } = readScalars(new Uint8Array(readFileSync(join(tmp, 'a', events[0]))));
  assert.equal(scalars.filter((s) => s.tag === 'train/loss').length, 3 * 4);
  assert.deepEqual(
    scalars.filter((s) => s.tag === 'epoch/train_loss').map((s) => s.value),
    losses(join(tmp, 'a')).map(Math.fround),
  );
  assert.deepEqual(
    scalars.filter((s) => s.tag === 'epoch/val_auc').map((s) => s.step),
    [4, 8, 12],
  );
  // and the seed matters: another seed is another run
  const other = await train({ config: { ...config(1), seed: 4 }, data: data(), runDir: join(tmp, 'other') });
  assert.notDeepEqual(losses(join(tmp, 'other'))[0], losses(join(tmp, 'a'))[0]);
  other.model.dispose();
});

test('a classifier run interrupted in its second epoch and resumed ends with the weights of the uninterrupted run', async () => {
  const uninterrupted = await run('whole', 3);
  const runDir = join(tmp, 'interrupted');
  const controller = new AbortController();
  // interrupt as soon as epoch 1 is checkpointed: epoch 2 starts and stops at its first batch
  const log = {
    write: (s: string) => {
      if (s.startsWith('epoch 1:')) controller.abort();
      return true;
    },
  };
  await assert.rejects(
    train({ config: config(3), data: data(), runDir, log, signal: controller.signal }),
    (e: unknown) => e instanceof CxrError && e.code === 'E_INTERRUPTED',
  );
  assert.equal(losses(runDir).length, 1);
  const resumed = await train({ config: config(3), data: data(), runDir, resume: true });
  assertSameWeights(weightsOf(resumed.model), uninterrupted, 'resumed vs uninterrupted');
  resumed.model.dispose();
  assert.deepEqual(losses(runDir), losses(join(tmp, 'whole')));
});

test('with a gradient worker thread, two runs with the same seed give bit-identical weights', async () => {
  const a = await run('wa', 2, 1);
  const b = await run('wb', 2, 1);
  assertSameWeights(a, b, 'worker run b vs a');
});
