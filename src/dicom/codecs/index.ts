/**
 * Compressed frames → raw pixel words. Each transfer syntax goes to a maintained codec
 * package (RLE excepted); the stream's own header is checked against Rows/Columns first, so a
 * lying stream cannot make a codec allocate more than the DICOM header allowed.
 */
import { Decoder as LosslessDecoder } from 'jpeg-lossless-decoder-js';
import { CxrError } from '../../errors.js';
import { TRANSFER_SYNTAX, transferSyntaxName } from '../uids.js';
import type { PixelFormat } from '../pixel-format.js';
import type { Words } from '../words.js';
import { decodeRle } from './rle.js';
import { j2kMissingTiles, jpegEndsWithEoi, readJ2kHeader, readJpegHeader, type StreamHeader } from './stream-header.js';
import { charls, decodeWith, libjpegTurbo, openjpeg } from './wasm-module.js';

const T = TRANSFER_SYNTAX;

export const ENCAPSULATED_SYNTAXES: ReadonlySet<string> = new Set([
  T.rleLossless,
  T.jpegBaseline,
  T.jpegExtended,
  T.jpegLossless,
  T.jpegLosslessSV1,
  T.jpegLsLossless,
  T.jpegLsNearLossless,
  T.jpeg2000Lossless,
  T.jpeg2000,
]);

function fail(syntax: string, msg: string): never {
  throw new CxrError('E_DECODE_FAILED', `${transferSyntaxName(syntax)}: ${msg}`);
}

function checkHeader(syntax: string, h: StreamHeader | null, fmt: PixelFormat): StreamHeader {
  if (h === null) fail(syntax, 'no frame header found in the compressed stream');
  if (h.width !== fmt.columns || h.height !== fmt.rows) fail(syntax, `the stream is ${h.width}x${h.height}, the DICOM header says ${fmt.columns}x${fmt.rows}`);
  if (h.components !== 1) fail(syntax, `the stream has ${h.components} components, a grayscale image has 1`);
  return h;
}

function checkInfo(syntax: string, fmt: PixelFormat) {
  return (info: { width: number; height: number; componentCount: number }) => {
    if (info.width !== fmt.columns || info.height !== fmt.rows)
      fail(syntax, `the codec reports ${info.width}x${info.height}, the DICOM header says ${fmt.columns}x${fmt.rows}`);
    if (info.componentCount !== 1) fail(syntax, `the codec reports ${info.componentCount} components`);
  };
}

/** Codec output bytes as words of the stream's sample size. */
function samples(bytes: Uint8Array, bitsPerSample: number, pixels: number, syntax: string): Words {
  if (bitsPerSample > 16) fail(syntax, `${bitsPerSample}-bit samples are beyond the 16 bits a radiograph uses`);
  const size = bitsPerSample <= 8 ? 1 : 2;
  if (bytes.length < pixels * size) fail(syntax, `the codec returned ${bytes.length} bytes for ${pixels} pixels`);
  if (size === 1) return bytes.subarray(0, pixels);
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, pixels);
}

async function decodeJpegBaseline(syntax: string, stream: Uint8Array, fmt: PixelFormat): Promise<Words> {
  const h = checkHeader(syntax, readJpegHeader(stream), fmt);
  if (h.precision !== 8)
    throw new CxrError('E_UNSUPPORTED_SYNTAX', `${transferSyntaxName(syntax)} with ${h.precision}-bit samples: only 8-bit JPEG DCT streams are decoded`);
  const { bytes, info } = await decodeWith(libjpegTurbo, stream, checkInfo(syntax, fmt));
  return samples(bytes, info.bitsPerSample, fmt.rows * fmt.columns, syntax);
}

function decodeJpegLossless(syntax: string, stream: Uint8Array, fmt: PixelFormat): Words {
  const h = checkHeader(syntax, readJpegHeader(stream), fmt);
  if (h.marker !== 0xc3) fail(syntax, `expected a lossless (SOF3) frame, found marker FF${h.marker.toString(16).toUpperCase()}`);
  // the decoder invents the rest of a stream that was cut short instead of failing
  if (!jpegEndsWithEoi(stream)) throw new CxrError('E_TRUNCATED', `${transferSyntaxName(syntax)}: the stream ends without its EOI marker: it was cut short`);
  const copy = stream.slice();
  const decoder = new LosslessDecoder();
  const out = decoder.decompress(copy.buffer, 0, copy.length);
  const pixels = fmt.rows * fmt.columns;
  const arr = out instanceof ArrayBuffer ? (h.precision <= 8 ? new Uint8Array(out) : new Uint16Array(out)) : out;
  if (arr.length < pixels) fail(syntax, `the decoder returned ${arr.length} samples for ${pixels} pixels`);
  return arr.subarray(0, pixels);
}

async function decodeJpegLs(syntax: string, stream: Uint8Array, fmt: PixelFormat): Promise<Words> {
  const h = checkHeader(syntax, readJpegHeader(stream), fmt);
  if (h.marker !== 0xf7) fail(syntax, `expected a JPEG-LS (SOF55) frame, found marker FF${h.marker.toString(16).toUpperCase()}`);
  const { bytes, info } = await decodeWith(charls, stream, checkInfo(syntax, fmt));
  return samples(bytes, info.bitsPerSample, fmt.rows * fmt.columns, syntax);
}

async function decodeJpeg2000(syntax: string, stream: Uint8Array, fmt: PixelFormat): Promise<Words> {
  checkHeader(syntax, readJ2kHeader(stream), fmt);
  const missing = j2kMissingTiles(stream);
  if (missing !== null) throw new CxrError('E_TRUNCATED', `${transferSyntaxName(syntax)}: ${missing}`);
  const { bytes, info } = await decodeWith(openjpeg, stream, checkInfo(syntax, fmt));
  return samples(bytes, info.bitsPerSample, fmt.rows * fmt.columns, syntax);
}

export async function decodeCompressedFrame(syntax: string, stream: Uint8Array, fmt: PixelFormat): Promise<Words> {
  const pixels = fmt.rows * fmt.columns;
  try {
    switch (syntax) {
      case T.rleLossless:
        if (fmt.bitsAllocated === 1) throw new CxrError('E_BAD_PIXEL_FORMAT', 'RLE Lossless with BitsAllocated 1 is not supported');
        return decodeRle(stream, pixels, fmt.bitsAllocated);
      case T.jpegBaseline:
      case T.jpegExtended:
        return await decodeJpegBaseline(syntax, stream, fmt);
      case T.jpegLossless:
      case T.jpegLosslessSV1:
        return decodeJpegLossless(syntax, stream, fmt);
      case T.jpegLsLossless:
      case T.jpegLsNearLossless:
        return await decodeJpegLs(syntax, stream, fmt);
      case T.jpeg2000Lossless:
      case T.jpeg2000:
        return await decodeJpeg2000(syntax, stream, fmt);
      default:
        throw new CxrError('E_UNSUPPORTED_SYNTAX', `transfer syntax ${syntax} (${transferSyntaxName(syntax)}) is not supported`);
    }
  } catch (e) {
    if (e instanceof CxrError) throw e;
    const msg = e instanceof Error ? e.message : typeof e === 'number' ? `codec error ${e}` : String(e);
    fail(syntax, msg.replace(/\s+/g, ' ').slice(0, 200));
  }
}
