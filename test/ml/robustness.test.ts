import { test } from 'node:test';
import assert from 'node:assert/strict';
import { operatingFigures, shiftFigures, type ScoredFilm } from '../../src/ml/robustness.js';

const film = (id: string, label: number, probability: number, threshold = 0.5): ScoredFilm => ({ id, label, probability, threshold });
const asIs = [film('a', 1, 0.9), film('b', 1, 0.6), film('c', 0, 0.4), film('d', 0, 0.2)];

test('the films as they are: AUC, recall, specificity, accuracy and the share flagged at the threshold', () => {
  assert.deepEqual(operatingFigures(asIs), { n: 4, auc: 1, recall: 1, specificity: 1, accuracy: 1, flaggedShare: 0.5 });
});

test('a shift is counted film by film: one pneumonia newly missed, one normal newly flagged, the mean move and its size', () => {
  // given in another order: films are matched by id
  const shifted = [film('d', 0, 0.1), film('c', 0, 0.55), film('b', 1, 0.45), film('a', 1, 0.95)];
  const f = shiftFigures(asIs, shifted);
  assert.equal(f.n, 4);
  // margins: pneumonia 0.45, -0.05; normal 0.05, -0.4: 3 of 4 pairs in order
  assert.equal(f.auc, 0.75);
  assert.equal(f.recall, 0.5);
  assert.equal(f.specificity, 0.5);
  assert.equal(f.accuracy, 0.5);
  assert.equal(f.flaggedShare, 0.5);
  assert.equal(f.changed, 2);
  assert.equal(f.normalsNewlyFlagged, 1);
  assert.equal(f.pneumoniaNewlyMissed, 1);
  assert.ok(Math.abs(f.meanDelta - -0.0125) < 1e-12, String(f.meanDelta));
  assert.ok(Math.abs(f.meanAbsDelta - 0.1125) < 1e-12, String(f.meanAbsDelta));
});

test('a decision that improves under the shift counts as changed but as neither a new false positive nor a new miss', () => {
  const before = [film('p', 1, 0.4), film('n', 0, 0.7)];
  const after = [film('p', 1, 0.6), film('n', 0, 0.3)];
  const f = shiftFigures(before, after);
  assert.equal(f.changed, 2);
  assert.equal(f.normalsNewlyFlagged, 0);
  assert.equal(f.pneumoniaNewlyMissed, 0);
  assert.equal(f.recall, 1);
  assert.equal(f.specificity, 1);
});

test('each film is decided at its own threshold, and AUC ranks the margins above them', () => {
  // 0.3 is positive at its population's 0.2; 0.6 is negative at its 0.7
  const films = [film('x', 1, 0.3, 0.2), film('y', 0, 0.6, 0.7)];
  assert.deepEqual(operatingFigures(films), { n: 2, auc: 1, recall: 1, specificity: 1, accuracy: 1, flaggedShare: 0.5 });
});

test('films that do not match one for one are refused rather than compared', () => {
  assert.throws(() => shiftFigures(asIs, asIs.slice(1)), RangeError);
  assert.throws(() => shiftFigures(asIs, [...asIs.slice(1), film('z', 0, 0.1)]), /film z/);
  assert.throws(() => shiftFigures([...asIs, asIs[0]], [...asIs, asIs[0]]), /repeat an id/);
});
