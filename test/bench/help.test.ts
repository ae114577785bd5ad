import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { nodeArgsFor } from '../support/compiled.js';

const repo = resolve(import.meta.dirname, '..', '..');

test('every runnable bench prints its usage for --help and exits 0 before doing any work', async () => {
  for (const [script, says] of [
    ['dicom-window.ts', 'npx tsx bench/dicom-window.ts'],
    ['latency.ts', 'npx tsx bench/latency.ts'],
    ['load.ts', 'npx tsx bench/load.ts'],
    ['fault.ts', 'npx tsx bench/fault.ts'],
    ['web.ts', 'npx tsx bench/web.ts'],
    ['model-sheet.ts', 'npx tsx bench/model-sheet.ts'],
    ['synth.ts', 'bench/synth.ts'],
    ['train.ts', 'npx tsx bench/train.ts'],
    ['train-profile.ts', 'train-profile'],
  ]) {
    const r = spawnSync(process.execPath, [...(await nodeArgsFor(join(repo, 'bench', script))), '--help'], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `${script}: ${r.stderr}`);
    assert.ok(r.stdout.includes(says), `${script} --help printed: ${r.stdout.slice(0, 200)}`);
    assert.ok(!r.stdout.includes('/**'), `${script}: the comment markers are stripped`);
  }
});
