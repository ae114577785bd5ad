/** Bad input ends in the CxrError code that says why, before any large allocation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModality, encodeDicom, newUid, readMetadata, readWindowed, type ImageToWrite } from '../../src/dicom/index.js';
import { CxrError, type ErrorCode } from '../../src/errors.js';

function small(overrides: Partial<ImageToWrite> = {}): Uint8Array {
  return encodeDicom({
    rows: 4,
    columns: 4,
    bitsAllocated: 16,
    bitsStored: 16,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME2',
    pixels: new Uint16Array(16).fill(7),
    modality: 'CR',
    studyInstanceUid: newUid(['errors', 'study']),
    seriesInstanceUid: newUid(['errors', 'series']),
    sopInstanceUid: newUid(['errors', 'sop']),
    patientId: 'E',
    ...overrides,
  } as ImageToWrite);
}

/** Overwrites the US value of an element in an Explicit VR Little Endian file. */
function patchUS(bytes: Uint8Array, group: number, element: number, value: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 132; i + 10 <= out.length; i++) {
    if (
      out[i] === (group & 0xff) &&
      out[i + 1] === group >> 8 &&
      out[i + 2] === (element & 0xff) &&
      out[i + 3] === element >> 8 &&
      out[i + 4] === 0x55 &&
      out[i + 5] === 0x53
    ) {
      out[i + 8] = value & 0xff;
      out[i + 9] = value >> 8;
      return out;
    }
  }
  throw new Error('element not found');
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<ErrorCode | 'ok'> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof CxrError, `untyped: ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/, 'messages are one line');
    return e.code;
  }
}

test('not DICOM: empty, text, and a gzip header', async () => {
  assert.equal(await code(decodeModality(new Uint8Array(0))), 'E_NOT_DICOM');
  assert.equal(await code(decodeModality(new TextEncoder().encode('hello '.repeat(40)))), 'E_NOT_DICOM');
  assert.equal(await code(() => readMetadata(Uint8Array.from([0x1f, 0x8b, 8, 0]))), 'E_NOT_DICOM');
});

test('absurd dimensions are refused before allocating: 65535 x 65535', async () => {
  const huge = patchUS(patchUS(small(), 0x0028, 0x0010, 0xffff), 0x0028, 0x0011, 0xffff);
  assert.equal(await code(decodeModality(huge)), 'E_TOO_LARGE');
  assert.equal(await code(readWindowed(huge)), 'E_TOO_LARGE');
  assert.equal(readMetadata(huge).rows, 65535); // metadata alone still reads
  assert.equal(await code(decodeModality(small(), { maxPixels: 15 })), 'E_TOO_LARGE');
  assert.equal(await code(decodeModality(small(), { maxPixels: 16 })), 'ok');
});

test('pixel data shorter than the image needs is E_TRUNCATED', async () => {
  const tall = patchUS(small(), 0x0028, 0x0010, 5);
  assert.equal(await code(decodeModality(tall)), 'E_TRUNCATED');
});

test('impossible pixel formats are E_BAD_PIXEL_FORMAT', async () => {
  assert.equal(await code(decodeModality(patchUS(small(), 0x0028, 0x0100, 12))), 'E_BAD_PIXEL_FORMAT'); // BitsAllocated 12
  assert.equal(await code(decodeModality(patchUS(small(), 0x0028, 0x0101, 17))), 'E_BAD_PIXEL_FORMAT'); // BitsStored > BitsAllocated
  assert.equal(await code(decodeModality(patchUS(small(), 0x0028, 0x0102, 3))), 'E_BAD_PIXEL_FORMAT'); // HighBit < BitsStored-1
  assert.equal(await code(decodeModality(patchUS(small(), 0x0028, 0x0103, 2))), 'E_BAD_PIXEL_FORMAT');
  assert.equal(await code(decodeModality(patchUS(small(), 0x0028, 0x0010, 0))), 'E_BAD_PIXEL_FORMAT'); // zero rows
});

test('colour and multi-sample images are E_NOT_GRAYSCALE', async () => {
  assert.equal(await code(decodeModality(patchUS(small(), 0x0028, 0x0002, 3))), 'E_NOT_GRAYSCALE');
});

test('a file cut inside its pixel data is E_TRUNCATED, inside the preamble too', async () => {
  const bytes = small();
  assert.equal(await code(decodeModality(bytes.subarray(0, bytes.length - 3))), 'E_TRUNCATED');
  assert.equal(await code(decodeModality(bytes.subarray(0, 130))), 'E_TRUNCATED');
});

test('a RescaleSlope that takes stored values beyond float32 (1e35 on 16 bits) is E_MALFORMED, not a film of Infinity and NaN', async () => {
  const huge = small({ rescaleSlope: 1e35, pixels: Uint16Array.from({ length: 16 }, (_, i) => i * 4000) });
  await assert.rejects(decodeModality(huge), (e: unknown) => e instanceof CxrError && e.code === 'E_MALFORMED' && /32-bit float/.test(e.message));
  // large but representable: 1e30 x 65535 stays below 3.4e38
  const large = await decodeModality(small({ rescaleSlope: 1e30 }));
  assert.ok(large.values.every((v) => Number.isFinite(v)));
});

test('a window width that reads as Infinity (DS "1e999") is not used: the min-max window is, and no pixel is NaN', async () => {
  const bytes = small({ windowCenter: 100, windowWidth: 12345, pixels: Uint16Array.from({ length: 16 }, (_, i) => i * 10) });
  // same length in place: "12345 " becomes "1e999 "
  const text = Buffer.from(bytes).toString('latin1');
  const at = text.indexOf('12345 ');
  assert.ok(at > 0);
  const patched = Uint8Array.from(Buffer.from(`${text.slice(0, at)}1e999 ${text.slice(at + 6)}`, 'latin1'));
  assert.equal(readMetadata(patched).windowWidth[0], Number.POSITIVE_INFINITY);
  const w = await readWindowed(patched);
  assert.equal(w.window.source, 'minmax');
  assert.ok(w.data.every((v) => Number.isFinite(v)));
  assert.equal(Math.min(...w.data), 0);
  assert.equal(Math.max(...w.data), 1);
});

/** A private sequence (7FE1,1000) after the pixel data, each item holding the next one, `levels` deep (undefined lengths). */
function withNestedSequences(bytes: Uint8Array, levels: number): Uint8Array {
  const seqStart = [0xe1, 0x7f, 0x00, 0x10, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff];
  const itemStart = [0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff];
  const itemEnd = [0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0];
  const seqEnd = [0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0];
  let inner: number[] = [];
  for (let i = 0; i < levels; i++) inner = [...seqStart, ...itemStart, ...inner, ...itemEnd, ...seqEnd];
  return Uint8Array.from([...bytes, ...inner]);
}

test('sequences nested deeper than 32 levels are E_MALFORMED at parsing, which later readers (DICOM JSON, result objects) could not handle; 32 are read', () => {
  const image = small();
  assert.equal(readMetadata(withNestedSequences(image, 32)).rows, 4);
  assert.throws(
    () => readMetadata(withNestedSequences(image, 33)),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MALFORMED' && /nested deeper than 32 levels/.test(e.message),
  );
  assert.throws(
    () => readMetadata(withNestedSequences(image, 1000)),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MALFORMED',
  );
});
