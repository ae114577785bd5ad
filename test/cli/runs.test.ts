/** `runs list` and `runs compare` over run folders written by the training loop (tiny classifier, one epoch). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArraySource, type Sample } from '../../src/ml/train/array-source.js';
import { defaultConfig } from '../../src/ml/train/config.js';
import { train } from '../../src/ml/train/loop.js';
import { mulberry32 } from '../../src/ml/train/rng.js';
import { setupBackend } from '../support/ml.js';
import { spawnCliSync } from '../support/cli.js';

await setupBackend();
const tmp = mkdtempSync(join(tmpdir(), 'cxr-runs-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function samples(n: number, seed: number): Sample[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({ id: `s${i}`, image: Float32Array.from({ length: 256 }, () => rand() + (i % 2) * 0.2), target: i % 2 }));
}

const cli = (...args: string[]) => spawnCliSync(args);

test('runs list shows each run with its epochs and best metric; runs compare names the differing setting and lines up the epochs', async () => {
  for (const [id, lr] of [
    ['slow', 1e-3],
    ['fast', 2e-2],
  ] as const) {
    const config = {
      ...defaultConfig('classifier'),
      inputSize: 16,
      epochs: 2,
      batchSize: 4,
      accumulate: 1,
      lr,
      patience: 0,
      architecture: { blocks: [1, 1], growth: 4, stemFilters: 4 },
    };
    const r = await train({
      config,
      data: { train: ArraySource.of(samples(8, 1), { shuffle: true, seed: 2 }), validation: ArraySource.of(samples(4, 3)) },
      runDir: join(tmp, id),
    });
    r.model.dispose();
  }
  const list = cli('runs', 'list', tmp, '--json');
  assert.equal(list.status, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as { id: string; task: string; epochs: number; status: string; best: { epoch: number } | null }[];
  assert.deepEqual(rows.map((r) => [r.id, r.task, r.epochs, r.status]).sort(), [
    ['fast', 'classifier', 2, 'resumable'],
    ['slow', 'classifier', 2, 'resumable'],
  ]);
  const cmp = cli('runs', 'compare', 'slow', 'fast', '--runs', tmp);
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stdout, /^slow -> fast: 1 setting differs\n {2}config\.lr: 0\.001 -> 0\.02$/m);
  assert.match(cmp.stdout, /^ {4}1 {2}\d\.\d{4} \/ (\d\.\d{4}|n\/a)/m);
  assert.match(cmp.stdout, /^ {4}2 /m);
  assert.equal(cli('runs', 'compare', 'slow', '--runs', tmp).status, 2);
});

test('a damaged run (config.json not an object, metrics.jsonl cut by a killed run) is listed with why, and the other runs still are; a file given as the runs folder is E_BAD_ARGUMENT', async () => {
  const damaged = mkdtempSync(join(tmpdir(), 'cxr-runs-damaged-'));
  try {
    mkdirSync(join(damaged, 'cut'));
    writeFileSync(join(damaged, 'cut', 'config.json'), JSON.stringify({ config: { task: 'classifier', epochs: 3 } }));
    writeFileSync(join(damaged, 'cut', 'metrics.jsonl'), '{"epoch":1,"trainLoss":0.5,"time":"2026-12-04T00:00:00Z"}\n{"epoch":2,"trainLoss":0.4');
    mkdirSync(join(damaged, 'null-config'));
    writeFileSync(join(damaged, 'null-config', 'config.json'), 'null');
    const list = cli('runs', 'list', damaged, join(tmp), '--json');
    assert.equal(list.status, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { id: string; epochs: number; status: string }[];
    const by = new Map(rows.map((r) => [r.id, r]));
    assert.equal(by.get('cut')!.epochs, 1);
    assert.match(by.get('cut')!.status, /damaged: metrics\.jsonl line 2: cut short/);
    assert.match(by.get('null-config')!.status, /damaged: config\.json: not a JSON object/);
    // the healthy runs of the first test are still listed
    assert.ok(by.has('slow') && by.has('fast'));
    const notFolder = cli('runs', 'list', join(damaged, 'cut', 'config.json'));
    assert.equal(notFolder.status, 2);
    assert.match(notFolder.stderr, /E_BAD_ARGUMENT: .*is not a folder of training runs/);
  } finally {
    rmSync(damaged, { recursive: true, force: true });
  }
});
