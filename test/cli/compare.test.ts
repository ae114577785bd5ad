/** `cxr-triage compare`: two evaluations of the same films, paired by file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-compare-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const cli = (...args: string[]) => runCli(args);

// 30 pneumonias, 30 normal films. The baseline ranks them fairly; the candidate pushes every
// film a little towards its label, so it ranks them better and flags fewer normal films.
const films = Array.from({ length: 60 }, (_, i) => ({ file: `images/f${String(i).padStart(2, '0')}.png`, label: i < 30 ? 'pneumonia' : 'normal' }));
const baseScore = (i: number) => (i < 30 ? 0.45 : 0.35) + ((i * 37) % 29) / 29 / 2;
function csv(score: (i: number) => number, threshold: number, order: 'forward' | 'reverse' = 'forward'): string {
  const rows = films.map((f, i) => `${f.file},${f.label},${score(i)},${score(i) >= threshold ? 'positive' : 'negative'}`);
  if (order === 'reverse') rows.reverse();
  return `file,label,probability,decision\n${rows.join('\n')}\n`;
}
const baseline = join(tmp, 'baseline.csv');
writeFileSync(baseline, csv(baseScore, 0.5));
// an evaluation folder, as evaluate --save leaves one, rows in another order
const candidateDir = join(tmp, 'candidate-eval');
mkdirSync(candidateDir);
writeFileSync(
  join(candidateDir, 'per-image.csv'),
  csv((i) => baseScore(i) + (i < 30 ? 0.1 : -0.1), 0.5, 'reverse'),
);

test('compare prints both AUCs, the paired difference with its interval, recall and specificity with McNemar, and a verdict', async () => {
  const r = await cli('compare', baseline, candidateDir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^films {8}60, paired by file \(30 pneumonia, 30 normal\)$/m);
  assert.match(r.stdout, /^AUC {10}0\.\d{3} {5}0\.\d{3} {6}\+0\.\d{3} \(\+0\.\d{3} to \+0\.\d{3}\) +[<\d.]+ +DeLong, paired$/m);
  // the baseline misses the 4 pneumonias whose offset ((37 i) mod 29) is below 3 (i = 0, 11, 22, 29); the candidate none
  assert.match(r.stdout, /^recall {7}0\.867 {5}1\.000 {6}\+0\.133 +0\.125 +McNemar exact: 26 vs 30 of 30 right, 0 \/ 4 right by one only$/m);
  assert.match(r.stdout, /^specificity {2}0\.333 {5}0\.533 {6}\+0\.200 +0\.031 +McNemar exact: 10 vs 16 of 30 right, 0 \/ 6 right by one only$/m);
  assert.match(r.stdout, /^verdict: the candidate ranks these films better/m);
  assert.match(r.stdout, /^resolution {3}an AUC difference smaller than about 0\.\d{3} either way/m);
});

test('compare --json gives the figures; a model against itself is inconclusive with p 1, and --margin makes it non-inferior', async () => {
  const j = await cli('compare', baseline, baseline, '--json', '--margin', '0.02');
  assert.equal(j.code, 0, j.stderr);
  const c = JSON.parse(j.stdout) as {
    films: number;
    auc: { difference: number; p: number };
    verdict: string;
    margin: number;
    recall: { onlyA: number; onlyB: number };
  };
  assert.equal(c.films, 60);
  assert.equal(c.auc.difference, 0);
  assert.equal(c.auc.p, 1);
  assert.equal(c.verdict, 'non-inferior');
  assert.equal(c.margin, 0.02);
  assert.deepEqual([c.recall.onlyA, c.recall.onlyB], [0, 0]);
  const plain = await cli('compare', baseline, baseline);
  assert.match(plain.stdout, /^verdict: inconclusive: these films cannot tell the two apart by AUC/m);
});

test('compare refuses evaluations of different films, a missing file, a folder without per-image.csv and a bad margin', async () => {
  const fewer = join(tmp, 'fewer.csv');
  writeFileSync(fewer, csv(baseScore, 0.5).split('\n').slice(0, -3).join('\n'));
  const differ = await cli('compare', baseline, fewer);
  assert.equal(differ.code, 2);
  assert.match(differ.stderr, /E_BAD_ARGUMENT: not the same films: 2 \(e\.g\. images\/f58\.png\) only in the baseline, 0 only in the candidate/);
  const missing = await cli('compare', baseline, join(tmp, 'nope.csv'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /E_NOT_FOUND: .*nope\.csv: no such file or evaluation folder/);
  const empty = join(tmp, 'empty-eval');
  mkdirSync(empty);
  assert.match((await cli('compare', empty, baseline)).stderr, /E_NOT_FOUND: .*empty-eval holds no per-image\.csv/);
  const margin = await cli('compare', baseline, baseline, '--margin', 'lots');
  assert.equal(margin.code, 2);
  assert.match(margin.stderr, /E_BAD_ARGUMENT: --margin must be a number, got 'lots'/);
});
