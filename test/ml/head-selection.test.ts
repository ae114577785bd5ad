import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHeadSelection, ranksAbove, selectionScore } from '../../src/ml/head-selection.js';
import { isCxrError } from '../../src/errors.js';

// set a: positives 0.9 0.8 0.4, negatives 0.7 0.3 0.2 0.1 -> at recall 2/3 the threshold is 0.8
// (4 of 4 negatives below), AUC 11/12; set b: positives 0.6 0.5, negatives 0.55 0.1 -> at
// recall 1/2 the threshold is 0.6 (2 of 2 below), AUC 3/4
const sets = {
  a: { probabilities: [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1], labels: [1, 1, 1, 0, 0, 0, 0] },
  b: { probabilities: [0.6, 0.5, 0.55, 0.1], labels: [1, 1, 0, 0] },
};

test('specificity selection scores the mean over sets of the specificity at each set’s own threshold for the target recall', () => {
  const s = selectionScore(sets, 'specificity', 0.5);
  assert.deepEqual(s.perSet, {
    a: { auc: 11 / 12, specificity: 1, threshold: 0.8 },
    b: { auc: 0.75, specificity: 1, threshold: 0.6 },
  });
  assert.equal(s.score, 1);
  assert.equal(s.meanAuc, (11 / 12 + 0.75) / 2);
  // at recall 1 set a needs 0.4 (3 of 4 negatives below) and set b 0.5 (1 of 2 below)
  const strict = selectionScore(sets, 'specificity', 1);
  assert.deepEqual([strict.perSet.a.specificity, strict.perSet.b.specificity], [0.75, 0.5]);
  assert.equal(strict.score, 0.625);
});

test('auc selection scores the mean per-set AUC', () => {
  const s = selectionScore(sets, 'auc', 0.95);
  assert.equal(s.score, (11 / 12 + 0.75) / 2);
  assert.equal(s.score, s.meanAuc);
});

test('a set without a positive adds to neither mean of what it cannot measure', () => {
  const s = selectionScore({ ...sets, c: { probabilities: [0.2, 0.3], labels: [0, 0] } }, 'specificity', 1);
  assert.deepEqual(s.perSet.c, { auc: null, specificity: null, threshold: null });
  assert.equal(s.score, 0.625);
});

test('a higher score ranks above; an equal score is decided by the mean AUC', () => {
  const base = selectionScore(sets, 'specificity', 1);
  assert.ok(ranksAbove({ ...base, score: base.score + 0.01 }, base));
  assert.ok(!ranksAbove(base, { ...base, score: base.score + 0.01 }));
  assert.ok(ranksAbove({ ...base, meanAuc: base.meanAuc + 0.01 }, base));
  assert.ok(!ranksAbove(base, base));
});

test('an unknown selection is E_BAD_ARGUMENT', () => {
  assert.equal(parseHeadSelection('auc'), 'auc');
  assert.throws(
    () => parseHeadSelection('accuracy'),
    (e) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT',
  );
});
