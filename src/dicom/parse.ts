/**
 * Part 10 parsing through dicom-parser, with every failure turned into a typed error. The
 * library throws plain strings, Error objects, or `{exception, dataSet}` wrappers; we sort
 * them into "the bytes stop early" (E_TRUNCATED) and "the bytes are wrong" (E_MALFORMED).
 */
import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import { CxrError } from '../errors.js';
import { noteDecode } from './decode-observer.js';
import { inflateDataset, inflateDatasetSync, maxInflatedBytes } from './inflate.js';
import { TRANSFER_SYNTAX } from './uids.js';

export interface ParsedDicom {
  dataSet: DataSet;
  transferSyntaxUid: string;
  littleEndian: boolean;
  /** The bytes every element offset refers to (the inflated copy for deflated files). */
  byteArray: Uint8Array;
}

function messageOf(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'exception' in e) return messageOf((e as { exception: unknown }).exception);
  return String(e);
}

const TRUNCATION_HINTS = /past end|overread|overrun|beyond the end|end of buffer|greater than or equal to 'byteArray' length|Offset is outside the bounds/i;

export function classifyParserError(e: unknown): CxrError {
  if (e instanceof CxrError) return e;
  const msg = messageOf(e).replace(/\s+/g, ' ').slice(0, 200);
  if (TRUNCATION_HINTS.test(msg)) return new CxrError('E_TRUNCATED', `the file ends inside an element (${msg})`);
  return new CxrError('E_MALFORMED', `cannot parse the DICOM dataset (${msg})`);
}

/** dicom-parser's inflater callback: returns the file with its dataset inflated in place. */
function withInflated(byteArray: Uint8Array, position: number, inflated: Uint8Array): Uint8Array {
  const full = new Uint8Array(position + inflated.length);
  full.set(byteArray.subarray(0, position));
  full.set(inflated, position);
  return full;
}

const KNOWN_SYNTAXES = new Set<string>(Object.values(TRANSFER_SYNTAX));

interface Part10Header {
  transferSyntaxUid: string;
  /** where the dataset starts (just past the file meta group) */
  datasetStart: number;
}

/** The preamble, `DICM` and the file meta information (Explicit VR Little Endian). */
function readHeader(bytes: Uint8Array): Part10Header {
  if (bytes.length < 132 || bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    if (bytes.length < 132 && bytes.length > 0 && isPrefixOfPart10(bytes))
      throw new CxrError('E_TRUNCATED', `the file ends after ${bytes.length} bytes, inside the preamble`);
    throw new CxrError('E_NOT_DICOM', 'no DICM marker at byte 128: not a DICOM Part 10 file');
  }
  let meta: DataSet;
  try {
    meta = dicomParser.readPart10Header(bytes);
  } catch (e) {
    throw classifyParserError(e);
  }
  const syntaxEl = meta.elements.x00020010;
  if (syntaxEl === undefined) {
    const ended = (meta as DataSet & { position?: number }).position === bytes.length;
    throw ended
      ? new CxrError('E_TRUNCATED', 'the file ends inside the file meta information')
      : new CxrError('E_MALFORMED', 'the file meta information has no Transfer Syntax UID (0002,0010)');
  }
  const transferSyntaxUid = (meta.string('x00020010') ?? '').replace(/\0/g, '').trim();
  if (!KNOWN_SYNTAXES.has(transferSyntaxUid) && !/^[0-9.]+$/.test(transferSyntaxUid))
    throw new CxrError('E_MALFORMED', `transfer syntax UID '${transferSyntaxUid.slice(0, 64)}' is not a UID`);
  return { transferSyntaxUid, datasetStart: (meta as DataSet & { position?: number }).position ?? -1 };
}

function parseWith(bytes: Uint8Array, header: Part10Header, inflater: (b: Uint8Array, position: number) => Uint8Array): ParsedDicom {
  const { transferSyntaxUid } = header;
  let dataSet: DataSet;
  try {
    // The library compares against this exact UID, so hand it the cleaned one.
    dataSet = dicomParser.parseDicom(bytes, { TransferSyntaxUID: transferSyntaxUid, inflater });
  } catch (e) {
    throw classifyParserError(e);
  }
  checkSequenceDepth(dataSet);
  return {
    dataSet,
    transferSyntaxUid,
    littleEndian: transferSyntaxUid !== TRANSFER_SYNTAX.explicitBig,
    byteArray: dataSet.byteArray as Uint8Array,
  };
}

/** Deepest nesting of sequences accepted: real images stay in single digits. */
export const MAX_SEQUENCE_DEPTH = 32;

/**
 * Refuses sequences nested deeper than MAX_SEQUENCE_DEPTH. Why: the parser here copes with a
 * thousand levels in 36 KB, but what reads a stored instance later does not (dcmjs, for the
 * DICOM JSON of WADO-RS metadata and the result objects' source header: quadratic time, then
 * stack overflow), so such a file was stored and could never get its results built.
 */
function checkSequenceDepth(root: DataSet): void {
  const stack: { ds: DataSet; depth: number }[] = [{ ds: root, depth: 0 }];
  while (stack.length > 0) {
    const { ds, depth } = stack.pop()!;
    for (const el of Object.values(ds.elements)) {
      for (const item of el.items ?? []) {
        if (!item.dataSet) continue;
        if (depth + 1 > MAX_SEQUENCE_DEPTH) throw new CxrError('E_MALFORMED', `sequences nested deeper than ${MAX_SEQUENCE_DEPTH} levels (at ${el.tag})`);
        stack.push({ ds: item.dataSet, depth: depth + 1 });
      }
    }
  }
}

export interface ParseOptions {
  /** the largest image accepted, in pixels: it sets the inflate limit of deflated files */
  maxPixels?: number;
}

/**
 * Parses a Part 10 file: 128-byte preamble, `DICM`, file meta in Explicit VR Little Endian,
 * then the dataset in the transfer syntax the meta names. A deflated dataset is inflated
 * synchronously up to the global limit (see inflate.ts).
 */
export function parsePart10(bytes: Uint8Array, opts: ParseOptions = {}): ParsedDicom {
  noteDecode('parse');
  const header = readHeader(bytes);
  const limit = maxInflatedBytes(opts.maxPixels);
  return parseWith(bytes, header, (b, position) => withInflated(b, position, inflateDatasetSync(b.subarray(position), limit)));
}

/**
 * The same, for ingestion: a deflated dataset is inflated by a stream that stops at the
 * declared image's size (or the global limit), without blocking the event loop.
 */
export async function parsePart10Async(bytes: Uint8Array, opts: ParseOptions = {}): Promise<ParsedDicom> {
  noteDecode('parse');
  const header = readHeader(bytes);
  if (header.transferSyntaxUid !== TRANSFER_SYNTAX.deflatedExplicitLittle) return parseWith(bytes, header, () => bytes);
  const position = header.datasetStart;
  const inflated = await inflateDataset(bytes.subarray(position), maxInflatedBytes(opts.maxPixels));
  return parseWith(bytes, header, (b, p) => {
    if (p !== position) throw new CxrError('E_MALFORMED', 'the file meta information length does not match its elements');
    return withInflated(b, p, inflated);
  });
}

/** True when the bytes could be the start of a Part 10 file (zero-ish preamble or a DICM prefix). */
function isPrefixOfPart10(bytes: Uint8Array): boolean {
  if (bytes.length <= 128) return false;
  const dicm = [0x44, 0x49, 0x43, 0x4d];
  for (let i = 128; i < bytes.length; i++) if (bytes[i] !== dicm[i - 128]) return false;
  return true;
}
