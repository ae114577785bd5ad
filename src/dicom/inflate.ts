/**
 * Deflated Explicit VR Little Endian datasets, inflated with a bound. A megabyte of deflate
 * can expand to gigabytes, so the output is limited twice:
 *  - one global limit, derived from the largest image the service decodes
 *    (`maxInflatedBytes`: maxPixels x 4 bytes, BitsAllocated 32 being the widest, plus
 *    DATASET_SLACK_BYTES for every other element);
 *  - a per-file limit, once the stream has inflated far enough to show the Pixel Data
 *    element's header: its declared end plus TRAILING_SLACK_BYTES; an element declaring
 *    more than the global limit refuses at once; no Pixel Data within DATASET_SLACK_BYTES
 *    refuses too. A bomb that declares a small image is refused after a few megabytes,
 *    not after the global limit.
 * The async form streams (the event loop stays free; memory is the bound, not the bomb);
 * the sync form serves the synchronous parser (CLI, scoring of files already accepted).
 */
import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import { createInflateRaw, inflateRawSync } from 'node:zlib';
import { CxrError } from '../errors.js';
import { DEFAULT_MAX_PIXELS } from './pixel-format.js';

/** Everything in a dataset but Pixel Data (header, overlays, private tags, padding) fits in this. */
export const DATASET_SLACK_BYTES = 16 * 1024 * 1024;
/** BitsAllocated 32: the widest pixel word the decoder accepts. */
const MAX_BYTES_PER_PIXEL = 4;

/** The one inflate limit: the largest accepted image's Pixel Data plus the slack for the rest. */
export function maxInflatedBytes(maxPixels = DEFAULT_MAX_PIXELS): number {
  return maxPixels * MAX_BYTES_PER_PIXEL + DATASET_SLACK_BYTES;
}

const PIXEL_DATA = 'x7fe00010';

function tooLarge(what: string): CxrError {
  return new CxrError('E_TOO_LARGE', `the deflated dataset inflates past ${what}`);
}

function inflateError(e: unknown): CxrError {
  const msg = e instanceof Error ? e.message : String(e);
  if (/unexpected end/i.test(msg)) return new CxrError('E_TRUNCATED', 'the deflated dataset ends early');
  return new CxrError('E_MALFORMED', `the deflated dataset does not inflate (${msg.slice(0, 120)})`);
}

/**
 * Only Digital Signatures (FFFA,FFFA) and Data Set Trailing Padding (FFFC,FFFC) may follow
 * Pixel Data, and neither is large in a real file.
 */
export const TRAILING_SLACK_BYTES = 1024 * 1024;

/**
 * The inflated size this dataset may reach, read from the element headers in the inflated
 * prefix: Pixel Data's declared end plus the trailing slack; null while the prefix does not
 * reach Pixel Data yet. Any element declaring an end past the global limit refuses at once.
 */
function declaredBound(prefix: Uint8Array, limit: number): number | null {
  const dataSet = { elements: {}, warnings: [] } as unknown as DataSet;
  const stream = new dicomParser.ByteStream(dicomParser.littleEndianByteArrayParser, prefix, 0);
  try {
    dicomParser.parseDicomDataSetExplicit(dataSet, stream, prefix.length, { untilTag: PIXEL_DATA });
  } catch {
    // the prefix ends inside an element (or is malformed: the full parse will say so)
  }
  for (const el of Object.values(dataSet.elements)) {
    if (!el.hadUndefinedLength && el.dataOffset + el.length > limit)
      throw new CxrError('E_TOO_LARGE', `element (${el.tag.slice(1, 5)},${el.tag.slice(5)}) declares ${el.length} bytes, over the ${limit}-byte limit`);
  }
  const el = dataSet.elements[PIXEL_DATA];
  if (el === undefined) return null;
  if (el.hadUndefinedLength) return limit;
  return Math.min(limit, el.dataOffset + el.length + TRAILING_SLACK_BYTES);
}

/** Inflates a raw-deflate dataset without ever holding more than the bound (async, streaming). */
export function inflateDataset(deflated: Uint8Array, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const z = createInflateRaw({ chunkSize: 256 * 1024 });
    const chunks: Buffer[] = [];
    let total = 0;
    let bound: number | null = null;
    let nextProbe = 64 * 1024;
    let done = false;
    const fail = (e: CxrError) => {
      if (done) return;
      done = true;
      z.destroy();
      reject(e);
    };
    z.on('data', (c: Buffer) => {
      if (done) return;
      chunks.push(c);
      total += c.length;
      try {
        if (bound === null && total >= nextProbe) {
          bound = declaredBound(Buffer.concat(chunks, total), limit);
          nextProbe *= 2;
        }
      } catch (e) {
        fail(e as CxrError);
        return;
      }
      if (bound === null && total > DATASET_SLACK_BYTES) fail(tooLarge(`${DATASET_SLACK_BYTES} bytes without reaching Pixel Data`));
      else if (total > (bound ?? limit)) fail(tooLarge(`${bound ?? limit} bytes (the declared Pixel Data plus ${TRAILING_SLACK_BYTES} bytes)`));
    });
    z.on('error', (e) => fail(inflateError(e)));
    z.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, total));
    });
    z.end(deflated);
  });
}

/** The same global limit, synchronously (the parser's inflater callback cannot wait). */
export function inflateDatasetSync(deflated: Uint8Array, limit: number): Uint8Array {
  try {
    return inflateRawSync(deflated, { maxOutputLength: limit });
  } catch (e) {
    if (/maxOutputLength|Cannot create a Buffer larger|ERR_BUFFER_TOO_LARGE/i.test(String((e as Error)?.message) + String((e as { code?: string })?.code)))
      throw tooLarge(`${limit} bytes`);
    throw inflateError(e);
  }
}
