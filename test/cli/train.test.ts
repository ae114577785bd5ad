import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseCsv } from '../../src/data/csv.js';
import { findAbsolutePaths, verifyManifest } from '../../src/ml/model-store/index.js';
import { runCli, type CliResult } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-train-cli-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// in this process (same program): train picks its backend once, the same for every run here
const cli = (...args: string[]) => runCli(args);

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what} failed:\n${r.stderr.slice(-2000)}`);
  return r.stdout;
}

test('train segmenter and classifier on phantoms, then evaluate them end to end', async () => {
  const data = join(tmp, 'data');
  ok(await cli('synth', '--out', data, '--count', '16', '--seed', '3', '--size', '128-160', '--work-size', '128', '--quiet'), 'synth');
  const models = join(tmp, 'models');
  const tiny = ['--epochs', '1', '--batch', '4', '--accumulate', '1', '--split', '50/25/25', '--size', '32'];
  const segOut = ok(
    await cli(
      'train',
      'segmenter',
      '--data',
      data,
      '--out',
      join(models, 'segmenter'),
      '--runs',
      join(tmp, 'runs'),
      '--run-id',
      'seg',
      '--base',
      '2',
      '--depth',
      '2',
      ...tiny,
    ),
    'train segmenter',
  );
  const segDir = segOut.trim();
  assert.equal(segDir, join(models, 'segmenter', readdirSync(join(models, 'segmenter'))[0]));
  assert.equal((await verifyManifest(segDir)).ok, true);
  assert.equal(
    readFileSync(join(tmp, 'runs', 'seg', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n').length,
    1,
  );
  assert.ok(existsSync(join(tmp, 'runs', 'seg', 'split.csv')));

  const clsDir = ok(
    await cli(
      'train',
      'classifier',
      '--data',
      data,
      '--out',
      join(models, 'classifier'),
      '--runs',
      join(tmp, 'runs'),
      '--run-id',
      'cls',
      '--blocks',
      '1,1',
      '--growth',
      '4',
      '--target-recall',
      '0.9',
      ...tiny,
    ),
    'train classifier',
  ).trim();
  const manifest = JSON.parse(readFileSync(join(clsDir, 'manifest.json'), 'utf8'));
  assert.equal(manifest.threshold.targetRecall, 0.9);
  assert.ok(manifest.threshold.validationSensitivity >= 0.9);
  assert.equal(manifest.training.split.train + manifest.training.split.validation + manifest.training.split.test, 16);

  // train ships what the service runs: model.onnx and the split, all under the manifest's hashes
  for (const dir of [segDir, clsDir]) {
    assert.ok(existsSync(join(dir, 'model.onnx')) && existsSync(join(dir, 'split.csv')), dir);
    assert.equal((await verifyManifest(dir)).ok, true);
  }
  // the version holds how training scored it: plots and per-image results, outside the hashes
  const clsEval = join(clsDir, 'evaluations', 'training');
  for (const f of ['roc.png', 'pr.png', 'reliability.png']) assert.deepEqual([...readFileSync(join(clsEval, f)).subarray(1, 4)], [...Buffer.from('PNG')], f);
  const clsRows = parseCsv(readFileSync(join(clsEval, 'per-image.csv'), 'utf8'));
  assert.deepEqual(clsRows.header, ['file', 'split', 'label', 'probability', 'decision']);
  assert.equal(clsRows.rows.length, manifest.training.split.validation + manifest.training.split.test);
  for (const [file, split, label, p, decision] of clsRows.rows.map((r) => r.fields)) {
    assert.ok(['validation', 'test'].includes(split) && ['normal', 'pneumonia'].includes(label), file);
    assert.equal(decision, Number(p) >= manifest.metrics.test.threshold ? 'positive' : 'negative');
  }
  const clsSummary = JSON.parse(readFileSync(join(clsEval, 'summary.json'), 'utf8'));
  assert.deepEqual(clsSummary.plots.subset, 'test');
  assert.equal(clsSummary.plots.n, manifest.training.split.test);
  assert.equal(clsSummary.threshold, manifest.metrics.test.threshold);
  const segRows = parseCsv(readFileSync(join(segDir, 'evaluations', 'training', 'per-image.csv'), 'utf8'));
  assert.deepEqual(segRows.header, ['file', 'split', 'dice', 'iou']);
  assert.ok(segRows.rows.length > 0 && segRows.rows.every((r) => Number(r.fields[2]) >= 0 && Number(r.fields[2]) <= 1));
  // --no-onnx leaves the tfjs version only, still fully hashed (split.csv included)
  const plain = ok(
    await cli(
      'train',
      'segmenter',
      '--data',
      data,
      '--out',
      join(tmp, 'plain'),
      '--runs',
      join(tmp, 'runs'),
      '--run-id',
      'seg-plain',
      '--base',
      '2',
      '--depth',
      '2',
      '--no-onnx',
      ...tiny,
    ),
    'train segmenter --no-onnx',
  ).trim();
  assert.ok(!existsSync(join(plain, 'model.onnx')) && existsSync(join(plain, 'split.csv')));
  assert.equal((await verifyManifest(plain)).ok, true);
  // crops from the dataset masks: the threshold stays the single-view one
  assert.equal(manifest.threshold.calibratedOn, undefined);
  const evaluated = await cli('evaluate', '--data', data, '--models', models, '--json', '--plots', join(tmp, 'plots'));
  const json = ok(evaluated, 'evaluate --json');
  // the whole folder includes the classifier's own training images: evaluate says so
  assert.match(evaluated.stderr, /warning: \d+ of the 16 images evaluated trained or validated classifier v/);
  const lines = json.trim().split('\n');
  assert.equal(lines.length, 1);
  const r = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(r), [
    'auc',
    'accuracy',
    'precision',
    'recall',
    'specificity',
    'f1',
    'threshold',
    'confusion',
    'n',
    'ece',
    'ci95',
    'dice',
    'iou',
  ]);
  assert.ok(r.ece >= 0 && r.ece <= 1);
  // the bootstrap interval brackets the figure
  if (r.auc !== null) assert.ok(r.ci95.aucLo <= r.auc && r.auc <= r.ci95.aucHi, JSON.stringify(r.ci95));
  assert.equal(r.n, 16);
  assert.equal(r.threshold, manifest.threshold.value);
  assert.equal(r.confusion.tp + r.confusion.fp + r.confusion.tn + r.confusion.fn, 16);
  assert.ok(r.dice >= 0 && r.dice <= 1);
  for (const f of ['roc.png', 'pr.png', 'reliability.png']) assert.ok(existsSync(join(tmp, 'plots', f)), f);

  // only the held-out patients of the classifier's own split
  const testOnly = JSON.parse(
    ok(await cli('evaluate', '--data', data, '--models', models, '--json', '--split', join(clsDir, 'split.csv'), '--subset', 'test'), 'evaluate --split'),
  );
  assert.equal(testOnly.n, manifest.training.split.test);
  assert.equal((await cli('evaluate', '--data', data, '--models', models, '--split', join(clsDir, 'split.csv'), '--subset', 'holdout')).code, 2);

  const table = ok(await cli('evaluate', '--data', data, '--models', models, '--max-images', '4'), 'evaluate');
  assert.match(table, /^images\s+4$/m);
  assert.match(table, /lung Dice/);

  // with a segmenter giving the crops, the threshold is re-picked on the served pipeline
  const servedRun = await cli(
    'train',
    'classifier',
    '--data',
    data,
    '--out',
    join(tmp, 'served'),
    '--runs',
    join(tmp, 'runs'),
    '--run-id',
    'cls-served',
    '--segmenter',
    segDir,
    '--blocks',
    '1,1',
    '--growth',
    '4',
    '--target-recall',
    '0.9',
    '--calibrate-views',
    '2',
    '--init',
    clsDir,
    '--split-file',
    join(clsDir, 'split.csv'),
    ...tiny,
  );
  const servedDir = ok(servedRun, 'train classifier --segmenter').trim();
  assert.match(servedRun.stderr, /re-calibrated on the served pipeline \(2 TTA views, validation\)/);
  const served = JSON.parse(readFileSync(join(servedDir, 'manifest.json'), 'utf8'));
  assert.equal(served.threshold.calibratedOn.scorer, 'onnxruntime');
  assert.equal(served.threshold.calibratedOn.views, 2);
  assert.equal(served.threshold.calibratedOn.subset, 'validation');
  assert.ok(served.threshold.validationSensitivity >= 0.9);
  assert.deepEqual(
    { ...served.training.initFrom, testOverlap: undefined },
    { name: 'classifier', version: basename(clsDir), location: { root: 'external', path: basename(clsDir) }, testOverlap: undefined },
  );
  assert.deepEqual(served.threshold.calibratedOn.split, { root: 'version', path: 'split.csv' });
  // --split-file reused the initial model's split: none of its training patients is in the test split
  assert.equal(readFileSync(join(servedDir, 'split.csv'), 'utf8'), readFileSync(join(clsDir, 'split.csv'), 'utf8'));
  assert.deepEqual(served.training.initFrom.testOverlap, { images: 0, patients: 0, of: served.training.split.test });
  // provenance is portable: no path of this machine, but the code and library versions
  assert.deepEqual(findAbsolutePaths(served), []);
  assert.equal(served.training.environment.node, process.version);
  assert.match(served.training.environment.tfjs, /^\d+\.\d+/);
  assert.ok(served.training.environment.command.includes('--segmenter'));
  assert.equal((await verifyManifest(servedDir)).ok, true);
});

test('train refuses an unknown model name and a missing --data with exit status 2', async () => {
  const r = await cli('train', 'resnet', '--data', tmp, '--out', tmp);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error E_BAD_ARGUMENT: model must be 'segmenter' or 'classifier'/m);
  const r2 = await cli('train', 'segmenter', '--out', join(tmp, 'x'));
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--data is required/);
});
