/**
 * The compressed transfer syntaxes, on the committed fixtures (fixtures/dicom, made by
 * make-fixtures.ts with DCMTK's compressors): lossless ones decode to exactly the values of
 * their native source, lossy ones stay within what the codec allows, and the native files
 * regenerate byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import dicomParser from 'dicom-parser';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeModality, readMetadata, readWindowed } from '../../src/dicom/index.js';
import { TRANSFER_SYNTAX } from '../../src/dicom/uids.js';
import { CxrError } from '../../src/errors.js';
import { COMPRESSED, writeNativeFixtures } from '../../fixtures/dicom/make-fixtures.js';
import { runTool, scratchDir } from '../support/dicom.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/dicom/', import.meta.url));
const fixture = (stem: string) => new Uint8Array(readFileSync(join(FIXTURES, `${stem}.dcm`)));

const EXPECTED_SYNTAX: Record<string, string> = {
  'jpeg-lossless-sv1': TRANSFER_SYNTAX.jpegLosslessSV1,
  'jpeg-lossless-p14-sv6': TRANSFER_SYNTAX.jpegLossless,
  'jpeg-ls': TRANSFER_SYNTAX.jpegLsLossless,
  'jpeg-ls-near2': TRANSFER_SYNTAX.jpegLsNearLossless,
  rle: TRANSFER_SYNTAX.rleLossless,
  'jpeg-baseline': TRANSFER_SYNTAX.jpegBaseline,
  'jpeg-extended-12bit': TRANSFER_SYNTAX.jpegExtended,
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const LOSSLESS = COMPRESSED.filter(([, out]) => /lossless|jpeg-ls$|\.rle$/.test(out));

for (const [src, out] of LOSSLESS) {
  test(`${out} decodes to exactly the values of ${src}`, async () => {
    const kind = out.slice(src.length + 1);
    assert.equal(readMetadata(fixture(out)).transferSyntaxUid, EXPECTED_SYNTAX[kind]);
    const [a, b] = await Promise.all([decodeModality(fixture(src)), decodeModality(fixture(out))]);
    assert.equal(b.width, a.width);
    assert.equal(b.height, a.height);
    assert.equal(maxAbsDiff(a.values, b.values), 0);
  });
}

test('JPEG-LS near-lossless (NEAR=2) stays within 2 of the source on every pixel', async () => {
  const a = await decodeModality(fixture('cr-mono1-u12'));
  const b = await decodeModality(fixture('cr-mono1-u12.jpeg-ls-near2'));
  const d = maxAbsDiff(a.values, b.values);
  assert.ok(d <= 2 && d > 0, `max diff ${d}`);
});

test('JPEG baseline decodes like DCMTK dcmdjpeg (libjpeg-turbo vs IJG: within 1 on every pixel)', async () => {
  const dir = scratchDir('baseline');
  const decompressed = join(dir, 'dx-u8.native.dcm');
  runTool('dcmdjpeg', [join(FIXTURES, 'dx-u8.jpeg-baseline.dcm'), decompressed], 'DCMTK JPEG decompression');
  const ours = await decodeModality(fixture('dx-u8.jpeg-baseline'));
  const dcmtk = await decodeModality(new Uint8Array(readFileSync(decompressed)));
  const d = maxAbsDiff(ours.values, dcmtk.values);
  assert.ok(d <= 1, `max diff ${d}`);
  // and it is lossy: the source differs
  const source = await decodeModality(fixture('dx-u8'));
  assert.ok(maxAbsDiff(source.values, ours.values) > 0);
});

test('12-bit JPEG Extended is refused with E_UNSUPPORTED_SYNTAX', async () => {
  await assert.rejects(decodeModality(fixture('cr-mono1-u12.jpeg-extended-12bit')), (e: unknown) => {
    assert.ok(e instanceof CxrError);
    assert.equal(e.code, 'E_UNSUPPORTED_SYNTAX');
    return true;
  });
});

test('a compressed MONOCHROME1 CR renders like its native source under every policy', async () => {
  for (const kind of ['auto', 'header', 'minmax', 'lung'] as const) {
    const a = await readWindowed(fixture('cr-mono1-u12'), { window: { kind } });
    const b = await readWindowed(fixture('cr-mono1-u12.jpeg-lossless-sv1'), { window: { kind } });
    assert.deepEqual(b.window, a.window);
    assert.equal(maxAbsDiff(a.data, b.data), 0);
  }
});

test('auto picks the lung window for the HU fixture and the file window for the CR fixture', async () => {
  const ct = await readWindowed(fixture('ct-s16-hu.jpeg-ls'));
  assert.equal(ct.window.source, 'lung');
  assert.equal(ct.window.center, -600);
  assert.equal(ct.window.width, 1500);
  const cr = await readWindowed(fixture('cr-mono1-u12.rle'));
  assert.equal(cr.window.source, 'header');
  assert.equal(cr.window.center, 2048);
  assert.equal(cr.window.width, 4096);
});

test('the native fixtures regenerate byte for byte from make-fixtures.ts', () => {
  const dir = scratchDir('regen');
  for (const path of writeNativeFixtures(dir)) {
    const name = path.slice(dir.length + 1);
    assert.deepEqual(readFileSync(path), readFileSync(join(FIXTURES, name)), name);
  }
});

test('a lossless JPEG frame whose second half was lost is E_TRUNCATED, not a film with an invented lower half', async () => {
  const bytes = fixture('cr-mono1-u12.jpeg-lossless-sv1');
  const fragment = dicomParser.parseDicom(bytes).elements.x7fe00010.fragments![0];
  const cut = bytes.slice();
  // the file keeps its structure: the fragment's second half is zeros, as if never received
  cut.fill(0, fragment.position + Math.floor(fragment.length / 2), fragment.position + fragment.length);
  await assert.rejects(decodeModality(cut), (e: unknown) => e instanceof CxrError && e.code === 'E_TRUNCATED' && /EOI/.test(e.message));
  // the whole file still decodes
  assert.equal((await decodeModality(bytes)).values.length, 96 * 80);
});
