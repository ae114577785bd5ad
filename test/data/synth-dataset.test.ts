import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { loadDataset, readSample } from '../../src/data/dataset.js';
import { datasetHash } from '../../src/data/hash.js';
import { parseCsv } from '../../src/data/csv.js';
import { tempDir } from '../support/data.js';
import { runCli } from '../support/cli.js';
import { CLI } from '../support/serve-process.js';

const opts = { count: 5, seed: 17, sizeMin: 96, sizeMax: 140, workSize: 96 };

test('a synthetic dataset loads with masks at native size and is byte-identical for a seed', async () => {
  const root = tempDir('synth');
  try {
    const a = await writeSynthDataset({ ...opts, out: join(root, 'a') });
    // b is made by two worker threads: the bytes must not depend on that.
    await writeSynthDataset({ ...opts, out: join(root, 'b'), jobs: 2 });
    assert.equal(a.count, 5);
    assert.equal(a.normal + a.pneumonia, 5);
    for (const sub of ['images', 'masks']) {
      const files = readdirSync(join(root, 'a', sub)).sort();
      assert.equal(files.length, 5);
      for (const f of files) assert.ok(readFileSync(join(root, 'a', sub, f)).equals(readFileSync(join(root, 'b', sub, f))), `${sub}/${f} differs`);
    }
    assert.equal(readFileSync(join(root, 'a', 'labels.csv'), 'utf8'), readFileSync(join(root, 'b', 'labels.csv'), 'utf8'));
    assert.deepEqual(await datasetHash(join(root, 'a')), await datasetHash(join(root, 'b')));

    const csv = parseCsv(readFileSync(join(root, 'a', 'labels.csv'), 'utf8'));
    assert.deepEqual(csv.header.slice(0, 4), ['file', 'label', 'patient_id', 'view']);
    const ds = await loadDataset(join(root, 'a'), { requireMasks: true });
    assert.equal(ds.masked, 5);
    for (const item of ds.items) {
      const s = await readSample(item);
      assert.equal(s.image.width, Number(item.fields.width));
      assert.equal(s.image.height, Number(item.fields.height));
      const meta = await sharp(item.mask!).metadata();
      assert.deepEqual([meta.width, meta.height, meta.channels], [s.image.width, s.image.height, 1]);
      const values = new Set(s.mask!.data);
      assert.deepEqual([...values].sort(), [0, 1]);
    }

    const c = await writeSynthDataset({ ...opts, seed: 18, out: join(root, 'c') });
    assert.equal(c.count, 5);
    assert.notEqual((await datasetHash(join(root, 'c'))).sha256, (await datasetHash(join(root, 'a'))).sha256);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('writing into a non-empty folder needs --force, and never replaces foreign files', async () => {
  const root = tempDir('synth-force');
  try {
    await writeSynthDataset({ ...opts, count: 1, out: root });
    await assert.rejects(writeSynthDataset({ ...opts, count: 1, out: root }), /not empty/);
    await writeSynthDataset({ ...opts, count: 2, out: root, force: true });
    assert.equal(readdirSync(join(root, 'images')).length, 2);
    await assert.rejects(writeSynthDataset({ ...opts, count: 1, out: join(root, 'images'), force: true }), /other than a synthetic dataset/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('cxr-triage synth writes the dataset, reports progress and a contact sheet', () => {
  const root = tempDir('synth-cli');
  try {
    const out = join(root, 'ds');
    const sheet = join(root, 'sheet.png');
    const r = execFileSync(
      process.execPath,
      [CLI, 'synth', '--out', out, '--count', '3', '--seed', '4', '--size', '96-128', '--work-size', '96', '--preview', sheet],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    assert.match(r, /wrote 3 studies \(\d normal, \d pneumonia, \d patients\)/);
    assert.ok(existsSync(join(out, 'labels.csv')));
    assert.equal(readdirSync(join(out, 'images')).length, 3);
    assert.ok(readFileSync(sheet).subarray(1, 4).toString() === 'PNG');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('cxr-triage synth rejects bad arguments with a clear error', async () => {
  const bad = async (args: string[], re: RegExp): Promise<void> => {
    const r = await runCli(['synth', '--out', tempDir('x'), ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  };
  await bad(['--size', '10-20'], /error E_BAD_ARGUMENT: size range/);
  await bad(['--size', 'big'], /error E_BAD_ARGUMENT: --size must be N or MIN-MAX/);
  await bad(['--pneumonia-rate', '1.5'], /error E_BAD_ARGUMENT: pneumonia rate must be in \[0,1\]/);
  await bad(['--count', '0'], /error E_BAD_ARGUMENT: --count must be an integer >= 1/);
});
