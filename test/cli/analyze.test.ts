/** The analyze, export-onnx and bench latency subcommands, run as a user runs them. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { randomModels } from '../support/random-models.js';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { manifestDigest, verifyManifest, readManifest } from '../../src/ml/model-store/index.js';
import { runCli as cli, spawnCli } from '../support/cli.js';

let root: string;
let dirs: { segmenter: string; classifier: string };
let study: string;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'cxr-cli-'));
  dirs = await randomModels(join(root, 'models'), { size: 'small', seed: 2 });
  study = join(root, 'study.dcm');
  await writeFile(study, chestDicom({ size: 384, seed: 5 }));
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('analyze --json prints the report and writes mask and heatmap overlays', async () => {
  const mask = join(root, 'mask.png');
  const heat = join(root, 'heat.png');
  const r = await cli(['analyze', study, '--json', '--models', join(root, 'models'), '--tta', '2', '--threads', '1', '--mask', mask, '--heatmap', heat]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.tta.views, 2);
  assert.ok(['positive', 'negative'].includes(report.decision));
  assert.equal(typeof report.timingsMs.total, 'number');
  assert.equal(report.models.classifier.version, 'random-small');
  for (const png of [mask, heat]) {
    const m = await sharp(png).metadata();
    assert.deepEqual([m.format, m.width, m.height, m.channels], ['png', 384, 384, 3]);
  }
});

test('analyze without --json prints a readable report', async () => {
  const r = await cli(['analyze', study, '--models', join(root, 'models'), '--tta', '1', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /probability +\d\.\d{3} +threshold 0\.500/);
  assert.match(r.stdout, /TTA +1 views/);
  assert.match(r.stdout, /timings ms +decode/);
});

test('analyze of a file that is not DICOM exits 2 with error E_NOT_DICOM', async () => {
  const bogus = join(root, 'notes.txt');
  await writeFile(bogus, 'this is not a DICOM file, it is long enough to have a preamble though '.repeat(4));
  const r = await spawnCli(['analyze', bogus, '--models', join(root, 'models')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error E_NOT_DICOM: /);
  assert.equal(r.stdout, '');
});

test('analyze with no models exits 3 with E_MODEL_MISSING and how to get them', async () => {
  const r = await cli(['analyze', study, '--models', join(root, 'nowhere')]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /^error E_MODEL_MISSING: .*cxr-triage train segmenter/);
});

test('export-onnx writes model.onnx into a new revision and leaves the published version byte for byte as it was', async () => {
  const before = await readManifest(dirs.classifier);
  const manifestBefore = await readFile(join(dirs.classifier, 'manifest.json'));
  const onnxBefore = await readFile(join(dirs.classifier, 'model.onnx'));
  const r = await spawnCli(['export-onnx', '--model', dirs.classifier, '--json'], { CXR_BACKEND: 'cpu' });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.kind, 'classifier');
  assert.equal(out.dir, join(root, 'models', 'classifier', 'random-small-r1'));
  assert.deepEqual(
    { name: out.derivedFrom.name, version: out.derivedFrom.version, digest: out.derivedFrom.digest, reason: out.derivedFrom.reason },
    { name: 'classifier', version: 'random-small', digest: manifestDigest(before), reason: 'export-onnx' },
  );
  assert.match(r.stderr, /models activate classifier random-small-r1/);
  assert.deepEqual(
    out.onnx.outputs.map((o: { name: string }) => o.name),
    ['probability', 'features', 'cam'],
  );
  assert.ok(out.onnx.parityMaxAbsDiff <= 1e-4);
  const check = await verifyManifest(out.dir);
  assert.ok(check.ok, JSON.stringify(check));
  const after = await readManifest(out.dir);
  assert.equal(after.version, 'random-small-r1');
  assert.equal(after.files['model.onnx'], out.sha256);
  assert.equal(after.threshold!.value, before.threshold!.value); // the rest of the manifest is kept
  // the source: same manifest bytes, same model.onnx bytes, still verifies
  assert.ok((await readFile(join(dirs.classifier, 'manifest.json'))).equals(manifestBefore));
  assert.ok((await readFile(join(dirs.classifier, 'model.onnx'))).equals(onnxBefore));
  assert.ok((await verifyManifest(dirs.classifier)).ok);
});

test('bench latency --json prints one line with p50, p90 and peak RSS', async () => {
  const r = await cli(['bench', 'latency', study, '--repeat', '2', '--tta', '2', '--threads', '1', '--models', join(root, 'models'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.equal(j.studies, 2);
  assert.equal(j.tta, 2);
  for (const k of ['per_study_ms_p50', 'per_study_ms_p90', 'peak_rss_mb']) assert.ok(typeof j[k] === 'number' && j[k] > 0, k);
  assert.ok(j.per_study_ms_p90 >= j.per_study_ms_p50);
});
