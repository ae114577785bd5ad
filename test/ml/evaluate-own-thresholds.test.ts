import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateItems, type ImageScorer } from '../../src/ml/evaluate.js';
import { grayImage } from '../../src/imaging/types.js';

/** A scorer that answers each image with a fixed probability and, where given, its own threshold. */
function fixed(answers: { p: number; t?: number }[], threshold: number): ImageScorer {
  let k = 0;
  return {
    description: 'fixed',
    models: { segmenter: { name: 's', version: '1' }, classifier: { name: 'c', version: '1' } },
    threshold,
    targetRecall: 0.95,
    async score() {
      const a = answers[k++];
      return { probability: a.p, mask: { width: 1, height: 1, data: new Uint8Array(1) }, ...(a.t !== undefined ? { threshold: a.t } : {}) };
    },
    dispose() {},
  };
}

const items = (labels: number[]) => labels.map((label, i) => ({ id: `i${i}`, label, image: async () => grayImage(1, 1) }));

test('images a scorer decides at their own thresholds are counted by those thresholds, and their probabilities are reported as scored', async () => {
  // at 0.5 for all, 0.3 (positive image) and 0.6 (negative image) would be FN and FP; at their own
  // thresholds 0.2 and 0.7 they are TP and TN
  const answers = [{ p: 0.3, t: 0.2 }, { p: 0.6, t: 0.7 }, { p: 0.9 }, { p: 0.1 }];
  const r = await evaluateItems(items([1, 0, 1, 0]), fixed(answers, 0.5));
  assert.deepEqual(r.confusion, { tp: 2, fp: 0, tn: 2, fn: 0 });
  assert.equal(r.threshold, 0.5);
  assert.deepEqual(
    r.images.map((i) => i.probability),
    [0.3, 0.6, 0.9, 0.1],
  );
  // each image row keeps the threshold it was decided at, where it had one of its own
  assert.deepEqual(
    r.images.map((i) => i.threshold),
    [0.2, 0.7, undefined, undefined],
  );
  // without own thresholds the same probabilities give one FN and one FP
  const plain = await evaluateItems(items([1, 0, 1, 0]), fixed([{ p: 0.3 }, { p: 0.6 }, { p: 0.9 }, { p: 0.1 }], 0.5));
  assert.deepEqual(plain.confusion, { tp: 1, fp: 1, tn: 1, fn: 1 });
});
