/**
 * readWindowed's fast path. A frame of at most 16-bit words has at most 65536 distinct
 * inputs, so the modality LUT, the VOI window and the MONOCHROME1 inversion are evaluated
 * once per possible word (with the very functions applyWindow uses, so the result is
 * identical) and the image is one table lookup per pixel.
 */
import { decodeWords, type DecodeOptions, type DecodedWords } from './decode.js';
import { toModality } from './modality.js';
import type { WindowPolicy, WindowedFrame, WindowedImage } from './types.js';
import { mapValues } from './voi.js';
import { applyWindow, chooseWindow } from './window.js';
import { asTableIndex, identityWords, lookupAll } from './word-table.js';

/** Min and max of table[w] over the words that occur in the image. */
function presentRange(words: Uint8Array | Uint16Array, n: number, table: Float32Array): { min: number; max: number } {
  const present = new Uint8Array(table.length);
  for (let i = 0; i < n; i++) present[words[i]] = 1;
  let min = Infinity;
  let max = -Infinity;
  for (let w = 0; w < table.length; w++)
    if (present[w] === 1) {
      const v = table[w];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  return { min, max };
}

/** The window of `policy` folded into a per-word table; the pixels stay as words. */
export function windowWordsTable(d: DecodedWords, policy: WindowPolicy): WindowedFrame {
  const n = d.width * d.height;
  const words = asTableIndex(d.words);
  if (words === null) {
    // 32-bit words: no table; go through modality values.
    const values = toModality(d.words, n, d.layout, d.transform);
    return applyWindow({ meta: d.meta, width: d.width, height: d.height, values, voiLut: d.voiLut }, policy);
  }
  const all = identityWords(words instanceof Uint8Array ? 8 : 16);
  const modality = toModality(all, all.length, d.layout, d.transform);
  let lowerBound = Infinity;
  for (let w = 0; w < modality.length; w++) if (modality[w] < lowerBound) lowerBound = modality[w];
  const choice = chooseWindow({ meta: d.meta, voiLut: d.voiLut, range: () => presentRange(words, n, modality), lowerBound }, policy);
  const table = mapValues(modality, choice.mapping, d.meta.photometricInterpretation === 'MONOCHROME1');
  return {
    meta: d.meta,
    width: d.width,
    height: d.height,
    codes: words.length === n ? words : words.subarray(0, n),
    values: table,
    window: { policy: policy.kind, ...choice.window },
  };
}

export function windowWords(d: DecodedWords, policy: WindowPolicy): WindowedImage {
  const f = windowWordsTable(d, policy);
  if (f.data) return { ...f, data: f.data };
  const { codes, values, ...rest } = f;
  return { ...rest, data: lookupAll(codes, codes.length, values) };
}

/**
 * readWindowed without the float frame: the words and their table (see WindowedFrame).
 * The same pixels as readWindowed, for a consumer that samples rather than copies.
 */
export async function readWindowedFrame(bytes: Uint8Array, opts: DecodeOptions & { window?: WindowPolicy } = {}): Promise<WindowedFrame> {
  return windowWordsTable(await decodeWords(bytes, { maxPixels: opts.maxPixels }), opts.window ?? { kind: 'auto' });
}

export async function readWindowed(bytes: Uint8Array, opts: DecodeOptions & { window?: WindowPolicy } = {}): Promise<WindowedImage> {
  return windowWords(await decodeWords(bytes, { maxPixels: opts.maxPixels }), opts.window ?? { kind: 'auto' });
}
