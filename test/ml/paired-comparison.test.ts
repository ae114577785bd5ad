import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCxrError } from '../../src/errors.js';
import { aucVerdict, comparePairedFilms, mcnemarExact, normalCdf, pairedAucDelong, pairedRate, Z_95, type ScoredFilm } from '../../src/ml/paired-comparison.js';

const close = (actual: number, expected: number, tol = 1e-12) => assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);

// three pneumonias then three normal films; B ties one pneumonia with one normal film
const labels = [1, 1, 1, 0, 0, 0];
const A = [0.9, 0.6, 0.4, 0.7, 0.2, 0.1];
const B = [0.8, 0.3, 0.5, 0.5, 0.4, 0.2];

test('DeLong on a hand-worked case: AUCs 7/9 and 13/18 (a tie counts one half), variance of the difference 7/162', () => {
  const r = pairedAucDelong(labels, A, B)!;
  close(r.aucA, 7 / 9);
  close(r.aucB, 13 / 18);
  close(r.difference, -1 / 18);
  close(r.se, Math.sqrt(7 / 162));
  close(r.ci[0], -1 / 18 - Z_95 * Math.sqrt(7 / 162));
  close(r.ci[1], -1 / 18 + Z_95 * Math.sqrt(7 / 162));
  // erfc(|d| / se / sqrt 2) from Python's math.erfc on the same numbers
  close(r.p, 0.7892680261342813, 1e-6);
  assert.equal(r.positives, 3);
  assert.equal(r.negatives, 3);
});

test('DeLong is antisymmetric: swapping the two models negates the difference and keeps the p-value', () => {
  const ab = pairedAucDelong(labels, A, B)!;
  const ba = pairedAucDelong(labels, B, A)!;
  close(ba.difference, -ab.difference);
  close(ba.se, ab.se);
  close(ba.p, ab.p);
});

test('a model compared with itself differs by nothing, with p = 1; one class of fewer than two films gives null', () => {
  const r = pairedAucDelong(labels, A, A)!;
  assert.equal(r.difference, 0);
  assert.equal(r.se, 0);
  assert.equal(r.p, 1);
  assert.deepEqual(r.ci, [0, 0]);
  assert.equal(pairedAucDelong([1, 0, 0], [0.5, 0.2, 0.1], [0.4, 0.3, 0.1]), null);
  assert.throws(() => pairedAucDelong(labels, A, B.slice(1)), RangeError);
});

test('a small gain on every film of 40 is detected as better (p < 0.05): the pairing removes what the films share', () => {
  // 40 films; B is A plus a small push in the right direction for every film
  const y = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 1 : 0));
  const a = y.map((l, i) => (l ? 0.5 : 0.4) + (((i * 37) % 17) / 17) * 0.5);
  const b = a.map((s, i) => s + (y[i] ? 0.08 : -0.08));
  const r = pairedAucDelong(y, a, b)!;
  assert.ok(r.difference > 0);
  assert.ok(r.p < 0.05, `p ${r.p}`);
  assert.equal(aucVerdict(r), 'better');
});

test('the normal CDF is right at the 95% quantile, at 0 and symmetric', () => {
  close(normalCdf(Z_95), 0.975, 2e-7);
  close(normalCdf(0), 0.5, 2e-7);
  close(normalCdf(-1) + normalCdf(1), 1, 1e-12);
  close(normalCdf(1), 0.8413447460685429, 2e-7);
});

test("McNemar's exact test: twice the smaller binomial tail of the disagreements, capped at 1", () => {
  assert.equal(mcnemarExact(0, 0), 1);
  assert.equal(mcnemarExact(1, 1), 1);
  close(mcnemarExact(0, 4), 0.125);
  close(mcnemarExact(4, 0), 0.125);
  close(mcnemarExact(2, 8), 112 / 1024);
  assert.throws(() => mcnemarExact(-1, 2), RangeError);
  // large counts stay finite (summed in logs)
  const p = mcnemarExact(480, 520);
  assert.ok(p > 0.2 && p < 0.25, `p ${p}`);
});

test('pairedRate counts what each rule got right and where they part', () => {
  const r = pairedRate([true, true, false, false, true], [true, false, true, true, true]);
  assert.deepEqual({ ...r, p: undefined }, { n: 5, rightA: 3, rightB: 4, onlyA: 1, onlyB: 2, difference: 0.2, p: undefined });
  close(r.p, 1);
});

test('aucVerdict: better, worse, non-inferior within a margin, or inconclusive', () => {
  assert.equal(aucVerdict({ ci: [0.01, 0.05] }), 'better');
  assert.equal(aucVerdict({ ci: [-0.05, -0.01] }), 'worse');
  assert.equal(aucVerdict({ ci: [-0.03, 0.04] }), 'inconclusive');
  assert.equal(aucVerdict({ ci: [-0.03, 0.04] }, 0.05), 'non-inferior');
  assert.equal(aucVerdict({ ci: [-0.07, 0.04] }, 0.05), 'inconclusive');
});

const films = (scores: number[], decide = 0.5): ScoredFilm[] =>
  scores.map((p, i) => ({ file: `f${i}.png`, label: labels[i], probability: p, decision: p >= decide ? 'positive' : 'negative' }));

test('comparePairedFilms pairs by file name, whatever the row order, and compares decisions on each class', () => {
  const a = films(A);
  const b = films(B).reverse();
  const r = comparePairedFilms(a, b, 0.1);
  assert.equal(r.films, 6);
  close(r.auc!.difference, -1 / 18);
  // A at 0.5: pneumonias 0.9, 0.6 caught, 0.4 missed; normal 0.7 flagged. B: 0.8, 0.5 caught, 0.3 missed; normal 0.5 flagged
  assert.deepEqual([r.recall!.rightA, r.recall!.rightB, r.recall!.onlyA, r.recall!.onlyB], [2, 2, 1, 1]);
  assert.deepEqual([r.specificity!.rightA, r.specificity!.rightB], [2, 2]);
  assert.equal(r.verdict, 'inconclusive');
  assert.equal(r.margin, 0.1);
});

test('comparePairedFilms without a decision column compares the ranking only', () => {
  const strip = (fs: ScoredFilm[]) => fs.map(({ decision: _d, ...f }) => f);
  const r = comparePairedFilms(strip(films(A)), films(B));
  assert.equal(r.recall, null);
  assert.equal(r.specificity, null);
  assert.ok(r.auc);
});

test('comparePairedFilms refuses different films, a label that differs, a repeated film and a bad margin (E_BAD_ARGUMENT)', () => {
  const code = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT' && re.test(e.message));
  code(() => comparePairedFilms(films(A), films(B).slice(1)), /not the same films: 1 \(e\.g\. f0\.png\) only in the baseline, 0 only in the candidate/);
  code(
    () =>
      comparePairedFilms(
        films(A),
        films(B).map((f) => (f.file === 'f2.png' ? { ...f, label: 0 } : f)),
      ),
    /f2\.png is labelled differently/,
  );
  code(() => comparePairedFilms([...films(A), films(A)[0]], films(B)), /baseline lists f0\.png twice/);
  code(() => comparePairedFilms(films(A), films(B), 2), /margin must be between 0 and 1/);
  code(() => comparePairedFilms([], []), /no films/);
});
