/**
 * `evaluate` and `analyze` decide alike: synthetic studies from a seed no model saw, random-weight
 * small model versions, both subcommands run as a user runs them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCsv } from '../../src/data/csv.js';
import { onnxScorer } from '../../src/inference/scorer.js';
import { readManifest, verifyManifest, writeManifest } from '../../src/ml/model-store/index.js';
import { loadEvalItems } from '../../src/ml/train/dataset-source.js';
import { runCli as cli } from '../support/cli.js';
import { scratchModelsAndData } from '../support/ml.js';

const STUDIES = 6;
let root: string;
let models: string;
let data: string;
let classifierDir: string;

before(async () => {
  let segmenterDir: string;
  ({ root, models, data, segmenterDir, classifierDir } = await scratchModelsAndData('cxr-eval-cli-', {
    count: STUDIES,
    seed: 90_417,
    sizeMin: 128,
    sizeMax: 192,
    workSize: 128,
  }));

  // Random weights give probabilities in a narrow band: put the threshold between the middle
  // two of this set so that both decisions occur and the comparison is not vacuous.
  const scorer = await onnxScorer({ segmenterDir, classifierDir, threads: 1 });
  const probs: number[] = [];
  try {
    for (const item of await loadEvalItems(data)) probs.push((await scorer.score(await item.image())).probability);
  } finally {
    await scorer.dispose();
  }
  probs.sort((a, b) => a - b);
  const mid = (probs[STUDIES / 2 - 1] + probs[STUDIES / 2]) / 2;
  const { files: _files, ...manifest } = await readManifest(classifierDir);
  await writeManifest(classifierDir, { ...manifest, threshold: { ...manifest.threshold!, value: mid } });
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test("evaluate reports, study by study, the probability and decision analyze prints, and its confusion matrix tallies analyze's decisions", async () => {
  const perImage = join(root, 'per-image.csv');
  const ev = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1', '--per-image', perImage]);
  assert.equal(ev.code, 0, ev.stderr);
  const summary = JSON.parse(ev.stdout);
  assert.equal(summary.n, STUDIES);
  const rows = parseCsv(await readFile(perImage, 'utf8')).rows.map((r) => r.fields);
  assert.equal(rows.length, STUDIES);

  const tally = { tp: 0, fp: 0, tn: 0, fn: 0 };
  const decisions = new Set<string>();
  for (const [file, label, probability, decision] of rows) {
    const an = await cli(['analyze', join(data, file), '--json', '--models', models, '--threads', '1']);
    assert.equal(an.code, 0, an.stderr);
    const report = JSON.parse(an.stdout);
    assert.equal(report.probability, Number(probability), file);
    assert.equal(report.decision, decision, file);
    assert.equal(report.threshold, summary.threshold);
    decisions.add(report.decision);
    const positive = report.decision === 'positive';
    assert.ok(label === 'pneumonia' || label === 'normal', label);
    if (label === 'pneumonia') positive ? tally.tp++ : tally.fn++;
    else positive ? tally.fp++ : tally.tn++;
  }
  assert.deepEqual(summary.confusion, tally);
  assert.deepEqual([...decisions].sort(), ['negative', 'positive']);
});

test('evaluate of models without model.onnx exits 3 with E_MODEL_MISSING and says to run export-onnx', async () => {
  const bare = join(root, 'bare');
  await cp(models, bare, { recursive: true });
  const seg = join(bare, 'segmenter', (await readdir(join(bare, 'segmenter')))[0]);
  await rm(join(seg, 'model.onnx'));
  const r = await cli(['evaluate', '--data', data, '--models', bare]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /^error E_MODEL_MISSING: .*export-onnx/m);
});

test("evaluate --save stores plots, per-image results and the summary in the classifier version's evaluations/ folder, and the version still verifies", async () => {
  const r = await cli(['evaluate', '--data', data, '--models', models, '--json', '--threads', '1', '--tta', '1', '--save']);
  assert.equal(r.code, 0, r.stderr);
  const runs = await readdir(join(classifierDir, 'evaluations'));
  assert.equal(runs.length, 1);
  assert.match(runs[0], /-all$/);
  const saved = join(classifierDir, 'evaluations', runs[0]);
  assert.deepEqual((await readdir(saved)).sort(), ['per-image.csv', 'pr.png', 'reliability.png', 'roc.png', 'summary.json']);
  const summary = JSON.parse(await readFile(join(saved, 'summary.json'), 'utf8'));
  assert.equal(summary.n, STUDIES);
  assert.deepEqual(summary.confusion, JSON.parse(r.stdout).confusion);
  assert.equal(parseCsv(await readFile(join(saved, 'per-image.csv'), 'utf8')).rows.length, STUDIES);
  assert.deepEqual(await verifyManifest(classifierDir), { ok: true, modified: [], missing: [], unlisted: [] });
});
