import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uncertaintyBound } from '../../src/ml/uncertainty-bound.js';
import { isCxrError } from '../../src/errors.js';

test('the bound is the nearest-rank quantile: the 99th of 200 spreads is the 198th smallest', () => {
  const spreads = Array.from({ length: 200 }, (_, i) => (200 - i) / 1000); // 0.2 down to 0.001, unsorted
  assert.deepEqual(uncertaintyBound(spreads, 0.99), { bound: 0.198, quantile: 0.99, n: 200, largest: 0.2 });
});

test('with fewer than a hundred spreads the 99th percentile is the largest', () => {
  assert.deepEqual(uncertaintyBound([0.05, 0.3, 0.1], 0.99), { bound: 0.3, quantile: 0.99, n: 3, largest: 0.3 });
});

test('an exact rank is not rounded up past it: the median of four is the second', () => {
  assert.equal(uncertaintyBound([0.4, 0.1, 0.3, 0.2], 0.5)?.bound, 0.2);
});

test('no spreads, or a spread that is not a finite non-negative number, gives no bound', () => {
  assert.equal(uncertaintyBound([]), null);
  assert.equal(uncertaintyBound([0.1, Number.NaN]), null);
  assert.equal(uncertaintyBound([0.1, -0.2]), null);
});

test('a quantile outside (0, 1] is refused with E_BAD_ARGUMENT', () => {
  assert.throws(
    () => uncertaintyBound([0.1], 0),
    (e) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT',
  );
  assert.throws(
    () => uncertaintyBound([0.1], 1.5),
    (e) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT',
  );
});
