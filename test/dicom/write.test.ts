/**
 * The Part 10 writer: DCMTK parses every syntax without a warning, pydicom reads the pixels
 * back, elements are sorted with even lengths, the file meta group length is right, and CR/DX
 * carry their IOD's Type 1/2 attributes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dicomParser from 'dicom-parser';
import { decodeModality, encodeDicom, newUid, readMetadata, type ImageToWrite, type WriteSyntax } from '../../src/dicom/index.js';
import { CxrError } from '../../src/errors.js';
import { PYTHON, runTool, scratchDir } from '../support/dicom.js';

const SYNTAXES: WriteSyntax[] = ['explicit-le', 'implicit-le', 'explicit-be', 'deflated-explicit-le'];
const MODALITIES = ['CR', 'DX', 'CT', 'OT'] as const;
const DUMP_SCRIPT = fileURLToPath(new URL('./pydicom_dump.py', import.meta.url));

function sample(modality: ImageToWrite['modality'], id: string, bits: 8 | 16 = 16): ImageToWrite {
  const n = 7 * 5; // odd pixel count: 8-bit pixel data needs a pad byte
  return {
    rows: 5,
    columns: 7,
    bitsAllocated: bits,
    bitsStored: bits === 8 ? 8 : 12,
    pixelRepresentation: bits === 8 ? 0 : 1,
    photometric: 'MONOCHROME1',
    pixels: bits === 8 ? Uint8Array.from({ length: n }, (_, i) => (i * 7) % 256) : Int16Array.from({ length: n }, (_, i) => i * 113 - 2000),
    modality,
    studyInstanceUid: newUid(['write-test', id, 'study']),
    seriesInstanceUid: newUid(['write-test', id, 'series']),
    sopInstanceUid: newUid(['write-test', id, 'sop']),
    patientId: 'WRITE-1',
    patientName: 'Test^Writer',
    viewPosition: 'PA',
    bodyPartExamined: 'CHEST',
    rescaleSlope: modality === 'DX' ? undefined : 1.5,
    rescaleIntercept: modality === 'DX' ? undefined : -24,
    windowCenter: 100,
    windowWidth: 3000,
    pixelSpacing: [0.143, 0.143],
  };
}

const dir = scratchDir('write');
const written: { path: string; img: ImageToWrite; syntax: WriteSyntax }[] = [];
for (const syntax of SYNTAXES)
  for (const modality of MODALITIES)
    for (const bits of [8, 16] as const) {
      const img = sample(modality, `${syntax}-${modality}-${bits}`, bits);
      const path = join(dir, `${syntax}-${modality}-${bits}.dcm`);
      writeFileSync(path, encodeDicom(img, { transferSyntax: syntax }));
      written.push({ path, img, syntax });
    }

test('DCMTK reads every syntax x modality x bit depth as a valid Part 10 file, with no warning', () => {
  for (const { path } of written) {
    assert.match(runTool('dcmftest', [path], 'DCMTK Part 10 test'), /^yes:/);
    const r = spawnSync('dcmdump', ['--log-level', 'warn', path], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${path}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${path}: ${r.stderr}`);
    assert.match(r.stdout, /\(7fe0,0010\) O[BW]/);
  }
});

test('pydicom reads back the stored values, rescaled, from every written file', () => {
  const out = scratchDir('write-pydicom');
  const records = runTool(PYTHON, [DUMP_SCRIPT, out, ...written.map((w) => w.path)], 'pydicom')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { file: string; decoded?: boolean; values?: string; error?: string });
  for (const [i, rec] of records.entries()) {
    const { img } = written[i];
    assert.equal(rec.decoded, true, `${rec.file}: ${rec.error}`);
    const raw = readFileSync(rec.values!);
    const values = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const slope = img.rescaleSlope ?? 1;
    const intercept = img.rescaleIntercept ?? 0;
    assert.deepEqual(
      [...values],
      [...img.pixels].map((v) => v * slope + intercept),
      rec.file,
    );
  }
});

test('our reader round-trips every written file', async () => {
  for (const { path, img, syntax } of written) {
    const mod = await decodeModality(new Uint8Array(readFileSync(path)));
    const slope = img.rescaleSlope ?? 1;
    const intercept = img.rescaleIntercept ?? 0;
    assert.deepEqual(
      [...mod.values],
      [...img.pixels].map((v) => Math.fround(v * slope + intercept)),
      `${syntax} ${img.modality}`,
    );
    assert.equal(mod.meta.patientId, 'WRITE-1');
    assert.equal(mod.meta.photometricInterpretation, 'MONOCHROME1');
  }
});

test('elements are sorted by tag with even lengths; the meta group length counts the meta bytes', () => {
  for (const { path, syntax } of written.filter((w) => w.syntax !== 'deflated-explicit-le')) {
    const bytes = new Uint8Array(readFileSync(path));
    const ds = dicomParser.parseDicom(bytes);
    const tags = Object.keys(ds.elements);
    const inFileOrder = [...tags].sort((a, b) => ds.elements[a].dataOffset - ds.elements[b].dataOffset);
    assert.deepEqual(inFileOrder, [...tags].sort(), `${syntax}: tags out of order`);
    for (const t of tags) assert.equal(ds.elements[t].length % 2, 0, `${syntax}: ${t} has odd length`);
    const groupLength = ds.uint32('x00020000');
    const metaEnd = Math.max(...tags.filter((t) => t.startsWith('x0002')).map((t) => ds.elements[t].dataOffset + ds.elements[t].length));
    const groupStart = ds.elements.x00020000.dataOffset + 4;
    assert.equal(groupLength, metaEnd - groupStart, syntax);
  }
});

function tagsOf(path: string): Set<string> {
  const dump = runTool('dcmdump', [path], 'dcmdump');
  return new Set([...dump.matchAll(/^\(([0-9a-f]{4},[0-9a-f]{4})\)/gm)].map((m) => m[1]));
}

test('CR and DX files carry the Type 1 and Type 2 attributes of their IODs', () => {
  // Patient, General Study, General Series, General Equipment, General Image, Image Pixel, SOP Common
  const common = [
    '0010,0010',
    '0010,0020',
    '0010,0030',
    '0010,0040',
    '0020,000d',
    '0008,0020',
    '0008,0030',
    '0008,0090',
    '0020,0010',
    '0008,0050',
    '0008,0060',
    '0020,000e',
    '0020,0011',
    '0008,0070',
    '0020,0013',
    '0020,0020',
    '0028,0002',
    '0028,0004',
    '0028,0010',
    '0028,0011',
    '0028,0100',
    '0028,0101',
    '0028,0102',
    '0028,0103',
    '7fe0,0010',
    '0008,0016',
    '0008,0018',
  ];
  const cr = [...common, '0018,0015', '0018,5101']; // CR Series
  const dx = [
    ...common,
    '0008,0068',
    '0020,0062',
    '0008,2218',
    '0008,0008',
    '0028,1040',
    '0028,1041',
    '0028,1052',
    '0028,1053',
    '0028,1054',
    '0028,2110',
    '0028,0301',
    '2050,0020',
    '0018,7004',
    '0018,1164',
    '0040,0555',
    '0028,1050',
    '0028,1051',
  ];
  const crFile = written.find((w) => w.img.modality === 'CR' && w.syntax === 'explicit-le')!.path;
  const dxFile = written.find((w) => w.img.modality === 'DX' && w.syntax === 'explicit-le')!.path;
  const crTags = tagsOf(crFile);
  const dxTags = tagsOf(dxFile);
  assert.deepEqual(
    cr.filter((t) => !crTags.has(t)),
    [],
  );
  assert.deepEqual(
    dx.filter((t) => !dxTags.has(t)),
    [],
  );
  const dxMeta = readMetadata(new Uint8Array(readFileSync(dxFile)));
  assert.equal(dxMeta.sopClassUid, '1.2.840.10008.5.1.4.1.1.1.1');
  assert.equal(dxMeta.rescaleType, 'US');
});

test('newUid is deterministic, distinct per seed, a 2.25 UID of at most 64 characters', () => {
  assert.equal(newUid(['a', 1]), newUid(['a', 1]));
  assert.notEqual(newUid(['a', 1]), newUid(['a', 2]));
  assert.notEqual(newUid(['a1']), newUid(['a', 1]));
  for (let i = 0; i < 200; i++) {
    const uid = newUid(['uid', i]);
    assert.match(uid, /^2\.25\.(0|[1-9][0-9]*)$/);
    assert.ok(uid.length <= 64);
  }
});

test('the writer refuses inconsistent images with E_BAD_ARGUMENT', () => {
  const base = sample('CR', 'bad');
  const bad: Partial<ImageToWrite>[] = [
    { pixels: new Int16Array(3) },
    { pixels: Int16Array.from({ length: 35 }, () => 5000) }, // beyond 12-bit signed
    { bitsStored: 17 },
    { highBit: 16 },
    { sopInstanceUid: '1.2.03' },
    { windowCenter: 1, windowWidth: undefined },
  ];
  for (const b of bad)
    assert.throws(
      () => encodeDicom({ ...base, ...b } as ImageToWrite),
      (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
      JSON.stringify(Object.keys(b)),
    );
});
