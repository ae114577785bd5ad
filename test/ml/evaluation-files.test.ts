import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { picturedFilms, readPerImageCsv, type PerImageRow } from '../../src/ml/evaluation-files.js';

test("readPerImageCsv keeps each row's decision where the file has the column, and none where it has not", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cxr-per-image-'));
  try {
    const withDecision = join(dir, 'a.csv');
    writeFileSync(withDecision, 'file,label,probability,decision\nx.png,pneumonia,0.2,positive\ny.png,normal,0.1,negative\n');
    assert.deepEqual(await readPerImageCsv(withDecision), [
      { file: 'x.png', label: 1, probability: 0.2, decision: 'positive' },
      { file: 'y.png', label: 0, probability: 0.1, decision: 'negative' },
    ]);
    const without = join(dir, 'b.csv');
    writeFileSync(without, 'file,label,probability\nx.png,pneumonia,0.2\n');
    assert.deepEqual(await readPerImageCsv(without), [{ file: 'x.png', label: 1, probability: 0.2 }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("picturedFilms takes the highest normals and the lowest pneumonias, each with the evaluation's own verdict at its threshold", () => {
  const rows: PerImageRow[] = [
    { file: 'n1', label: 0, probability: 0.9, decision: 'positive' },
    { file: 'n2', label: 0, probability: 0.1, decision: 'negative' },
    { file: 'n3', label: 0, probability: 0.5, decision: 'negative' },
    { file: 'p1', label: 1, probability: 0.22, decision: 'positive' },
    { file: 'p2', label: 1, probability: 0.05, decision: 'negative' },
    { file: 'p3', label: 1, probability: 0.95, decision: 'positive' },
  ];
  // a pneumonia below the pooled threshold but caught at its population's is CAUGHT, not an error
  assert.deepEqual(
    picturedFilms(rows, 2).map((r) => [r.file, r.verdict]),
    [
      ['n1', 'FLAGGED'],
      ['n3', 'CLEARED'],
      ['p2', 'MISSED'],
      ['p1', 'CAUGHT'],
    ],
  );
  assert.deepEqual(
    picturedFilms([{ file: 'q', label: 1, probability: 0.3 }]).map((r) => r.verdict),
    [''],
  );
});

test("perImageCsv decides each image at its own threshold where the scorer decided it at its population's", async () => {
  const { perImageCsv } = await import('../../src/ml/evaluation-files.js');
  const csv = perImageCsv(
    [
      { id: 'child.png', label: 0, probability: 0.6, threshold: 0.7 },
      { id: 'adult.png', label: 1, probability: 0.3, threshold: 0.2 },
      { id: 'plain.png', label: 1, probability: 0.45 },
    ],
    0.5,
  );
  assert.deepEqual(csv.trim().split('\n').slice(1), ['child.png,normal,0.6,negative', 'adult.png,pneumonia,0.3,positive', 'plain.png,pneumonia,0.45,negative']);
});
