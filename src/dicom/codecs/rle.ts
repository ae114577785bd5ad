/**
 * DICOM RLE Lossless (PS3.5 Annex G), hand-written because it is small and no maintained
 * package covers it: a 64-byte header of segment offsets, one PackBits segment per byte
 * plane, most significant plane first.
 */
import { CxrError } from '../../errors.js';
import type { Words } from '../words.js';

function fail(msg: string): never {
  throw new CxrError('E_DECODE_FAILED', `RLE: ${msg}`);
}

/** Decodes one PackBits segment into exactly `out.length` bytes. */
export function unpackBits(src: Uint8Array, start: number, end: number, out: Uint8Array): void {
  let i = start;
  let o = 0;
  const n = out.length;
  while (o < n && i < end) {
    const h = src[i++];
    if (h < 128) {
      const count = h + 1;
      if (i + count > end || o + count > n) fail('a literal run overruns its segment');
      out.set(src.subarray(i, i + count), o);
      i += count;
      o += count;
    } else if (h > 128) {
      const count = 257 - h;
      if (i >= end || o + count > n) fail('a replicate run overruns its segment');
      out.fill(src[i++], o, o + count);
      o += count;
    }
    // 128 is a no-op by definition.
  }
  if (o < n) fail(`a segment decodes to ${o} bytes, ${n} expected`);
}

export function decodeRle(frame: Uint8Array, pixels: number, bitsAllocated: 8 | 16 | 32): Words {
  if (frame.length < 64) fail('the frame is shorter than its 64-byte header');
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  const planes = bitsAllocated / 8;
  if (segments !== planes) fail(`${segments} segments for ${planes} byte planes`);
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  offsets.push(frame.length);
  const plane = new Uint8Array(pixels);
  const bytes = new Uint8Array(pixels * planes);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s];
    const end = Math.min(offsets[s + 1] > start ? offsets[s + 1] : frame.length, frame.length);
    if (start < 64 || start >= frame.length) fail(`segment ${s} starts at ${start}, outside the frame`);
    unpackBits(frame, start, end, plane);
    // Segment 0 is the most significant byte; words are assembled little-endian.
    const byteIndex = planes - 1 - s;
    for (let p = 0, o = byteIndex; p < pixels; p++, o += planes) bytes[o] = plane[p];
  }
  if (planes === 1) return bytes;
  if (planes === 2) return new Uint16Array(bytes.buffer, 0, pixels);
  return new Uint32Array(bytes.buffer, 0, pixels);
}
