import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { tempDir } from '../support/data.js';

const hasDciodvfy = spawnSync('sh', ['-c', 'command -v dciodvfy']).status === 0;

test('synthetic CR and DX files pass the dicom3tools IOD validator with no errors', {
  skip: !hasDciodvfy && 'dciodvfy missing: .ci/run installs dicom3tools',
}, async () => {
  const root = tempDir('iod');
  try {
    // Seed 5 yields both CR and DX studies at these sizes.
    await writeSynthDataset({ out: root, count: 6, seed: 5, sizeMin: 256, sizeMax: 320, workSize: 256 });
    const files = readdirSync(join(root, 'images'));
    const modalities = new Set<string>();
    for (const f of files) {
      const path = join(root, 'images', f);
      const r = spawnSync('dciodvfy', [path], { encoding: 'utf8' });
      const errors = (r.stderr + r.stdout).split('\n').filter((l) => l.startsWith('Error'));
      assert.deepEqual(errors, [], `${f}: ${errors.join('; ')}`);
      const dump = execFileSync('dcmdump', ['+P', '0008,0060', path], { encoding: 'utf8' });
      modalities.add(/\[(\w+)\]/.exec(dump)?.[1] ?? '?');
    }
    assert.deepEqual([...modalities].sort(), ['CR', 'DX']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
