/** The frame as WADO-RS serves it (uncompressed little-endian), RGB frames for rendering, and the DICOM JSON model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import { dicomJson, encodeDicom, nativeFrame, rgbFrame, tagOf, vrOfTag } from '../../src/dicom/index.js';
import { encodeRendered } from '../../src/imaging/png.js';

const fixture = (name: string) => new Uint8Array(readFileSync(join('fixtures', 'dicom', `${name}.dcm`)));

test('a compressed frame is served as the same uncompressed little-endian words as its native source', async () => {
  for (const [src, out] of [
    ['cr-mono1-u12', 'cr-mono1-u12.jpeg-ls'],
    ['ct-s16-hu', 'ct-s16-hu.rle'],
    ['dx-u8', 'dx-u8.jpeg-lossless-sv1'],
  ]) {
    const [a, b] = await Promise.all([nativeFrame(fixture(src)), nativeFrame(fixture(out))]);
    assert.equal(b.length, a.length, out);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${out}: same bytes as ${src}`);
  }
  // a big-endian file is swapped to little-endian
  const px = Uint16Array.from({ length: 12 }, (_, i) => 0x0100 * i + 3);
  const img = {
    rows: 3,
    columns: 4,
    bitsAllocated: 16 as const,
    bitsStored: 16,
    pixelRepresentation: 0 as const,
    photometric: 'MONOCHROME2' as const,
    pixels: px,
    modality: 'OT' as const,
    studyInstanceUid: '1.2.3',
    seriesInstanceUid: '1.2.3.1',
    sopInstanceUid: '1.2.3.1.1',
    patientId: 'X',
  };
  const be = await nativeFrame(encodeDicom(img, { transferSyntax: 'explicit-be' }));
  assert.deepEqual([...new Uint16Array(be.buffer.slice(be.byteOffset, be.byteOffset + be.byteLength))], [...px]);
});

/** An 8-bit RGB Secondary Capture written by dcmjs, colour-by-plane. */
function rgbPlanar(): Uint8Array {
  const meta = {
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
    '00020003': { vr: 'UI', Value: ['1.2.3.9.1'] },
    '00020010': { vr: 'UI', Value: ['1.2.840.10008.1.2.1'] },
    '00020012': { vr: 'UI', Value: ['1.2.3.4'] },
  };
  const d = new dcmjs.data.DicomDict(meta);
  // 2 rows x 3 columns: R plane, G plane, B plane
  const planes = new Uint8Array([...[10, 20, 30, 40, 50, 60], ...[11, 21, 31, 41, 51, 61], ...[12, 22, 32, 42, 52, 62]]);
  d.dict = {
    '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
    '00080018': { vr: 'UI', Value: ['1.2.3.9.1'] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Roe^Richard' }] },
    '00280002': { vr: 'US', Value: [3] },
    '00280004': { vr: 'CS', Value: ['RGB'] },
    '00280006': { vr: 'US', Value: [1] },
    '00280010': { vr: 'US', Value: [2] },
    '00280011': { vr: 'US', Value: [3] },
    '00280100': { vr: 'US', Value: [8] },
    '00280101': { vr: 'US', Value: [8] },
    '00280102': { vr: 'US', Value: [7] },
    '00280103': { vr: 'US', Value: [0] },
    '7FE00010': { vr: 'OB', Value: [planes.buffer] },
  };
  return new Uint8Array(d.write());
}

test('an RGB image renders colour-by-pixel whatever its planar configuration; a greyscale one is refused there', async () => {
  const f = rgbFrame(rgbPlanar());
  assert.deepEqual([f.width, f.height], [3, 2]);
  assert.deepEqual([...f.rgb.subarray(0, 6)], [10, 11, 12, 20, 21, 22]);
  const png = await encodeRendered({ width: f.width, height: f.height, channels: 3, pixels: f.rgb }, 'png');
  const back = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(back.info.channels, 3);
  assert.deepEqual([...back.data.subarray(15, 18)], [60, 61, 62]);
  assert.throws(() => rgbFrame(fixture('dx-u8')), { code: 'E_BAD_PIXEL_FORMAT' });
});

test('DICOM JSON: VRs, PN objects, pixel data by reference, keyword and dictionary look-ups', () => {
  const j = dicomJson(rgbPlanar(), (tag) => `bulk/${tag}`);
  assert.deepEqual(j['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'Roe^Richard' }] });
  assert.deepEqual(j['7FE00010'], { vr: 'OB', BulkDataURI: 'bulk/7FE00010' });
  assert.deepEqual(j['00280004'], { vr: 'CS', Value: ['RGB'] });
  assert.equal(j['00020010'], undefined, 'the file meta group is not part of the dataset');
  assert.equal(tagOf('PatientName'), '00100010');
  assert.equal(tagOf('0008103e'), '0008103E');
  assert.equal(tagOf('NotAKeyword'), null);
  assert.equal(vrOfTag('00100010'), 'PN');
  assert.equal(vrOfTag('00201208'), 'IS');
  assert.throws(() => dicomJson(new Uint8Array(10), () => ''), { code: 'E_MALFORMED' });
});
