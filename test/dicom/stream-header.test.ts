/** Marker walks over compressed streams: what tells a whole JPEG 2000 or lossless JPEG stream from a cut one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { j2kMissingTiles, jpegEndsWithEoi, readJ2kHeader } from '../../src/dicom/codecs/stream-header.js';

const be16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];
const be32 = (v: number) => [(v >>> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];

/** A codestream's markers (no real wavelet data): SOC, SIZ, COD, then one tile-part per entry, EOC. */
function codestream(o: { width: number; height: number; tile: number; parts: { tile: number; data: number; psot?: number }[] }): Uint8Array {
  const siz = [
    0xff,
    0x51,
    ...be16(41),
    ...be16(0),
    ...be32(o.width),
    ...be32(o.height),
    ...be32(0),
    ...be32(0),
    ...be32(o.tile),
    ...be32(o.tile),
    ...be32(0),
    ...be32(0),
    ...be16(1),
    15,
    1,
    1,
  ];
  const cod = [0xff, 0x52, ...be16(12), 0, 0, 0, 1, 0, 5, 4, 4, 0, 1];
  const parts = o.parts.flatMap((p) => [
    0xff,
    0x90,
    ...be16(10),
    ...be16(p.tile),
    ...be32(p.psot ?? 14 + p.data),
    0,
    1,
    0xff,
    0x93,
    ...Array(p.data).fill(0x5a),
  ]);
  return Uint8Array.from([0xff, 0x4f, ...siz, ...cod, ...parts, 0xff, 0xd9]);
}

const four = [0, 1, 2, 3].map((tile) => ({ tile, data: 20 }));

test('a JPEG 2000 codestream with a tile-part for each of its tiles is whole; its SIZ gives the image size', () => {
  const s = codestream({ width: 128, height: 128, tile: 64, parts: four });
  assert.equal(j2kMissingTiles(s), null);
  assert.deepEqual(readJ2kHeader(s), { width: 128, height: 128, components: 1, precision: 16, marker: 0x51 });
  // a last tile-part of length 0 runs to the end of the codestream
  assert.equal(j2kMissingTiles(codestream({ width: 128, height: 128, tile: 64, parts: [...four.slice(0, 3), { tile: 3, data: 20, psot: 0 }] })), null);
  // one tile for the whole image
  assert.equal(j2kMissingTiles(codestream({ width: 100, height: 60, tile: 100, parts: [{ tile: 0, data: 8 }] })), null);
});

test('a JPEG 2000 codestream missing a tile, cut inside a tile-part, or declaring more tiles than can be addressed says why', () => {
  assert.equal(
    j2kMissingTiles(codestream({ width: 128, height: 128, tile: 64, parts: four.filter((p) => p.tile !== 2) })),
    'the codestream holds tile-parts of 3 of its 4 tiles: it is truncated',
  );
  const whole = codestream({ width: 128, height: 128, tile: 64, parts: four });
  assert.match(j2kMissingTiles(whole.subarray(0, whole.length - 12)) ?? '', /^tile-part of tile 3 claims 34 bytes, \d+ remain: the stream is truncated$/);
  assert.equal(
    j2kMissingTiles(codestream({ width: 8192, height: 8192, tile: 1, parts: [{ tile: 0, data: 4 }] })),
    'the SIZ segment declares 67108864 tiles (at most 65535 can be addressed)',
  );
  assert.equal(j2kMissingTiles(codestream({ width: 128, height: 128, tile: 64, parts: [...four, { tile: 9, data: 2 }] })), 'a tile-part names tile 9 of 4');
  assert.equal(j2kMissingTiles(Uint8Array.from([0xff, 0xd8, 0xff, 0xd9])), 'no SIZ segment after SOC');
});

test('a lossless JPEG stream is whole when it ends in EOI, padding zeros aside', () => {
  assert.equal(jpegEndsWithEoi(Uint8Array.from([0xff, 0xd8, 0x12, 0xff, 0x00, 0xff, 0xd9])), true);
  assert.equal(jpegEndsWithEoi(Uint8Array.from([0xff, 0xd8, 0x12, 0xff, 0xd9, 0x00])), true);
  assert.equal(jpegEndsWithEoi(Uint8Array.from([0xff, 0xd8, 0x12, 0x34, 0x00, 0x00])), false);
  assert.equal(jpegEndsWithEoi(Uint8Array.from([0xd9])), false);
});
