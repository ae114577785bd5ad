/**
 * `cxr-triage inspect` and `render`: output, PNG, exit codes, error lines. The first test
 * runs the real bin/cxr-triage.js; the others run the commands in-process (same program).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readWindowed } from '../../src/dicom/index.js';
import { runCli } from '../support/cli.js';
import { scratchDir } from '../support/dicom.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'fixtures/dicom/cr-mono1-u12.jpeg-lossless-sv1.dcm');

function spawned(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin/cxr-triage.js'), ...args], { encoding: 'utf8', cwd: ROOT });
}

const cli = (...args: string[]) => runCli(args);

test('inspect prints the metadata as JSON without decoding pixels', () => {
  const r = spawned('inspect', FIXTURE);
  assert.equal(r.status, 0, r.stderr);
  const meta = JSON.parse(r.stdout);
  assert.equal(meta.modality, 'CR');
  assert.equal(meta.photometricInterpretation, 'MONOCHROME1');
  assert.equal(meta.transferSyntaxUid, '1.2.840.10008.1.2.4.70');
  assert.deepEqual([meta.rows, meta.columns], [80, 96]);
  assert.equal(meta.patientId, 'FIXTURE-CR-MONO1-U12');
  assert.deepEqual(meta.imagerPixelSpacing, [0.4, 0.4]);
});

test('render writes an 8-bit grayscale PNG at native size, round(255*y), and says which window it used', async () => {
  const out = join(scratchDir('cli'), 'cr.png');
  const r = await cli('render', FIXTURE, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /window header C2048\/W4096/);
  const png = readFileSync(out);
  assert.deepEqual([png[24], png[25]], [8, 0]); // bit depth 8, colour type 0 (grayscale)
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [96, 80]);
  const img = await readWindowed(new Uint8Array(readFileSync(FIXTURE)));
  for (let i = 0; i < img.data.length; i++) assert.equal(data[i], Math.round(255 * img.data[i]));

  const lung = await cli('render', FIXTURE, '--out', out, '--window', 'lung');
  assert.equal(lung.code, 0, lung.stderr);
  assert.match(lung.stdout, /window lung C-600\/W1500/);
  const explicit = await cli('render', FIXTURE, '--out', out, '--center', '1000', '--width', '500');
  assert.match(explicit.stdout, /window explicit C1000\/W500/);
});

test('input errors exit 2 with one line `error E_CODE: message`', async () => {
  const dir = scratchDir('cli-errors');
  const text = join(dir, 'not.dcm');
  writeFileSync(text, 'plain text, not DICOM\n'.repeat(20));
  const cases: [string[], string][] = [
    [['inspect', text], 'E_NOT_DICOM'],
    [['render', text, '--out', join(dir, 'x.png')], 'E_NOT_DICOM'],
    [['render', join(dir, 'missing.dcm'), '--out', join(dir, 'x.png')], 'E_NOT_FOUND'],
    [['render', FIXTURE, '--out', join(dir, 'x.png'), '--window', 'bone'], 'E_BAD_ARGUMENT'],
    [['render', FIXTURE, '--out', join(dir, 'x.png'), '--center', '10'], 'E_BAD_ARGUMENT'],
    [['render', FIXTURE, '--out', join(dir, 'x.png'), '--center', '10', '--width', 'wide'], 'E_BAD_ARGUMENT'],
  ];
  for (const [args, codeName] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error ${codeName}: [^\\n]+\\n$`), args.join(' '));
  }
});

test('render and inspect have --help', async () => {
  for (const sub of ['render', 'inspect']) {
    const r = await cli(sub, '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`Usage: cxr-triage ${sub}`));
  }
});
