/** Finds the bytes of the one frame: the native Pixel Data value, or its encapsulated fragments. */
import type { Element } from 'dicom-parser';
import { CxrError } from '../errors.js';
import { TAG } from './attributes.js';
import { ENCAPSULATED_SYNTAXES } from './codecs/index.js';
import type { ParsedDicom } from './parse.js';
import { TRANSFER_SYNTAX, transferSyntaxName } from './uids.js';

export const NATIVE_SYNTAXES: ReadonlySet<string> = new Set([
  TRANSFER_SYNTAX.implicitLittle,
  TRANSFER_SYNTAX.explicitLittle,
  TRANSFER_SYNTAX.explicitBig,
  TRANSFER_SYNTAX.deflatedExplicitLittle,
]);

export type FrameBytes = { kind: 'native'; offset: number; length: number } | { kind: 'encapsulated'; stream: Uint8Array };

/** Whether ingestion decodes pixel data in this transfer syntax (what a DIMSE SCP may accept). */
export function isSyntaxSupported(syntax: string): boolean {
  return NATIVE_SYNTAXES.has(syntax) || ENCAPSULATED_SYNTAXES.has(syntax);
}

export function checkSyntaxSupported(syntax: string): void {
  if (!isSyntaxSupported(syntax)) throw new CxrError('E_UNSUPPORTED_SYNTAX', `transfer syntax ${syntax} (${transferSyntaxName(syntax)}) is not supported`);
}

export function frameBytes(parsed: ParsedDicom): FrameBytes {
  const el: Element | undefined = parsed.dataSet.elements[TAG.pixelData];
  if (el === undefined) throw new CxrError('E_NO_PIXEL_DATA', 'the file has no Pixel Data (7FE0,0010)');
  const bytes = parsed.byteArray;
  if (NATIVE_SYNTAXES.has(parsed.transferSyntaxUid)) {
    if (el.encapsulatedPixelData || el.hadUndefinedLength)
      throw new CxrError('E_MALFORMED', 'Pixel Data is encapsulated but the transfer syntax is uncompressed');
    return { kind: 'native', offset: el.dataOffset, length: el.length };
  }
  if (!el.encapsulatedPixelData || el.fragments === undefined)
    throw new CxrError('E_MALFORMED', `Pixel Data is not encapsulated although the transfer syntax is ${transferSyntaxName(parsed.transferSyntaxUid)}`);
  const fragments = el.fragments;
  if (fragments.length === 0) throw new CxrError('E_NO_PIXEL_DATA', 'the encapsulated Pixel Data has no fragments');
  let total = 0;
  for (const f of fragments) {
    if (f.length < 0 || f.position < 0 || f.position + f.length > bytes.length)
      throw new CxrError('E_TRUNCATED', 'an encapsulated pixel data fragment runs past the end of the file');
    total += f.length;
  }
  // One frame: all fragments belong to it (PS3.5 A.4), whatever the offset table says.
  const stream = new Uint8Array(total);
  let o = 0;
  for (const f of fragments) {
    stream.set(bytes.subarray(f.position, f.position + f.length), o);
    o += f.length;
  }
  return { kind: 'encapsulated', stream };
}
