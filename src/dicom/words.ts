/**
 * Raw pixel words, one per pixel, before masking: native pixel data viewed (or byte-swapped)
 * in place, or a codec's output. Little-endian host order.
 */
import { CxrError } from '../errors.js';

export type Words = Uint8Array | Uint16Array | Int16Array | Uint32Array;

/** The host must be little-endian for zero-copy views of little-endian pixel data. */
const HOST_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function nativeWords(bytes: Uint8Array, offset: number, length: number, pixels: number, bitsAllocated: 1 | 8 | 16 | 32, littleEndian: boolean): Words {
  const needed = Math.ceil((pixels * bitsAllocated) / 8);
  if (length < needed || offset + needed > bytes.length)
    throw new CxrError('E_TRUNCATED', `pixel data holds ${Math.max(0, Math.min(length, bytes.length - offset))} bytes, the image needs ${needed}`);
  if (bitsAllocated === 1) {
    // Bit-packed, least significant bit first (PS3.5 8.1.1).
    const out = new Uint8Array(pixels);
    for (let i = 0; i < pixels; i++) out[i] = (bytes[offset + (i >> 3)] >> (i & 7)) & 1;
    return out;
  }
  if (bitsAllocated === 8) return bytes.subarray(offset, offset + pixels);
  const size = bitsAllocated / 8;
  const abs = bytes.byteOffset + offset;
  if (littleEndian === HOST_LITTLE && abs % size === 0) {
    return size === 2 ? new Uint16Array(bytes.buffer, abs, pixels) : new Uint32Array(bytes.buffer, abs, pixels);
  }
  const copy = new Uint8Array(pixels * size);
  copy.set(bytes.subarray(offset, offset + pixels * size));
  const buf = Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength);
  if (littleEndian !== HOST_LITTLE) {
    if (size === 2) buf.swap16();
    else buf.swap32();
  }
  return size === 2 ? new Uint16Array(copy.buffer, 0, pixels) : new Uint32Array(copy.buffer, 0, pixels);
}
