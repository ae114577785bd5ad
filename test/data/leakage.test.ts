import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filesTrainedOn, splitOverlap } from '../../src/data/leakage.js';
import type { DatasetSplit, SplitName } from '../../src/data/split.js';

function split(rows: [file: string, patient: string, subset: SplitName][]): DatasetSplit {
  const assignments = rows.map(([file, patientId, s]) => ({ file, patientId, label: 'normal' as const, split: s }));
  const files = (s: SplitName) => assignments.filter((a) => a.split === s).map((a) => a.file);
  const zero = { images: 0, patients: 0, normal: 0, pneumonia: 0 };
  return {
    seed: 1,
    fractions: [0.7, 0.1, 0.2],
    assignments,
    train: files('train'),
    validation: files('validation'),
    test: files('test'),
    counts: { train: zero, validation: zero, test: zero },
  };
}

test('test patients that trained or validated the initial model are counted by patient, and files a split trained on are found', () => {
  const init = split([
    ['a1', 'A', 'train'],
    ['b1', 'B', 'validation'],
    ['c1', 'C', 'test'],
  ]);
  const mine = split([
    ['a2', 'A', 'test'], // another film of a patient the initial model trained on
    ['b1', 'B', 'test'],
    ['c1', 'C', 'test'],
    ['d1', 'D', 'train'],
  ]);
  assert.deepEqual(splitOverlap(mine, init), { images: 2, patients: 2, of: 3 });
  assert.deepEqual(splitOverlap(init, init), { images: 0, patients: 0, of: 1 });
  assert.deepEqual(filesTrainedOn(['a1', 'c1', 'x'], init), ['a1']);
});
