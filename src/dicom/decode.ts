/** From Part 10 bytes to modality values: parse, check the pixel module, get the frame, decode, modality LUT. */
import { CxrError } from '../errors.js';
import { TAG, sequenceItems } from './attributes.js';
import { decodeCompressedFrame } from './codecs/index.js';
import { noteDecode } from './decode-observer.js';
import { checkSyntaxSupported, frameBytes } from './frame.js';
import { readLut } from './lut.js';
import { extractMetadata } from './metadata.js';
import { toModality, type ModalityTransform, type StoredLayout } from './modality.js';
import { parsePart10, parsePart10Async, type ParsedDicom } from './parse.js';
import { codesFromValues, codesFromWordTable, type SpreadCodes } from './modality-codes.js';
import { checkPixelFormat, DEFAULT_MAX_PIXELS } from './pixel-format.js';
import type { DicomMetadata, LookupTable, ModalityImage } from './types.js';
import { TRANSFER_SYNTAX } from './uids.js';
import { asTableIndex, identityWords, lookupAll } from './word-table.js';
import { nativeWords, type Words } from './words.js';

export interface DecodeOptions {
  /** refuse images with more pixels than this before allocating (default 8192*8192) */
  maxPixels?: number;
}

function modalityTransform(parsed: ParsedDicom, meta: DicomMetadata): ModalityTransform {
  const items = sequenceItems(parsed.dataSet, TAG.modalityLutSequence);
  if (items.length > 0) return { kind: 'lut', lut: readLut(items[0], meta.pixelRepresentation === 1, 'Modality LUT Sequence') };
  if (!Number.isFinite(meta.rescaleSlope) || !Number.isFinite(meta.rescaleIntercept))
    throw new CxrError('E_MALFORMED', 'RescaleSlope/RescaleIntercept are not finite numbers');
  // modality values are float32: a slope like 1e35 is finite but turns stored values into
  // Infinity, and every later step (min-max window, resize) into NaN: a blank film scored
  const bits = Math.min(32, Math.max(1, meta.bitsStored));
  const [lo, hi] = meta.pixelRepresentation === 1 ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
  for (const stored of [lo, hi])
    if (!Number.isFinite(Math.fround(stored * meta.rescaleSlope + meta.rescaleIntercept)))
      throw new CxrError(
        'E_MALFORMED',
        `RescaleSlope ${meta.rescaleSlope} and RescaleIntercept ${meta.rescaleIntercept} take stored values beyond what a 32-bit float holds`,
      );
  return { kind: 'rescale', slope: meta.rescaleSlope, intercept: meta.rescaleIntercept };
}

function firstVoiLut(parsed: ParsedDicom, meta: DicomMetadata, transform: ModalityTransform): LookupTable | null {
  const items = sequenceItems(parsed.dataSet, TAG.voiLutSequence);
  if (items.length === 0) return null;
  // The descriptor's first-mapped value is SS when modality values can be negative.
  const signedInput = meta.pixelRepresentation === 1 || (transform.kind === 'rescale' && transform.intercept < 0);
  return readLut(items[0], signedInput, 'VOI LUT Sequence');
}

/** A decoded frame before the modality LUT: raw words plus everything needed to interpret them. */
export interface DecodedWords {
  meta: DicomMetadata;
  width: number;
  height: number;
  words: Words;
  layout: StoredLayout;
  transform: ModalityTransform;
  voiLut: LookupTable | null;
}

/**
 * Pixel data of 8 or 1 bits stored with VR OW in a big-endian file: OW is a stream of 16-bit
 * words, so each pair of bytes is in the word's big-endian order, the second byte holding the
 * first pixel (PS3.5 8.1.1 and 8.2; DCMTK reads it so). Swapped back into stream order here;
 * OB, and every little-endian file, are already in it.
 */
function wordOrderedBytes(parsed: ParsedDicom, offset: number, length: number, bitsAllocated: number): { bytes: Uint8Array; offset: number } {
  const vr = parsed.dataSet.elements[TAG.pixelData]?.vr;
  if (parsed.littleEndian || bitsAllocated > 8 || vr !== 'OW') return { bytes: parsed.byteArray, offset };
  const copy = Buffer.from(parsed.byteArray.subarray(offset, offset + length));
  copy.subarray(0, copy.length - (copy.length % 2)).swap16();
  return { bytes: new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength), offset: 0 };
}

