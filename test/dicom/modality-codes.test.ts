/** The viewer's 16-bit film codes: exact values, and the table path equal to the per-pixel path on real files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codesFromValues, codesFromWordTable, decodeModality, decodeModalityCodes, encodeDicom, newUid } from '../../src/dicom/index.js';

test('codes spread the values present over 0..65535: the minimum is 0, the maximum 65535, in between rounded', () => {
  const { codes, min, max } = codesFromValues(Float32Array.from([-1000, 0, 1000, 500]));
  assert.deepEqual([...codes], [0, 32768, 65535, 49151]); // 32767.5 rounds up; 49151.25 down
  assert.equal(min, -1000);
  assert.equal(max, 1000);
});

test('a flat film gets a range of one so codes stay finite', () => {
  const { codes, min, max } = codesFromValues(Float32Array.from([7, 7, 7]));
  assert.deepEqual([...codes], [0, 0, 0]);
  assert.equal(min, 7);
  assert.equal(max, 8);
});

test('the word-table path gives the per-pixel codes and takes its range only from words that occur', () => {
  // word w means value 10*w - 5; words 0 and 255 never occur, so they set no bound
  const table = Float32Array.from({ length: 256 }, (_, w) => 10 * w - 5);
  const words = Uint8Array.from([1, 3, 2, 3, 5]);
  const viaTable = codesFromWordTable(words, words.length, table);
  const viaValues = codesFromValues(Float32Array.from(words, (w) => table[w]));
  assert.deepEqual([...viaTable.codes], [...viaValues.codes]);
  assert.deepEqual([...viaTable.codes], [0, 32768, 16384, 32768, 65535]);
  assert.equal(viaTable.min, 5);
  assert.equal(viaTable.max, 45);
});

for (const [name, image] of [
  [
    '16-bit unsigned, 12 stored',
    { bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, pixels: Uint16Array.from({ length: 64 * 64 }, (_, i) => (i * 37) % 4096) },
  ],
  [
    '16-bit signed',
    {
      bitsAllocated: 16,
      bitsStored: 16,
      pixelRepresentation: 1,
      rescaleSlope: 2,
      rescaleIntercept: -1024,
      pixels: Int16Array.from({ length: 64 * 64 }, (_, i) => ((i * 977) % 60000) - 30000),
    },
  ],
  ['8-bit', { bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, pixels: Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 13) % 251) }],
] as const) {
  test(`film codes of a ${name} file equal codes from its decoded modality values`, async () => {
    const uid = newUid(['modality-codes', name]);
    const bytes = encodeDicom({
      rows: 64,
      columns: 64,
      photometric: 'MONOCHROME2',
      modality: 'DX',
      studyInstanceUid: uid,
      seriesInstanceUid: `${uid}.1`,
      sopInstanceUid: `${uid}.1.1`,
      patientId: 'p',
      ...image,
    });
    const fast = await decodeModalityCodes(bytes);
    const reference = codesFromValues((await decodeModality(bytes)).values);
    assert.equal(fast.width, 64);
    assert.deepEqual(Buffer.from(fast.codes.buffer).equals(Buffer.from(reference.codes.buffer)), true);
    assert.equal(fast.min, reference.min);
    assert.equal(fast.max, reference.max);
  });
}
