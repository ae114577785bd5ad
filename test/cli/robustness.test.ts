/**
 * `robustness` reports what the served pipeline says about shifted films: random-weight small
 * versions and synthetic studies, the figures checked against the engine scoring the same
 * shifted images directly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { applyShift, parseShifts, shiftNames } from '../../src/data/acquisition-shifts.js';
import { onnxScorer } from '../../src/inference/scorer.js';
import { loadEvalItems } from '../../src/ml/train/dataset-source.js';
import { evenlySpread } from '../../src/cli/score-items.js';
import { runCli as cli } from '../support/cli.js';
import { scratchModelsAndData } from '../support/ml.js';

const STUDIES = 6;
let root: string;
let models: string;
let data: string;
let segmenterDir: string;
let classifierDir: string;

before(async () => {
  ({ root, models, data, segmenterDir, classifierDir } = await scratchModelsAndData('cxr-robustness-cli-', {
    count: STUDIES,
    seed: 71_203,
    sizeMin: 128,
    sizeMax: 160,
    workSize: 128,
  }));
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('robustness --list names every shift with what it emulates, without models or data', async () => {
  const r = await cli(['robustness', '--list']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(/\s+/)[0]),
    shiftNames(),
  );
  assert.ok(lines.every((l) => l.trim().split(/\s{2,}/).length === 2));
});

test('robustness refuses a missing --data and an unknown shift with E_BAD_ARGUMENT (exit 2) before scoring anything', async () => {
  const none = await cli(['robustness', '--models', models]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /E_BAD_ARGUMENT.*--data/);
  const unknown = await cli(['robustness', '--data', data, '--models', models, '--shifts', 'gamma-0.7,sepia']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /E_BAD_ARGUMENT: unknown shift 'sepia'/);
  assert.doesNotMatch(unknown.stderr, /scoring/);
});

test("robustness figures are the served engine's on the same films as they are and shifted, film by film", async () => {
  const r = await cli(['robustness', '--data', data, '--models', models, '--shifts', 'gamma-0.7,downsample-4', '--json', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.sets.length, 1);
  const set = report.sets[0];
  assert.equal(set.asIs.n, STUDIES);
  assert.deepEqual(
    set.shifts.map((s: { shift: string }) => s.shift),
    ['gamma-0.7', 'downsample-4'],
  );

  // the as-is row is evaluate's
  const ev = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1']);
  assert.equal(ev.code, 0, ev.stderr);
  const summary = JSON.parse(ev.stdout);
  assert.equal(set.asIs.auc, summary.auc);
  assert.equal(set.asIs.recall, summary.recall);
  assert.equal(set.asIs.specificity, summary.specificity);
  assert.equal(set.threshold, summary.threshold);

  // each shift's move and decisions, recomputed from the engine on the shifted images
  const scorer = await onnxScorer({ segmenterDir, classifierDir, threads: 1 });
  try {
    const items = await loadEvalItems(data);
    const asIs: number[] = [];
    for (const item of items) asIs.push((await scorer.score(await item.image())).probability);
    for (const s of set.shifts) {
      const shift = parseShifts(s.shift)[0];
      let abs = 0;
      let changed = 0;
      let flagged = 0;
      for (const [k, item] of items.entries()) {
        const p = (await scorer.score(applyShift(await item.image(), shift))).probability;
        abs += Math.abs(p - asIs[k]);
        if (p >= summary.threshold !== asIs[k] >= summary.threshold) changed++;
        if (p >= summary.threshold) flagged++;
      }
      assert.ok(Math.abs(s.figures.meanAbsDelta - abs / STUDIES) < 1e-9, `${s.shift}: ${s.figures.meanAbsDelta} vs ${abs / STUDIES}`);
      assert.ok(abs > 0, `${s.shift} moved no probability`);
      assert.equal(s.figures.changed, changed, s.shift);
      assert.equal(s.figures.flaggedShare, flagged / STUDIES, s.shift);
    }
  } finally {
    await scorer.dispose();
  }
});

test('robustness prints a table per set with one row per shift and the legend of what each emulates', async () => {
  const r = await cli(['robustness', '--data', data, '--models', models, '--shifts', 'rotate-10', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`set data: ${STUDIES} films \\(\\d+ pneumonia\\), decided at threshold \\d\\.\\d{4}`));
  assert.match(r.stdout, /^as they are +(\d\.\d{3}|n\/a) /m);
  assert.match(r.stdout, /^rotate-10 +/m);
  assert.match(r.stdout, /rotate-10: a patient rotated by 10 degrees/);
});

test("robustness --save stores the report in the classifier version's evaluations, and its model card shows each shift's row", async () => {
  const r = await cli(['robustness', '--data', data, '--models', models, '--shifts', 'contrast-1.3', '--json', '--save', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const saved = /saved: (.+)$/m.exec(r.stderr)?.[1];
  assert.ok(saved?.startsWith(join(classifierDir, 'evaluations')), r.stderr);
  assert.match(saved!, /-robustness-all$/);
  const stored = JSON.parse(await readFile(join(saved!, 'robustness.json'), 'utf8'));
  const printed = JSON.parse(r.stdout);
  assert.deepEqual(stored.sets, printed.sets);
  // evaluate's saved evaluations are read by summary.json; this folder has none and is not one of them
  assert.ok(!existsSync(join(saved!, 'summary.json')));

  const card = await cli(['models', 'card', classifierDir, '--models', models]);
  assert.equal(card.code, 0, card.stderr);
  assert.ok(card.stdout.includes('\n## Acquisition shifts\n'), card.stdout);
  const f = printed.sets[0].shifts[0].figures;
  const row = card.stdout.split('\n').find((l) => l.startsWith('| contrast-1.3: '));
  assert.ok(row, card.stdout);
  assert.ok(row.endsWith(`| ${f.flaggedShare.toFixed(3)} | ${f.changed} (${f.normalsNewlyFlagged} / ${f.pneumoniaNewlyMissed}) |`), row);
});

test('--max-images takes films spread evenly over the set, not its first files, the same ones under every shift', async () => {
  assert.deepEqual(evenlySpread([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3), [1, 5, 8]);
  assert.deepEqual(evenlySpread([1, 2], 5), [1, 2]);
  const r = await cli(['robustness', '--data', data, '--models', models, '--shifts', 'blur-3', '--max-images', '3', '--json', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const set = JSON.parse(r.stdout).sets[0];
  assert.equal(set.asIs.n, 3);
  assert.equal(set.shifts[0].figures.n, 3);
});
