/** A drift reference whose probabilities change keeps its lung areas only when they counted the same number of films. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driftReference, withNewProbabilities } from '../../src/ml/drift-reference.js';

test('new probabilities replace the histogram; the lung areas stay when they counted as many films, and are dropped (said so) otherwise', () => {
  const previous = driftReference('validation', [0.05, 0.95], [0.1, 0.3]);
  const same = withNewProbabilities(previous, 'validation', [0.15, 0.25]);
  assert.deepEqual(same.reference, {
    subset: 'validation',
    n: 2,
    probabilityHistogram: [0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    lungAreaHistogram: previous.lungAreaHistogram,
  });
  assert.equal(same.areasDropped, false);
  const more = withNewProbabilities(previous, 'validation', [0.15, 0.25, 0.35]);
  assert.deepEqual([more.reference.n, more.reference.lungAreaHistogram, more.areasDropped], [3, undefined, true]);
  const none = withNewProbabilities(undefined, 'validation', [0.5]);
  assert.deepEqual([none.reference.probabilityHistogram[5], none.reference.lungAreaHistogram, none.areasDropped], [1, undefined, false]);
});