async function decodeParsed(parsed: ParsedDicom, meta: DicomMetadata, opts: DecodeOptions): Promise<DecodedWords> {
  noteDecode('pixels');
  const fmt = checkPixelFormat(meta, parsed.dataSet.elements[TAG.pixelData] !== undefined, opts.maxPixels ?? DEFAULT_MAX_PIXELS);
  checkSyntaxSupported(meta.transferSyntaxUid);
  const transform = modalityTransform(parsed, meta);
  const voiLut = firstVoiLut(parsed, meta, transform);
  const pixels = fmt.rows * fmt.columns;
  const frame = frameBytes(parsed);
  let words: Words;
  // Native and RLE words keep the stored field at HighBit; JPEG-family codecs return the sample itself.
  let shift = fmt.highBit - fmt.bitsStored + 1;
  if (frame.kind === 'native') {
    const source = wordOrderedBytes(parsed, frame.offset, frame.length, fmt.bitsAllocated);
    words = nativeWords(source.bytes, source.offset, frame.length, pixels, fmt.bitsAllocated, parsed.littleEndian);
  } else {
    words = await decodeCompressedFrame(meta.transferSyntaxUid, frame.stream, fmt);
    if (meta.transferSyntaxUid !== TRANSFER_SYNTAX.rleLossless) shift = 0;
  }
  const layout = { bitsStored: fmt.bitsStored, shift, signed: fmt.signed };
  return { meta, width: fmt.columns, height: fmt.rows, words, layout, transform, voiLut };
}

/** Anything a codec or the parser throws that is not already typed is a decode failure of this input. */
export function asTyped(e: unknown, code: 'E_DECODE_FAILED' | 'E_MALFORMED'): CxrError {
  if (e instanceof CxrError) return e;
  if (e instanceof RangeError && /allocation|Array buffer|Invalid typed array length/i.test(e.message))
    return new CxrError('E_TOO_LARGE', `cannot allocate for this image (${e.message})`);
  const msg = e instanceof Error ? e.message : String(e);
  return new CxrError(code, msg.replace(/\s+/g, ' ').slice(0, 200));
}

export async function decodeWords(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<DecodedWords> {
  let parsed: ParsedDicom;
  let meta: DicomMetadata;
  try {
    parsed = parsePart10(bytes, opts);
    meta = extractMetadata(parsed);
  } catch (e) {
    throw asTyped(e, 'E_MALFORMED');
  }
  try {
    return await decodeParsed(parsed, meta, opts);
  } catch (e) {
    throw asTyped(e, 'E_DECODE_FAILED');
  }
}

/** One parsed instance: its metadata, and the parse the pixel check reuses. */
export interface DicomInstance {
  meta: DicomMetadata;
  parsed: ParsedDicom;
}

/**
 * Ingestion's single parse: the file meta, the dataset (a deflated one inflated by a bounded
 * stream) and the metadata, with nothing decoded yet, so a duplicate costs no pixel work.
 */
export async function readInstance(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<DicomInstance> {
  try {
    const parsed = await parsePart10Async(bytes, opts);
    return { parsed, meta: extractMetadata(parsed) };
  } catch (e) {
    throw asTyped(e, 'E_MALFORMED');
  }
}

/**
 * Proves the instance's one frame decodes (compressed frames are decoded; native ones are
 * located and sized), refusing it with its code otherwise; no modality array is built: the
 * scorer decodes for its own purpose later, from the stored bytes.
 */
export async function checkDecodable(instance: DicomInstance, opts: DecodeOptions = {}): Promise<void> {
  try {
    await decodeParsed(instance.parsed, instance.meta, opts);
  } catch (e) {
    throw asTyped(e, 'E_DECODE_FAILED');
  }
}

export async function decodeModality(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<ModalityImage> {
  const d = await decodeWords(bytes, opts);
  noteDecode('modality');
  const n = d.width * d.height;
  const index = asTableIndex(d.words);
  // Large 8/16-bit frames go through a per-word table: same function, one lookup per pixel.
  const values =
    index !== null && n > 4 * 65536
      ? lookupAll(index, n, toModality(identityWords(index instanceof Uint8Array ? 8 : 16), index instanceof Uint8Array ? 256 : 65536, d.layout, d.transform))
      : toModality(d.words, n, d.layout, d.transform);
  return { meta: d.meta, width: d.width, height: d.height, values, voiLut: d.voiLut };
}

/** The film as 16-bit codes over its modality value range (see modality-codes.ts), for the viewer. */
export async function decodeModalityCodes(
  bytes: Uint8Array,
  opts: DecodeOptions = {},
): Promise<SpreadCodes & { meta: DicomMetadata; width: number; height: number }> {
  const d = await decodeWords(bytes, opts);
  const n = d.width * d.height;
  const index = asTableIndex(d.words);
  const spread =
    index === null
      ? codesFromValues(toModality(d.words, n, d.layout, d.transform))
      : codesFromWordTable(
          index,
          n,
          toModality(identityWords(index instanceof Uint8Array ? 8 : 16), index instanceof Uint8Array ? 256 : 65536, d.layout, d.transform),
        );
  return { meta: d.meta, width: d.width, height: d.height, ...spread };
}

export function readMetadata(bytes: Uint8Array): DicomMetadata {
  try {
    return extractMetadata(parsePart10(bytes));
  } catch (e) {
    throw asTyped(e, 'E_MALFORMED');
  }
}
