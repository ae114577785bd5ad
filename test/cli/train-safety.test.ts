/**
 * Safe data and safe stops for `train`, through the CLI: a corrupt image is reported by line
 * before any epoch runs and leaves no run or version folder; `validate-dataset` lists every
 * problem; `--skip-bad` trains without the bad rows and records them; a label written
 * `Pneumonia ` is read with a warning; Ctrl-C prints the --resume command and exits 130, and
 * the run resumes. Tiny U-Net on 12 small phantoms, one thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-train-safety-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const data = join(tmp, 'data');
const tiny = ['--base', '2', '--depth', '2', '--size', '32', '--batch', '4', '--accumulate', '1', '--split', '50/25/25', '--workers', '0', '--no-onnx'];

// in this process (same program); the Ctrl-C case starts a real process
const cli = (...args: string[]) => runCli(args);

test.before(async () => {
  const r = await cli('synth', '--out', data, '--count', '12', '--seed', '5', '--size', '96-128', '--work-size', '96', '--quiet');
  assert.equal(r.code, 0, r.stderr);
});

test('a corrupt image is reported by its labels.csv line before any epoch runs, and no run or version folder appears; validate-dataset lists it; --skip-bad trains without it', async () => {
  const lines = readFileSync(join(data, 'labels.csv'), 'utf8').trim().split('\n');
  const victim = lines[3].split(',')[0];
  truncateSync(join(data, victim), 400);
  // a label with other case and a trailing space is read, with a warning naming the line
  lines[2] = lines[2].replace(/,(normal|pneumonia),/, (_, l: string) => `,${l[0].toUpperCase()}${l.slice(1)} ,`);
  writeFileSync(join(data, 'labels.csv'), `${lines.join('\n')}\n`);

  const out = join(tmp, 'models', 'segmenter');
  const runs = join(tmp, 'runs');
  const r = await cli('train', 'segmenter', '--data', data, '--out', out, '--runs', runs, '--run-id', 'bad', '--epochs', '1', ...tiny);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`error E_BAD_DATASET: 1 of 12 rows .* cannot be used; nothing was trained or written:\\n  labels\\.csv line 4: ${victim}: `),
  );
  assert.match(r.stderr, /--skip-bad/);
  assert.match(r.stderr, /warning: labels\.csv: label '(Normal|Pneumonia) ?' read as '(normal|pneumonia)' \(line 3\)/);
  assert.doesNotMatch(r.stderr, /epoch 1/);
  assert.equal(existsSync(join(runs, 'bad')), false, 'no run folder');
  assert.equal(existsSync(out) && readdirSync(out).length > 0, false, 'no version folder');

  const v = await cli('validate-dataset', data);
  assert.equal(v.code, 2);
  assert.match(v.stdout, new RegExp(`^labels\\.csv line 4: ${victim}: .*E_TRUNCATED|^labels\\.csv line 4: ${victim}: `, 'm'));
  assert.match(v.stdout, /^12 rows, 11 usable, 1 with problems$/m);
  const json = JSON.parse((await cli('validate-dataset', data, '--json')).stdout) as { problems: { line: number; file: string }[] };
  assert.deepEqual(
    json.problems.map((p) => [p.line, p.file]),
    [[4, victim]],
  );

  // --skip-bad and the epochs from a YAML --config (kept with the run); flags on the command line win
  const cfg = join(tmp, 'train.yaml');
  writeFileSync(cfg, 'epochs: 1\nskip-bad: true\nsize: 48\nrun-id: skip\n');
  const skip = await cli('train', 'segmenter', '--config', cfg, '--data', data, '--out', out, '--runs', runs, ...tiny);
  assert.equal(skip.code, 0, skip.stderr);
  assert.equal(readFileSync(join(runs, 'skip', 'train-config.yaml'), 'utf8'), readFileSync(cfg, 'utf8'));
  writeFileSync(join(tmp, 'bad.json'), '{"epochz": 1}');
  const badCfg = await cli('train', 'segmenter', '--config', join(tmp, 'bad.json'), '--data', data, '--out', out);
  assert.equal(badCfg.code, 2);
  assert.match(badCfg.stderr, /unknown option 'epochz'/);
  assert.match(skip.stderr, /--skip-bad: training without 1 of 12 rows/);
  assert.match(readFileSync(join(runs, 'skip', 'skipped.csv'), 'utf8'), new RegExp(`^4,${victim.replace('.', '\\.')},`, 'm'));
  const manifest = JSON.parse(readFileSync(join(skip.stdout.trim(), 'manifest.json'), 'utf8'));
  assert.equal(manifest.training.skippedRows, 1);
  assert.equal(manifest.training.dataSize, 11);
  assert.equal(manifest.training.config.epochs, 1);
  assert.equal(manifest.inputSize, 32);
  // only published versions: no staging folder is left beside them
  assert.deepEqual(
    readdirSync(out).filter((e) => e.startsWith('.')),
    [],
  );
});

test('Ctrl-C during training prints the command that resumes the run, exits 130, and that command finishes it', async () => {
  const clean = join(tmp, 'clean');
  assert.equal((await cli('synth', '--out', clean, '--count', '8', '--seed', '6', '--size', '96-128', '--work-size', '96', '--quiet')).code, 0);
  const out = join(tmp, 'models2', 'segmenter');
  const runs = join(tmp, 'runs2');
  const child = startCli(['train', 'segmenter', '--data', clean, '--out', out, '--runs', runs, '--run-id', 'r', '--epochs', '40', ...tiny]);
  let stderr = '';
  const status = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (/^epoch 1:/m.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    child.on('close', (code) => resolve(code));
  });
  assert.equal(status, 130, stderr);
  assert.match(
    stderr,
    /interrupted: .* keeps its checkpoint after the last finished epoch\. Resume with:\n {2}cxr-triage train segmenter --out \S+ --runs \S+ --resume r\n/,
  );
  const resume = stderr.match(/cxr-triage train segmenter (--out \S+ --runs \S+ --resume r)/)![1].split(' ');
  const r = await cli('train', 'segmenter', ...resume, '--epochs', '2', '--workers', '0', '--no-onnx');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /resuming .* after epoch [12]/);
  assert.ok(existsSync(join(r.stdout.trim(), 'manifest.json')));
});
