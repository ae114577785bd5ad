/**
 * A frame of 8- or 16-bit words has at most 65536 distinct inputs, so any per-pixel function
 * of the word can be evaluated once per possible word and applied by table lookup: one
 * memory read per pixel instead of the masking, sign and rescale arithmetic.
 */
import type { Words } from './words.js';

let identity8: Uint8Array | null = null;
let identity16: Uint16Array | null = null;

/** Every possible word of the given width, in order: the input for building a table. */
export function identityWords(bits: 8 | 16): Uint8Array | Uint16Array {
  if (bits === 8) return (identity8 ??= Uint8Array.from({ length: 256 }, (_, i) => i));
  return (identity16 ??= Uint16Array.from({ length: 65536 }, (_, i) => i));
}

/** The words as table indices, or null when they are too wide for a table (32-bit). */
export function asTableIndex(words: Words): Uint8Array | Uint16Array | null {
  if (words instanceof Uint8Array || words instanceof Uint16Array) return words;
  if (words instanceof Int16Array) return new Uint16Array(words.buffer, words.byteOffset, words.length);
  return null;
}

function lookup16(words: Uint16Array, n: number, table: Float32Array, out: Float32Array): void {
  for (let i = 0; i < n; i++) out[i] = table[words[i]];
}

function lookup8(words: Uint8Array, n: number, table: Float32Array, out: Float32Array): void {
  for (let i = 0; i < n; i++) out[i] = table[words[i]];
}

/** out[i] = table[words[i]], with a loop per element type so each stays monomorphic. */
export function lookupAll(words: Uint8Array | Uint16Array, n: number, table: Float32Array): Float32Array {
  const out = new Float32Array(n);
  if (words instanceof Uint8Array) lookup8(words, n, table, out);
  else lookup16(words, n, table, out);
  return out;
}
