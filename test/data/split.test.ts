import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadDataset } from '../../src/data/dataset.js';
import { readSplit, splitByPatient, writeSplit, SPLIT_NAMES, type SplitInput } from '../../src/data/split.js';
import { rngFor } from '../../src/data/rng.js';
import { tempDir } from '../support/data.js';

const NIH = resolve('..', 'shared', 'data', 'nih-cxr8-pneumonia');
const haveNih = existsSync(join(NIH, 'labels.csv'));

/** 400 patients with 1-4 images each, about 45% pneumonia patients. */
function cohort(seed: number): SplitInput[] {
  const rng = rngFor(['cohort', seed]);
  const out: SplitInput[] = [];
  for (let p = 0; p < 400; p++) {
    const label = rng.chance(0.45) ? 'pneumonia' : 'normal';
    const n = rng.int(1, 4);
    for (let k = 0; k < n; k++) out.push({ file: `img/${p}-${k}.png`, patientId: `P${p}`, label });
  }
  return out;
}

function checkSplit(items: SplitInput[], seed: number): void {
  const split = splitByPatient(items, { seed });
  const where = new Map<string, string>();
  for (const a of split.assignments) {
    const prev = where.get(a.patientId);
    assert.ok(prev === undefined || prev === a.split, `patient ${a.patientId} is in ${prev} and ${a.split}`);
    where.set(a.patientId, a.split);
  }
  const total = items.length;
  const overall = items.filter((i) => i.label === 'pneumonia').length / total;
  split.fractions.forEach((f, k) => {
    const c = split.counts[SPLIT_NAMES[k]];
    assert.ok(Math.abs(c.images / total - f) < 0.02, `${SPLIT_NAMES[k]} has ${c.images}/${total} images, wanted ${f}`);
    assert.ok(Math.abs(c.pneumonia / c.images - overall) < 0.05, `${SPLIT_NAMES[k]} pneumonia share ${c.pneumonia / c.images} vs ${overall}`);
  });
  assert.equal(split.train.length + split.validation.length + split.test.length, total);
}

test('no patient lands in two splits, shares are 70/10/20 and each split keeps the label balance', () => {
  for (const seed of [1, 2, 3]) checkSplit(cohort(seed), seed);
});

test('splits are deterministic per seed and independent of row order', () => {
  const items = cohort(7);
  const a = splitByPatient(items, { seed: 5 });
  const b = splitByPatient([...items].reverse(), { seed: 5 });
  assert.deepEqual(new Set(a.test), new Set(b.test));
  assert.deepEqual(a, splitByPatient(items, { seed: 5 }));
  assert.notDeepEqual(new Set(a.test), new Set(splitByPatient(items, { seed: 6 }).test));
});

test('custom fractions are honoured and bad ones rejected', () => {
  const s = splitByPatient(cohort(2), { seed: 1, fractions: [8, 1, 1] });
  assert.deepEqual(s.fractions, [0.8, 0.1, 0.1]);
  assert.ok(Math.abs(s.counts.train.images / s.assignments.length - 0.8) < 0.02);
  assert.throws(() => splitByPatient(cohort(2), { fractions: [0, 1, 1] }), /positive train share/);
  assert.throws(() => splitByPatient(cohort(2), { fractions: [1, -1, 1] as [number, number, number] }), /non-negative/);
});

test('writeSplit writes the split next to the run and readSplit reads it back', async () => {
  const dir = tempDir('split');
  try {
    const split = splitByPatient(cohort(3), { seed: 9 });
    const { json, csv } = await writeSplit(join(dir, 'run'), split);
    const j = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(j.seed, 9);
    assert.deepEqual(j.test, split.test);
    assert.ok(readFileSync(csv, 'utf8').startsWith('file,patient_id,label,split\n'));
    const back = await readSplit(join(dir, 'run'));
    assert.deepEqual(back.assignments, split.assignments);
    assert.deepEqual(back.counts, split.counts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real NIH folder splits by patient with balanced labels', { skip: !haveNih && `no ${NIH} (shared data absent)` }, async () => {
  const ds = await loadDataset(NIH);
  checkSplit(ds.items, 1);
});
