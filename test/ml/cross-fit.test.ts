import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outOfFold, patientFolds } from '../../src/ml/cross-fit.js';
import { CxrError } from '../../src/errors.js';

const rows = [
  ...['a1', 'a1', 'a2', 'a3', 'a4', 'a5', 'a5'].map((patient) => ({ patient, group: 'adult' })),
  ...Array.from({ length: 20 }, (_, i) => ({ patient: `c${i}`, group: 'child' })),
];

test("patientFolds keeps a patient's films in one fold and deals each set's patients evenly over the folds", () => {
  const folds = patientFolds(rows, 3, 7);
  assert.equal(folds.length, rows.length);
  assert.ok(folds.every((f) => f >= 0 && f < 3));
  assert.equal(folds[0], folds[1], 'patient a1');
  assert.equal(folds[5], folds[6], 'patient a5');
  for (const group of ['adult', 'child']) {
    const perFold = [0, 1, 2].map((k) => new Set(rows.filter((r, i) => r.group === group && folds[i] === k).map((r) => r.patient)).size);
    assert.ok(Math.max(...perFold) - Math.min(...perFold) <= 1, `${group}: ${perFold}`);
  }
  // 5 adult + 20 child patients over 3 folds: 25 dealt in one count, so the folds hold 9, 8, 8
  const patientsPerFold = [0, 1, 2].map((k) => new Set(rows.filter((_, i) => folds[i] === k).map((r) => `${r.group}${r.patient}`)).size);
  assert.deepEqual([...patientsPerFold].sort(), [8, 8, 9]);
});

test('patientFolds is a function of the seed: the same seed deals the same folds, another seed others', () => {
  assert.deepEqual(patientFolds(rows, 3, 7), patientFolds(rows, 3, 7));
  assert.notDeepEqual(patientFolds(rows, 3, 7), patientFolds(rows, 3, 8));
});

test('patientFolds refuses fewer than two folds and a set with fewer patients than folds', () => {
  assert.throws(
    () => patientFolds(rows, 1, 0),
    (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT' && /at least 2 folds/.test(e.message),
  );
  assert.throws(
    () => patientFolds(rows, 6, 0),
    (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT' && /adult has 5 in train/.test(e.message),
  );
});

test('outOfFold scores every row once with a model fitted on the other folds only', async () => {
  const values = [1, 2, 3, 4, 5, 6];
  const folds = [0, 1, 2, 0, 1, 2];
  const seen: number[][] = [];
  const progress: string[] = [];
  // the "model" is the mean of the values it was fitted on
  const scores = await outOfFold(
    values,
    folds,
    async (rs) => {
      seen.push(rs);
      return rs.reduce((a, b) => a + b, 0) / rs.length;
    },
    (mean, v) => mean * 100 + v,
    (done, total) => progress.push(`${done}/${total}`),
  );
  assert.deepEqual(progress, ['1/3', '2/3', '3/3']);
  assert.deepEqual(seen, [
    [2, 3, 5, 6],
    [1, 3, 4, 6],
    [1, 2, 4, 5],
  ]);
  assert.deepEqual(scores, [401, 352, 303, 404, 355, 306]);
  await assert.rejects(
    outOfFold(
      values,
      [0, 1],
      async () => 0,
      () => 0,
    ),
    (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
  );
});
