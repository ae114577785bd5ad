/** Output paths are checked before the long part of a command: a folder for a file (or a file on the way) is E_BAD_ARGUMENT, nothing written. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCxrError } from '../../src/errors.js';
import { checkOutputFile, checkOutputFolder } from '../../src/cli/output-paths.js';
import { runCli } from '../support/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-outputs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const afile = join(tmp, 'afile');
writeFileSync(afile, 'x');
mkdirSync(join(tmp, 'afolder'));

const refused = (re: RegExp) => (e: unknown) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT' && re.test(e.message);

test('an output file may be new, in new folders, or replace a file; not a folder, nor under a file', async () => {
  await checkOutputFile('--out', join(tmp, 'new.png'));
  await checkOutputFile('--out', join(tmp, 'new', 'deeper', 'x.png'));
  await checkOutputFile('--out', afile);
  await assert.rejects(checkOutputFile('--out', join(tmp, 'afolder')), refused(/--out: .*afolder is a folder, not a file to write/));
  await assert.rejects(checkOutputFile('--out', join(afile, 'x.png')), refused(/--out: .*afile is a file, so .*x\.png cannot be written/));
  await checkOutputFolder('--plots', join(tmp, 'afolder'));
  await checkOutputFolder('--plots', join(tmp, 'new-plots'));
  await assert.rejects(checkOutputFolder('--plots', afile), refused(/--plots: .*afile is a file, not a folder to write into/));
});

test('synth --preview into a folder is refused before any image is generated', async () => {
  const out = join(tmp, 'ds');
  const r = await runCli(['synth', '--out', out, '--count', '2', '--size', '96', '--preview', join(tmp, 'afolder')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /error E_BAD_ARGUMENT: --preview: .*afolder is a folder/);
  assert.equal(existsSync(out), false, 'nothing generated');
});

test('evaluate --plots onto a file and --per-image onto a folder are refused before scoring', async () => {
  const plots = await runCli(['evaluate', '--data', join(tmp, 'no-data-needed'), '--plots', afile]);
  assert.equal(plots.code, 2, plots.stderr);
  assert.match(plots.stderr, /error E_BAD_ARGUMENT: --plots: .*afile is a file/);
  const perImage = await runCli(['evaluate', '--data', join(tmp, 'no-data-needed'), '--per-image', join(tmp, 'afolder')]);
  assert.equal(perImage.code, 2, perImage.stderr);
  assert.match(perImage.stderr, /error E_BAD_ARGUMENT: --per-image: .*afolder is a folder/);
});

test('contact-sheet --side beyond 1024 and --out onto a folder are refused before scoring', async () => {
  const side = await runCli(['contact-sheet', '--data', join(tmp, 'no-data-needed'), '--out', join(tmp, 's.png'), '--side', '100000']);
  assert.equal(side.code, 2, side.stderr);
  assert.match(side.stderr, /--side must be at most 1024/);
  const out = await runCli(['contact-sheet', '--data', join(tmp, 'no-data-needed'), '--out', join(tmp, 'afolder')]);
  assert.equal(out.code, 2, out.stderr);
  assert.match(out.stderr, /--out: .*afolder is a folder/);
});

test('analyze refuses a --heatmap onto a folder before writing the --mask it was also asked for', async () => {
  const mask = join(tmp, 'mask.png');
  const r = await runCli(['analyze', 'fixtures/example/chest.dcm', '--mask', mask, '--heatmap', join(tmp, 'afolder')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--heatmap: .*afolder is a folder/);
  assert.equal(existsSync(mask), false, 'no picture written');
});
