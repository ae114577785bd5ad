/**
 * The one frame of an instance as uncompressed little-endian bytes (WADO-RS frames,
 * application/octet-stream in Explicit VR Little Endian): a native little-endian frame is its
 * Pixel Data value as stored, whatever its photometric interpretation; a compressed or
 * big-endian one is decoded to its stored words first (greyscale, as ingestion accepts).
 */
import { CxrError } from '../errors.js';
import { TAG } from './attributes.js';
import { asTyped, decodeWords } from './decode.js';
import { frameBytes } from './frame.js';
import { parsePart10, type ParsedDicom } from './parse.js';

export async function nativeFrame(bytes: Uint8Array): Promise<Uint8Array> {
  let parsed: ParsedDicom;
  try {
    parsed = parsePart10(bytes);
  } catch (e) {
    throw asTyped(e, 'E_MALFORMED');
  }
  const frame = frameBytes(parsed);
  if (frame.kind === 'native' && parsed.littleEndian) return parsed.byteArray.subarray(frame.offset, frame.offset + frame.length);
  const { words } = await decodeWords(bytes);
  const out = new Uint8Array(words.length * words.BYTES_PER_ELEMENT);
  const view = new DataView(out.buffer);
  // written word by word: the bytes are little-endian whatever the host's order
  for (let i = 0; i < words.length; i++) {
    if (words.BYTES_PER_ELEMENT === 1) out[i] = words[i];
    else if (words.BYTES_PER_ELEMENT === 2) view.setUint16(2 * i, words[i] & 0xffff, true);
    else view.setUint32(4 * i, words[i] >>> 0, true);
  }
  return out;
}

/**
 * The frame of an 8-bit RGB instance (a Secondary Capture) as interleaved RGB, for rendering:
 * greyscale rendering goes through the window instead (readWindowed). Native syntaxes only.
 */
export function rgbFrame(bytes: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  let parsed: ParsedDicom;
  try {
    parsed = parsePart10(bytes);
  } catch (e) {
    throw asTyped(e, 'E_MALFORMED');
  }
  const ds = parsed.dataSet;
  const width = ds.uint16(TAG.columns) ?? 0;
  const height = ds.uint16(TAG.rows) ?? 0;
  const photometric = (ds.string(TAG.photometricInterpretation) ?? '').trim();
  if (ds.uint16(TAG.samplesPerPixel) !== 3 || ds.uint16(TAG.bitsAllocated) !== 8 || photometric !== 'RGB')
    throw new CxrError('E_BAD_PIXEL_FORMAT', `only greyscale or 8-bit RGB images can be rendered (this one is ${photometric || 'unknown'})`);
  const frame = frameBytes(parsed);
  const n = width * height;
  if (frame.kind !== 'native' || frame.length < 3 * n) throw new CxrError('E_UNSUPPORTED_SYNTAX', 'an RGB image is rendered only from uncompressed pixel data');
  const src = parsed.byteArray.subarray(frame.offset, frame.offset + 3 * n);
  if (ds.uint16(TAG.planarConfiguration) !== 1) return { width, height, rgb: src };
  // colour-by-plane (R…R G…G B…B) to colour-by-pixel
  const rgb = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = src[i];
    rgb[3 * i + 1] = src[n + i];
    rgb[3 * i + 2] = src[2 * n + i];
  }
  return { width, height, rgb };
}
