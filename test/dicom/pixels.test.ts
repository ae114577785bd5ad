/** Pixel arithmetic with exact expected values: VOI functions, stored-value extraction, modality LUT, MONOCHROME1, policies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyWindow, chooseWindow, encodeDicom, newUid, parseWindowPolicy, readWindowed, readWindowedFrame, decodeModality } from '../../src/dicom/index.js';
import type { DicomMetadata, ImageToWrite, LookupTable, ModalityImage } from '../../src/dicom/index.js';
import { storedValue, toModality } from '../../src/dicom/modality.js';
import { valueRange } from '../../src/dicom/window.js';
import { linear, linearExact, mapValues, sigmoid, voiLut } from '../../src/dicom/voi.js';
import { nativeWords } from '../../src/dicom/words.js';
import { decodeRle, unpackBits } from '../../src/dicom/codecs/rle.js';
import { CxrError } from '../../src/errors.js';
import { readPgm, runTool, scratchDir } from '../support/dicom.js';

test('LINEAR window (PS3.3 C.11.2.1.2.1) at W1500/L-600: borders and interior', () => {
  // left border c-0.5-(w-1)/2 = -1350, right border c-0.5+(w-1)/2 = 149
  assert.equal(linear(-1350, -600, 1500), 0);
  assert.equal(linear(-2000, -600, 1500), 0);
  assert.equal(linear(-1349, -600, 1500), -748.5 / 1499 + 0.5); // = 1/1499 up to rounding
  assert.ok(Math.abs(linear(-1349, -600, 1500) - 1 / 1499) < 1e-15);
  assert.equal(linear(149, -600, 1500), 749.5 / 1499 + 0.5);
  assert.equal(linear(149, -600, 1500), 1);
  assert.equal(linear(149.0001, -600, 1500), 1);
  assert.equal(linear(-600, -600, 1500), 0.5 / 1499 + 0.5);
});

test('LINEAR window with C=2^(n-1), W=2^n maps 0..2^n-1 onto [0,1] exactly', () => {
  assert.equal(linear(0, 2048, 4096), 0);
  assert.equal(linear(4095, 2048, 4096), 1);
  assert.equal(linear(2048, 2048, 4096), 0.5 / 4095 + 0.5);
});

test('LINEAR window of width 1 is a threshold at c-0.5', () => {
  assert.equal(linear(9.5, 10, 1), 0);
  assert.equal(linear(9.6, 10, 1), 1);
  const out = mapValues(Float32Array.from([9, 9.5, 10, 11]), { kind: 'linear', center: 10, width: 1 }, false);
  assert.deepEqual([...out], [0, 0, 1, 1]);
});

test('LINEAR_EXACT and SIGMOID VOI functions', () => {
  assert.equal(linearExact(100, 100, 50), 0.5);
  assert.equal(linearExact(75, 100, 50), 0);
  assert.equal(linearExact(125, 100, 50), 1);
  assert.equal(linearExact(110, 100, 50), 0.7);
  assert.equal(sigmoid(100, 100, 50), 0.5);
  assert.equal(sigmoid(125, 100, 50), 1 / (1 + Math.exp(-2)));
});

test('mapValues inverts MONOCHROME1 after windowing: y -> 1 - y', () => {
  const values = Float32Array.from([-1350, -600, 149, 500]);
  const plain = mapValues(values, { kind: 'linear', center: -600, width: 1500 }, false);
  const inverted = mapValues(values, { kind: 'linear', center: -600, width: 1500 }, true);
  assert.deepEqual([...plain], [0, Math.fround(0.5 / 1499 + 0.5), 1, 1]);
  assert.deepEqual([...inverted], [1, Math.fround(1 - (0.5 / 1499 + 0.5)), 0, 0]);
});

test('stored values: BitsStored masking, HighBit shift, sign extension', () => {
  const u12 = { bitsStored: 12, shift: 0, signed: false };
  const s12 = { bitsStored: 12, shift: 0, signed: true };
  assert.equal(storedValue(0xf123, u12), 0x123); // leftover overlay bits are dropped
  assert.equal(storedValue(0x0fff, u12), 4095);
  assert.equal(storedValue(0x0fff, s12), -1);
  assert.equal(storedValue(0x0800, s12), -2048);
  assert.equal(storedValue(0x07ff, s12), 2047);
  assert.equal(storedValue(0xffff, s12), -1);
  assert.equal(storedValue(0x7800, s12), -2048); // garbage above bit 11 does not change the sign
  const hb15 = { bitsStored: 12, shift: 4, signed: true };
  assert.equal(storedValue(0xfff0, hb15), -1);
  assert.equal(storedValue(0x7ff5, hb15), 2047); // low 4 bits below the field are ignored
  assert.equal(storedValue(0xfff0, { ...hb15, signed: false }), 4095);
  assert.equal(storedValue(0x8000, { bitsStored: 16, shift: 0, signed: true }), -32768);
  assert.equal(storedValue(0xffffffff, { bitsStored: 32, shift: 0, signed: false }), 4294967295);
  assert.equal(storedValue(0xffffffff, { bitsStored: 32, shift: 0, signed: true }), -1);
  assert.equal(storedValue(0xff, { bitsStored: 7, shift: 0, signed: false }), 127);
});

test('toModality applies the same masking in its fast loops, then slope and intercept', () => {
  const words = Uint16Array.from([0xf123, 0x0fff, 0x0800, 0x07ff]);
  assert.deepEqual(
    [...toModality(words, 4, { bitsStored: 12, shift: 0, signed: false }, { kind: 'rescale', slope: 2, intercept: -1024 })],
    [0x123 * 2 - 1024, 4095 * 2 - 1024, 2048 * 2 - 1024, 2047 * 2 - 1024],
  );
  assert.deepEqual(
    [...toModality(words, 4, { bitsStored: 12, shift: 0, signed: true }, { kind: 'rescale', slope: 0.5, intercept: 10 })],
    [0x123 * 0.5 + 10, -1 * 0.5 + 10, -2048 * 0.5 + 10, 2047 * 0.5 + 10],
  );
  const signed16 = Int16Array.from([-32768, -1, 0, 32767]);
  assert.deepEqual(
    [...toModality(signed16, 4, { bitsStored: 16, shift: 0, signed: true }, { kind: 'rescale', slope: 1, intercept: 0 })],
    [-32768, -1, 0, 32767],
  );
});

test('modality LUT sequence maps stored values through the table, clamped at both ends', () => {
  const lut: LookupTable = { firstMapped: -2, bits: 16, data: Uint16Array.from([10, 20, 30]), explanation: null };
  const words = Int16Array.from([-5, -2, -1, 0, 5]);
  assert.deepEqual([...toModality(words, 5, { bitsStored: 16, shift: 0, signed: true }, { kind: 'lut', lut })], [10, 10, 20, 30, 30]);
});

test('VOI LUT output is scaled by the descriptor bit depth', () => {
  const lut: LookupTable = { firstMapped: 100, bits: 8, data: Uint16Array.from([0, 51, 255]), explanation: null };
  assert.equal(voiLut(50, lut), 0);
  assert.equal(voiLut(101, lut), 51 / 255);
  assert.equal(voiLut(1000, lut), 1);
});

test('native words: little and big endian, unaligned offsets and 1-bit packing read the same values', () => {
  const le = new Uint8Array([0, 0x34, 0x12, 0xcd, 0xab]); // odd offset 1
  assert.deepEqual([...nativeWords(le, 1, 4, 2, 16, true)], [0x1234, 0xabcd]);
  const be = new Uint8Array([0x12, 0x34, 0xab, 0xcd]);
  assert.deepEqual([...nativeWords(be, 0, 4, 2, 16, false)], [0x1234, 0xabcd]);
  const be32 = new Uint8Array([0x01, 0x02, 0x03, 0x04]);
  assert.deepEqual([...nativeWords(be32, 0, 4, 1, 32, false)], [0x01020304]);
  const bits = new Uint8Array([0b10100101, 0b00000001]);
  assert.deepEqual([...nativeWords(bits, 0, 2, 9, 1, true)], [1, 0, 1, 0, 0, 1, 0, 1, 1]);
  assert.throws(
    () => nativeWords(le, 1, 4, 3, 16, true),
    (e: unknown) => e instanceof CxrError && e.code === 'E_TRUNCATED',
  );
});

test('RLE PackBits: literal runs, replicate runs and the -128 no-op', () => {
  const src = Uint8Array.from([2, 7, 8, 9, 0xfe, 5, 0x80, 0]); // literal 3, replicate 3, no-op, literal 1...
  const out = new Uint8Array(7);
  unpackBits(Uint8Array.from([...src, 6]), 0, 9, out);
  assert.deepEqual([...out], [7, 8, 9, 5, 5, 5, 6]);
  assert.throws(
    () => unpackBits(Uint8Array.from([5, 1]), 0, 2, new Uint8Array(6)),
    (e: unknown) => e instanceof CxrError && e.code === 'E_DECODE_FAILED',
  );
});

test('RLE 16-bit frame: segment 0 holds the high bytes', () => {
  const header = new Uint8Array(64);
  const view = new DataView(header.buffer);
  view.setUint32(0, 2, true);
  view.setUint32(4, 64, true);
  view.setUint32(8, 68, true);
  const hi = [0xfd, 0x12, 0, 0]; // replicate 0x12 four times (257-0xfd = 4), padded
  const lo = [3, 1, 2, 3, 4]; // literal 4
  const frame = Uint8Array.from([...header, ...hi, ...lo]);
  assert.deepEqual([...decodeRle(frame, 4, 16)], [0x1201, 0x1202, 0x1203, 0x1204]);
});

function meta(overrides: Partial<DicomMetadata> = {}): DicomMetadata {
  return {
    studyInstanceUid: null,
    seriesInstanceUid: null,
    sopInstanceUid: null,
    sopClassUid: null,
    patientId: null,
    accessionNumber: null,
    studyDate: null,
    modality: 'CR',
    viewPosition: null,
    bodyPartExamined: null,
    photometricInterpretation: 'MONOCHROME2',
    rows: 1,
    columns: 4,
    pixelSpacing: null,
    imagerPixelSpacing: null,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    transferSyntaxName: 'Explicit VR Little Endian',
    bitsAllocated: 16,
    bitsStored: 16,
    highBit: 15,
    pixelRepresentation: 0,
    samplesPerPixel: 1,
    numberOfFrames: 1,
    rescaleSlope: 1,
    rescaleIntercept: 0,
    rescaleType: null,
    windowCenter: [],
    windowWidth: [],
    voiLutFunction: 'LINEAR',
    hasModalityLut: false,
    hasVoiLut: false,
    hasPixelData: true,
    ...overrides,
  };
}

function image(values: number[], m: Partial<DicomMetadata> = {}, voi: LookupTable | null = null): ModalityImage {
  return { meta: meta({ columns: values.length, ...m }), width: values.length, height: 1, values: Float32Array.from(values), voiLut: voi };
}

function inputs(values: number[], m: Partial<DicomMetadata> = {}, voi: LookupTable | null = null) {
  const img = image(values, m, voi);
  return { meta: img.meta, voiLut: img.voiLut ?? null, range: () => valueRange(img.values) };
}

test('auto policy: HU evidence gives the lung window', () => {
  assert.equal(chooseWindow(inputs([0, 100], { rescaleType: 'HU' }), { kind: 'auto' }).window.source, 'lung');
  assert.equal(chooseWindow(inputs([0, 100], { modality: 'CT' }), { kind: 'auto' }).window.source, 'lung');
  assert.equal(chooseWindow(inputs([0, 100], { modality: 'OT', sopClassUid: '1.2.840.10008.5.1.4.1.1.2' }), { kind: 'auto' }).window.source, 'lung');
  const below = chooseWindow(inputs([-1000, 200], { windowCenter: [40], windowWidth: [400] }), { kind: 'auto' });
  assert.equal(below.window.source, 'lung');
  assert.match(below.window.reason, /-1000/);
  assert.equal(chooseWindow(inputs([-500, 200]), { kind: 'auto' }).window.source, 'minmax'); // -500 itself is not below -500
});

test('auto policy on detector units: the file window, else its VOI LUT, else min-max', () => {
  const cr = chooseWindow(inputs([803, 26512], { windowCenter: [15000, 100], windowWidth: [30000, 10] }), { kind: 'auto' });
  assert.deepEqual([cr.window.source, cr.window.center, cr.window.width], ['header', 15000, 30000]);
  const lut: LookupTable = { firstMapped: 0, bits: 8, data: Uint16Array.from([0, 255]), explanation: null };
  assert.equal(chooseWindow(inputs([0, 1], {}, lut), { kind: 'auto' }).window.source, 'voi-lut');
  const mm = chooseWindow(inputs([803, 26512]), { kind: 'auto' });
  assert.deepEqual([mm.window.source, mm.window.center, mm.window.width], ['minmax', (803 + 26512 + 1) / 2, 26512 - 803 + 1]);
  // A width below 1 is not a usable LINEAR window: fall through to min-max.
  assert.equal(chooseWindow(inputs([0, 10], { windowCenter: [5], windowWidth: [0.5] }), { kind: 'auto' }).window.source, 'minmax');
});

test('min-max window maps the minimum to 0 and the maximum to 1', () => {
  const out = applyWindow(image([803, 13657.5, 26512]), { kind: 'minmax' });
  assert.deepEqual([...out.data], [0, 0.5, 1]);
});

test('lung policy on detector units renders white, as DESIGN warns', () => {
  const out = applyWindow(image([803, 26512], { windowCenter: [15000], windowWidth: [30000] }), { kind: 'lung' });
  assert.deepEqual([...out.data], [1, 1]);
  assert.equal(out.window.policy, 'lung');
});

test('explicit and parsed policies; bad widths are E_BAD_ARGUMENT', () => {
  assert.deepEqual(parseWindowPolicy(undefined), { kind: 'auto' });
  assert.deepEqual(parseWindowPolicy('minmax'), { kind: 'minmax' });
  assert.deepEqual(parseWindowPolicy(undefined, 40, 400), { kind: 'explicit', center: 40, width: 400 });
  for (const bad of [
    () => parseWindowPolicy('bone'),
    () => parseWindowPolicy(undefined, 40),
    () => parseWindowPolicy(undefined, 40, 0),
    () => parseWindowPolicy('lung', 1, 2),
  ])
    assert.throws(bad, (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT');
  assert.throws(
    () => applyWindow(image([1]), { kind: 'explicit', center: 0, width: 0.5 }),
    (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
  );
});

function tiny(overrides: Partial<ImageToWrite>): Uint8Array {
  return encodeDicom({
    rows: 1,
    columns: 4,
    bitsAllocated: 16,
    bitsStored: 12,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME1',
    pixels: Uint16Array.from([0, 1024, 2048, 4095]),
    modality: 'CR',
    studyInstanceUid: newUid(['pixels', 'study']),
    seriesInstanceUid: newUid(['pixels', 'series']),
    sopInstanceUid: newUid(['pixels', 'sop']),
    patientId: 'P',
    ...overrides,
  } as ImageToWrite);
}

test('end to end: MONOCHROME1 12-bit with a header window decodes and inverts to exact values', async () => {
  const bytes = tiny({ windowCenter: 2048, windowWidth: 4096, unusedBits: 'ones' });
  const mod = await decodeModality(bytes);
  assert.deepEqual([...mod.values], [0, 1024, 2048, 4095]);
  const img = await readWindowed(bytes);
  assert.equal(img.window.source, 'header');
  const expected = [0, 1024, 2048, 4095].map((x) => Math.fround(1 - linear(x, 2048, 4096)));
  assert.deepEqual([...img.data], expected);
  assert.equal(img.data[0], 1);
  assert.equal(img.data[3], 0);
});

test('end to end: a modality LUT sequence in the file replaces rescale', async () => {
  const bytes = tiny({ pixels: Uint16Array.from([0, 1, 2, 9]), modalityLut: { firstMapped: 1, bits: 16, data: [100, 200] } });
  const mod = await decodeModality(bytes);
  assert.deepEqual([...mod.values], [100, 100, 200, 200]);
  assert.equal(mod.meta.hasModalityLut, true);
});

test('readWindowed (per-word table) equals applyWindow(decodeModality()) for every policy and format', async () => {
  const side = 600; // 360000 pixels: large enough for decodeModality's table path too
  const n = side * side;
  const variants: Partial<ImageToWrite>[] = [
    {
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME1',
      pixels: Uint16Array.from({ length: n }, (_, i) => (i * 37) % 4096),
      windowCenter: 1500,
      windowWidth: 2500,
    },
    {
      bitsStored: 16,
      pixelRepresentation: 1,
      photometric: 'MONOCHROME2',
      pixels: Int16Array.from({ length: n }, (_, i) => ((i * 101) % 3000) - 1500),
      rescaleSlope: 0.5,
      rescaleIntercept: -300,
    },
    { bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, photometric: 'MONOCHROME1', pixels: Uint8Array.from({ length: n }, (_, i) => (i * 13) % 256) },
    {
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels: Uint16Array.from({ length: n }, (_, i) => (i * 7) % 4096),
      voiLut: { firstMapped: 100, bits: 8, data: Array.from({ length: 3000 }, (_, i) => Math.floor((i / 2999) * 255)) },
    },
  ];
  for (const v of variants) {
    const bytes = tiny({ rows: side, columns: side, ...v });
    const mod = await decodeModality(bytes);
    for (const policy of [{ kind: 'auto' }, { kind: 'lung' }, { kind: 'header' }, { kind: 'minmax' }, { kind: 'explicit', center: 77, width: 900 }] as const) {
      const fused = await readWindowed(bytes, { window: policy });
      const reference = applyWindow(mod, policy);
      assert.deepEqual(fused.window, reference.window);
      assert.ok(Buffer.from(fused.data.buffer).equals(Buffer.from(reference.data.buffer)), `${policy.kind} differs`);
      // the frame form (words and their table) holds the same pixels without the float copy
      const frame = await readWindowedFrame(bytes, { window: policy });
      assert.deepEqual(frame.window, reference.window);
      assert.ok(frame.codes && frame.values && frame.data === undefined);
      assert.equal(frame.codes.length, n);
      const looked = Float32Array.from(frame.codes, (c) => frame.values[c]);
      assert.ok(Buffer.from(looked.buffer).equals(Buffer.from(reference.data.buffer)), `${policy.kind} frame differs`);
    }
  }
});

test('8-bit pixels stored as OW in Explicit VR Big Endian are 16-bit words: the second byte of each is the first pixel (PS3.5 8.1.1), as DCMTK reads them', async () => {
  const pixels = Uint8Array.from([10, 20, 30, 40, 50, 60]);
  const img: ImageToWrite = {
    rows: 2,
    columns: 3,
    bitsAllocated: 8,
    bitsStored: 8,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME2',
    pixels,
    modality: 'OT',
    studyInstanceUid: newUid(['be-ow', 'study']),
    seriesInstanceUid: newUid(['be-ow', 'series']),
    sopInstanceUid: newUid(['be-ow', 'sop']),
    patientId: 'BE',
  } as ImageToWrite;
  const ob = Buffer.from(encodeDicom(img, { transferSyntax: 'explicit-be' }));
  assert.deepEqual(Array.from((await decodeModality(ob)).values), [10, 20, 30, 40, 50, 60]);
  // the same image written as OW: the pixel data header says OW and each byte pair is one big-endian word
  const header = Buffer.from([0x7f, 0xe0, 0x00, 0x10, 0x4f, 0x42]); // (7FE0,0010) OB
  const at = ob.indexOf(header);
  assert.ok(at > 0);
  const ow = Buffer.from(ob);
  ow[at + 5] = 0x57; // 'W'
  const start = at + 12;
  ow.subarray(start, start + pixels.length).swap16();
  assert.deepEqual(Array.from(ow.subarray(start, start + 6)), [20, 10, 40, 30, 60, 50]);
  assert.deepEqual(Array.from((await decodeModality(ow)).values), [10, 20, 30, 40, 50, 60]);
  // DCMTK, the reference, reads the OW file the same way
  const dir = scratchDir('be-ow');
  writeFileSync(join(dir, 'ow.dcm'), ow);
  runTool('dcm2pnm', ['--write-raw-pnm', '--no-windowing', join(dir, 'ow.dcm'), join(dir, 'ow.pgm')], 'DCMTK reference');
  assert.deepEqual(Array.from(readPgm(join(dir, 'ow.pgm')).data), [10, 20, 30, 40, 50, 60]);
});
