/**
 * The GPU fine-tune path end to end on a small graph, on this machine's CPU: export-crops
 * writes the served lung crops, finetune.py rebuilds the tfjs graph in PyTorch and must give
 * tfjs's probabilities on them (and write the untouched weights back byte for byte), a short
 * run writes weights in the graph's layout, and import-weights makes a verified version of
 * them. Needs Debian's python3-torch and python3-pil (.ci/run installs them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readManifest, verifyManifest } from '../../src/ml/model-store/index.js';
import { loadEngine } from '../../src/inference/engine.js';
import { runCli as cli } from '../support/cli.js';
import { importWeightsArgs, scratchModelsAndData } from '../support/ml.js';
import { weightLayout, type WeightSpec } from '../../src/ml/imported-weights.js';
import { alternatingSplit } from '../support/data.js';

const PYTHON = '/usr/bin/python3';
// run.sh's time budget stops training once spent: on a busy machine 120 s could end a run before its
// one epoch, so the budget here is far above the spawn's own limit, which bounds the wait instead
const TRAIN_BUDGET_S = '3600';
let root: string;
let classifierDir: string;
let segmenterDir: string;
let data: string;
let splitCsv: string;
let crops: string;

function run(cmd: string, args: string[]): { code: number | null; stdout: string; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout ?? '', out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

before(async () => {
  ({ root, data, classifierDir, segmenterDir } = await scratchModelsAndData('cxr-gpu-finetune-', {
    count: 8,
    seed: 27_401,
    sizeMin: 128,
    sizeMax: 192,
    workSize: 128,
  }));
  splitCsv = join(root, 'split.csv');
  await alternatingSplit(data, splitCsv);
  const size = (await readManifest(classifierDir)).inputSize;
  crops = join(root, 'crops');
  const r = run('npx', [
    'tsx',
    'scripts/gpu/export-crops.ts',
    '--data',
    data,
    '--split',
    splitCsv,
    '--segmenter',
    segmenterDir,
    '--out',
    crops,
    '--size',
    String(size),
  ]);
  assert.equal(r.code, 0, r.out);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('PyTorch and torch are there: finetune.py needs them (python3-torch, python3-pil)', () => {
  const r = run(PYTHON, ['-c', 'import torch, PIL, numpy']);
  assert.equal(r.code, 0, `install python3-torch and python3-pil: ${r.out}`);
});

test('export-crops writes one crop per film of the split with its set, split and label', async () => {
  const rows = (await readFile(join(crops, 'index.csv'), 'utf8')).trim().split('\n');
  assert.equal(rows[0], 'name,file,set,split,label,cropped');
  const split = (await readFile(splitCsv, 'utf8')).trim().split('\n').slice(1);
  assert.equal(rows.length - 1, split.length);
  for (const row of rows.slice(1)) {
    const [name, file, , subset, label] = row.split(',');
    assert.ok(existsSync(join(crops, 'img', name)), name);
    const s = split.find((l) => l.startsWith(`${file},`))!.split(',');
    assert.equal(subset, s[3]);
    assert.equal(label, s[2] === 'pneumonia' ? '1' : '0');
  }
});

test("finetune.py's PyTorch graph gives tfjs's probabilities on the crops and writes the untouched weights back byte for byte", async () => {
  const ref = run('npx', ['tsx', 'scripts/gpu/reference-outputs.ts', '--version', classifierDir, '--crops', crops, '--n', '6']);
  assert.equal(ref.code, 0, ref.out);
  const refFile = join(root, 'reference.json');
  await writeFile(refFile, ref.stdout);
  const r = run(PYTHON, ['scripts/gpu/finetune.py', '--version', classifierDir, '--crops', crops, '--out', join(root, 'check'), '--check', refFile]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /max \|torch - tfjs\| probability over 6 crops: \S+/);
  assert.match(r.out, /weights\.bin round trip identical: True/);
});

test('a short fine-tune writes weights in the graph layout that import-weights makes a verified version of', async () => {
  const out = join(root, 'ft');
  const runs = JSON.stringify([{ name: 'tiny', lr: 1e-3, epochs: 2, epochImages: 4, batch: 2 }]);
  const r = run(PYTHON, ['scripts/gpu/finetune.py', '--version', classifierDir, '--crops', crops, '--out', out, '--runs', runs]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /\[tiny\] epoch 2\/2 loss \d/);
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as {
    run: { name: string };
    best: { epoch: number };
    history: unknown[];
    environment: { torch: string; device: string };
  }[];
  assert.equal(results[0].run.name, 'tiny');
  assert.equal(results[0].environment.device, 'cpu');
  assert.match(results[0].environment.torch, /^\d+\.\d+/);
  assert.equal(results[0].history.length, 2);
  const weights = join(out, 'tiny.weights.bin');
  assert.notDeepEqual(await readFile(weights), await readFile(join(classifierDir, 'weights.bin')), 'training moved the weights');
  const imported = await cli(
    importWeightsArgs(
      weights,
      { from: classifierDir, split: splitCsv, data, segmenter: segmenterDir },
      '--version',
      'v-finetuned',
      '--best-epoch',
      String(results[0].best.epoch),
    ),
  );
  assert.equal(imported.code, 0, imported.stderr);
  const dir = join(dirname(classifierDir), 'v-finetuned');
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  assert.deepEqual(await readFile(join(dir, 'weights.bin')), await readFile(weights));
});

test("a run with frozenBn keeps every batch norm's moving statistics while its scale and shift learn; without it they move", async () => {
  const out = join(root, 'ft-bn');
  const tiny = { lr: 1e-3, epochs: 1, epochImages: 4, batch: 2 };
  const runs = JSON.stringify([
    { name: 'bn-moving', ...tiny },
    { name: 'bn-frozen', ...tiny, frozenBn: true },
  ]);
  const r = run(PYTHON, ['scripts/gpu/finetune.py', '--version', classifierDir, '--crops', crops, '--out', out, '--runs', runs]);
  assert.equal(r.code, 0, r.out);
  const specs = JSON.parse(await readFile(join(classifierDir, 'model.json'), 'utf8')).weightsManifest[0].weights as WeightSpec[];
  const layout = weightLayout(specs);
  const original = await readFile(join(classifierDir, 'weights.bin'));
  // how many weights whose names end in `suffix` differ from the original's bytes
  const changed = (bytes: Buffer, suffix: string): number =>
    layout.filter(({ spec, offset, values, bytesPerValue }) => {
      const end = offset + values * bytesPerValue;
      return spec.name.endsWith(suffix) && !bytes.subarray(offset, end).equals(original.subarray(offset, end));
    }).length;
  const norms = specs.filter((w) => w.name.endsWith('/moving_mean')).length;
  assert.ok(norms > 0, 'the graph has batch norms');
  const frozen = await readFile(join(out, 'bn-frozen.weights.bin'));
  assert.equal(changed(frozen, '/moving_mean'), 0);
  assert.equal(changed(frozen, '/moving_variance'), 0);
  assert.ok(changed(frozen, '/gamma') + changed(frozen, '/beta') > 0, 'the scale and shift trained');
  const moving = await readFile(join(out, 'bn-moving.weights.bin'));
  assert.ok(changed(moving, '/moving_mean') > 0, 'without frozenBn the moving means follow the batches');
});

test("train_mode: with frozenBn and dropout 0 a training forward is the served one; the graph's dropout and batch statistics each move it", () => {
  // the largest |logit - served logit| on the crops, for each run's training mode
  const py = [
    'import json, sys, numpy as np, torch',
    "sys.path.insert(0, 'scripts/gpu')",
    'import finetune as f',
    'imgs, meta = f.load_crops(sys.argv[2])',
    'model, weights = f.read_weights(sys.argv[1])',
    "net = f.Graph(model['modelTopology'], weights)",
    'x = torch.from_numpy(imgs).float().div(255).unsqueeze(1)',
    'torch.manual_seed(0)',
    'net.eval()',
    'with torch.no_grad(): ref = net(x)',
    'out = {}',
    "for name, run in [('served', {'frozenBn': True, 'dropout': 0}), ('dropout', {'frozenBn': True}), ('batchStats', {'dropout': 0})]:",
    '    f.train_mode(net, run)',
    '    with torch.no_grad(): out[name] = float((net(x) - ref).abs().max())',
    'print(json.dumps(out))',
  ].join('\n');
  const r = run(PYTHON, ['-c', py, classifierDir, crops]);
  assert.equal(r.code, 0, r.out);
  const d = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { served: number; dropout: number; batchStats: number };
  assert.equal(d.served, 0);
  assert.ok(d.dropout > 1e-3, `dropout moved the logits by ${d.dropout}`);
  assert.ok(d.batchStats > 1e-3, `batch statistics moved the logits by ${d.batchStats}`);
});

test('bundle.ts writes one folder whose run.sh checks the graph, trains the runs and keeps the best weights', async () => {
  const runsFile = join(root, 'runs.json');
  await writeFile(runsFile, JSON.stringify([{ name: 'b1', lr: 1e-3, epochs: 1, epochImages: 4, batch: 2 }]));
  const bundle = join(root, 'bundle');
  const b = run('npx', ['tsx', 'scripts/gpu/bundle.ts', '--version', classifierDir, '--crops', crops, '--runs', runsFile, '--out', bundle]);
  assert.equal(b.code, 0, b.out);
  for (const f of ['finetune.py', 'run.sh', 'runs.json', 'reference.json', 'version/model.json', 'version/weights.bin', 'crops/index.csv']) {
    assert.ok(existsSync(join(bundle, f)), f);
  }
  // the train and validation rows only, plus the films the reference was computed on
  const rows = (await readFile(join(bundle, 'crops', 'index.csv'), 'utf8')).trim().split('\n').slice(1);
  assert.ok(rows.length > 0 && rows.every((r) => /,(train|validation),/.test(r) || existsSync(join(bundle, 'crops', 'img', r.split(',')[0]))));
  const again = run('npx', ['tsx', 'scripts/gpu/bundle.ts', '--version', classifierDir, '--crops', crops, '--runs', runsFile, '--out', bundle]);
  assert.equal(again.code, 2);
  assert.match(again.out, /E_CONFLICT/);
  const outDir = join(root, 'bundle-out');
  const r = spawnSync('bash', [join(bundle, 'run.sh')], {
    encoding: 'utf8',
    env: { ...process.env, OUT: outDir, BUDGET: TRAIN_BUDGET_S, PYTHON },
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(await readFile(join(outDir, 'check.log'), 'utf8'), /round trip identical: True/);
  assert.match(r.stdout, /kept b1 epoch 1/);
  assert.ok(existsSync(join(outDir, 'b1.weights.bin')));
  assert.equal(JSON.parse(await readFile(join(outDir, 'results.json'), 'utf8'))[0].run.name, 'b1');
});

test("a run distilled from another version's probabilities at a smaller crop side imports at that side with --input-size and serves there", async () => {
  // the teacher: the base version's served probabilities on the train films
  const teacherCsv = join(root, 'teacher.csv');
  const ev = await cli([
    'evaluate',
    '--data',
    data,
    '--classifier',
    classifierDir,
    '--segmenter',
    segmenterDir,
    '--split',
    splitCsv,
    '--subset',
    'train',
    '--tta',
    '1',
    '--per-image',
    teacherCsv,
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  const teacher = new Map(
    (await readFile(teacherCsv, 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => [l.split(',')[0], l.split(',')[2]]),
  );
  const runsFile = join(root, 'runs-distill.json');
  const base = await readManifest(classifierDir);
  const side = base.inputSize - 8; // still a multiple of the small graph's stride 8
  await writeFile(runsFile, JSON.stringify([{ name: 'd1', lr: 1e-3, epochs: 1, epochImages: 4, batch: 2, inputSize: side, distill: 0.5 }]));
  const bundle = join(root, 'bundle-distill');
  const b = run('npx', [
    'tsx',
    'scripts/gpu/bundle.ts',
    '--version',
    classifierDir,
    '--crops',
    crops,
    '--runs',
    runsFile,
    '--out',
    bundle,
    '--teacher',
    teacherCsv,
  ]);
  assert.equal(b.code, 0, b.out);
  assert.match(b.out, new RegExp(`teacher probabilities for ${teacher.size} of \\d+ crops`));
  const [header, ...rows] = (await readFile(join(bundle, 'crops', 'index.csv'), 'utf8')).trim().split('\n');
  assert.equal(header, 'name,file,set,split,label,cropped,teacher');
  for (const r of rows) {
    const c = r.split(',');
    assert.equal(c[6], c[3] === 'train' ? teacher.get(c[1]) : (teacher.get(c[1]) ?? ''), r);
  }
  const outDir = join(root, 'distill-out');
  const r = spawnSync('bash', [join(bundle, 'run.sh')], {
    encoding: 'utf8',
    env: { ...process.env, OUT: outDir, BUDGET: TRAIN_BUDGET_S, PYTHON },
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /kept d1 epoch 1/);
  // without a teacher column a distilled run stops before training
  const noTeacher = run(PYTHON, [
    'scripts/gpu/finetune.py',
    '--version',
    classifierDir,
    '--crops',
    crops,
    '--out',
    join(root, 'nt'),
    '--runs',
    JSON.stringify([{ name: 'x', lr: 1e-3, epochs: 1, distill: 0.5 }]),
  ]);
  assert.notEqual(noTeacher.code, 0);
  assert.match(noTeacher.out, /distill 0\.5 needs a 'teacher' column/);

  const weights = join(outDir, 'd1.weights.bin');
  const args = (...extra: string[]) => importWeightsArgs(weights, { from: classifierDir, split: splitCsv, data, segmenter: segmenterDir }, ...extra);
  const before = (await readFile(join(classifierDir, 'model.json'), 'utf8')).length;
  const bad = await cli(args('--version', 'v-bad-side', '--input-size', String(side + 1)));
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /E_BAD_ARGUMENT.*multiple of the network's stride 8/);
  assert.ok(!existsSync(join(dirname(classifierDir), 'v-bad-side')));
  const imported = await cli(args('--version', 'v-small-side', '--input-size', String(side)));
  assert.equal(imported.code, 0, imported.stderr);
  const dir = join(dirname(classifierDir), 'v-small-side');
  assert.deepEqual(await verifyManifest(dir), { ok: true, modified: [], missing: [], unlisted: [] });
  const m = await readManifest(dir);
  assert.equal(m.inputSize, side);
  assert.equal((m.architectureConfig as { inputSize: number }).inputSize, side);
  const graph = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  assert.deepEqual(graph.modelTopology.config.layers[0].config.batch_input_shape, [null, side, side, 1]);
  assert.equal((await readFile(join(classifierDir, 'model.json'), 'utf8')).length, before, 'the version it came from is untouched');
  // the engine crops at the new side (a graph still at the old one would refuse the crop)
  const engine = await loadEngine({ modelsDir: dirname(dirname(classifierDir)), classifierDir: dir, threads: 1 });
  try {
    assert.equal(engine.models.classifier.version, 'v-small-side');
    const film = rows[0].split(',')[1];
    const { report } = await engine.analyze(new Uint8Array(await readFile(join(data, film))), { tta: 2 });
    assert.equal(report.tta.probabilities.length, 2);
    for (const p of report.tta.probabilities) assert.ok(p > 0 && p < 1, String(p));
  } finally {
    await engine.close();
  }
});

test('the scripts answer --help and refuse a missing option with E_BAD_ARGUMENT and exit 2', () => {
  for (const [script, partial] of [
    ['scripts/gpu/export-crops.ts', '--out'],
    ['scripts/gpu/reference-outputs.ts', '--crops'],
  ]) {
    const help = run('npx', ['tsx', script, '--help']);
    assert.equal(help.code, 0, help.out);
    assert.match(help.stdout, /^Usage: npx tsx scripts\/gpu\//);
    const missing = run('npx', ['tsx', script, partial, 'x']);
    assert.equal(missing.code, 2, missing.out);
    assert.match(missing.out, /error E_BAD_ARGUMENT: --\w+ is required\nUsage:/);
    const unknown = run('npx', ['tsx', script, '--bogus', 'x']);
    assert.equal(unknown.code, 2, unknown.out);
    assert.match(unknown.out, /error E_BAD_ARGUMENT: Unknown option '--bogus'/);
  }
  const py = run(PYTHON, ['scripts/gpu/finetune.py', '--help']);
  assert.equal(py.code, 0, py.out);
  assert.match(py.stdout, /--check CHECK/);
});
