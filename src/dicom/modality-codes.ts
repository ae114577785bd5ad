/**
 * Modality values as 16-bit codes spread linearly over [min, max] of the values present, for a
 * viewer that windows the film itself: value = min + code * (max - min) / 65535.
 */

export interface SpreadCodes {
  codes: Uint16Array;
  min: number;
  max: number;
}

function scale(min: number, max: number): { min: number; max: number; k: number } {
  const hi = max > min ? max : min + 1;
  return { min, max: hi, k: 65535 / (hi - min) };
}

/** From modality values, one pass for the range and one for the codes. */
export function codesFromValues(values: Float32Array): SpreadCodes {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const s = scale(min, max);
  const codes = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) codes[i] = Math.round((values[i] - s.min) * s.k);
  return { codes, min: s.min, max: s.max };
}

/**
 * From 8/16-bit words and the modality value of every possible word: the range is taken over
 * the words that occur and each code is computed once per word, so a 2048x2048 film costs two
 * integer passes instead of a float array and two float passes. Same codes as codesFromValues
 * on table-looked-up values.
 */
export function codesFromWordTable(words: Uint8Array | Uint16Array, n: number, table: Float32Array): SpreadCodes {
  const present = new Uint8Array(table.length);
  for (let i = 0; i < n; i++) present[words[i]] = 1;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let w = 0; w < table.length; w++) {
    if (present[w] === 0) continue;
    const v = table[w];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const s = scale(min, max);
  const codeOf = new Uint16Array(table.length);
  for (let w = 0; w < table.length; w++) if (present[w] === 1) codeOf[w] = Math.round((table[w] - s.min) * s.k);
  const codes = new Uint16Array(n);
  for (let i = 0; i < n; i++) codes[i] = codeOf[words[i]];
  return { codes, min: s.min, max: s.max };
}
