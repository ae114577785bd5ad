/**
 * Multipart bodies: `multipart/related` for DICOMweb STOW-RS (RFC 2387, parsed here from the
 * buffered body) and `multipart/form-data` uploads (busboy).
 */
import { MIMEType } from 'node:util';
import busboy from 'busboy';
import type { Request } from 'express';
import { CxrError } from '../errors.js';
import { tooLarge } from './http.js';

export interface ContentType {
  type: string;
  params: Map<string, string>;
}

export function parseContentType(header: string | undefined): ContentType | null {
  if (!header) return null;
  try {
    const m = new MIMEType(header);
    return { type: m.essence, params: new Map(m.params.entries()) };
  } catch {
    return null;
  }
}

export interface Part {
  headers: Map<string, string>;
  body: Buffer;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Boundaries longer than RFC 2046's 70 characters are sent by real clients (Orthanc 1.10
 * sends 73): accepted up to this, which no sane sender reaches.
 */
export const MAX_BOUNDARY_LENGTH = 256;

/**
 * Splits a multipart body into parts. Throws E_BAD_REQUEST when the framing is broken (no
 * opening or closing delimiter, a part without a header block): the body as a whole cannot be
 * trusted then, unlike one bad instance inside good framing. More than `maxParts` parts is
 * refused as a whole (E_PAYLOAD_TOO_LARGE) as soon as the next one starts.
 */
export function splitMultipart(body: Buffer, boundary: string, maxParts = Number.POSITIVE_INFINITY): Part[] {
  if (!boundary || boundary.length > MAX_BOUNDARY_LENGTH)
    throw new CxrError('E_BAD_REQUEST', `multipart boundary is missing or longer than ${MAX_BOUNDARY_LENGTH} characters`);
  const delimiter = Buffer.from(`--${boundary}`);
  const between = Buffer.concat([CRLF, delimiter]);
  let pos = body.indexOf(delimiter);
  if (pos !== 0 && pos !== -1) {
    // A preamble is allowed; the first delimiter must then start a line.
    pos = body.indexOf(between);
    if (pos !== -1) pos += 2;
  }
  if (pos === -1) throw new CxrError('E_BAD_REQUEST', 'multipart body has no opening boundary');
  const parts: Part[] = [];
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing delimiter
    // Transport padding (spaces/tabs) may follow a delimiter before its CRLF.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw new CxrError('E_BAD_REQUEST', 'multipart delimiter is not followed by CRLF');
    pos += 2;
    let headerEnd: number;
    let headers: Map<string, string>;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) {
      headers = new Map();
      headerEnd = pos + 2;
    } else {
      const end = body.indexOf(HEADER_END, pos);
      if (end === -1) throw new CxrError('E_BAD_REQUEST', 'multipart part has no end of headers');
      headers = parseHeaders(body.subarray(pos, end).toString('latin1'));
      headerEnd = end + 4;
    }
    const next = body.indexOf(between, headerEnd);
    if (next === -1) throw new CxrError('E_BAD_REQUEST', 'multipart body has no closing boundary');
    if (parts.length >= maxParts)
      throw new CxrError('E_PAYLOAD_TOO_LARGE', `the request holds more than ${maxParts} parts; send at most ${maxParts} per request`);
    parts.push({ headers, body: body.subarray(headerEnd, next) });
    pos = next + 2;
  }
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    const i = line.indexOf(':');
    if (i <= 0) throw new CxrError('E_BAD_REQUEST', `multipart part has a malformed header line`);
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return headers;
}

/**
 * The first file part of a multipart/form-data upload, at most `limit` bytes. busboy emits
 * 'error' on itself and on the file stream (a body that ends without its closing boundary
 * does both): every stream here has an error listener, and the promise settles once.
 */
export function readFormFile(req: Request, limit: number): Promise<{ field: string; bytes: Buffer }> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit + 64 * 1024) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fileSize: limit, fields: 20, fieldSize: 8 * 1024, parts: 40, headerPairs: 50 } });
    } catch (e) {
      reject(new CxrError('E_BAD_REQUEST', `multipart/form-data body cannot be parsed: ${(e as Error).message}`));
      return;
    }
    let file: { field: string; bytes: Buffer } | null = null;
    let failed: CxrError | null = null;
    let settled = false;
    const fail = (e: CxrError) => {
      if (!failed) failed = e;
    };
    const finish = () => {
      if (settled) return;
      settled = true;
      req.unpipe(bb);
      if (failed) {
        // the rest of the body is not read: drain it so the connection can answer
        req.resume();
        reject(failed);
      } else if (!file) reject(new CxrError('E_BAD_REQUEST', 'multipart/form-data body has no file part'));
      else resolve(file);
    };
    const broken = (e: unknown) => {
      fail(new CxrError('E_BAD_REQUEST', `multipart/form-data body cannot be parsed: ${(e as Error)?.message ?? String(e)}`));
      finish();
    };
    bb.on('file', (field, stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(tooLarge(limit)));
      stream.on('error', broken);
      stream.on('close', () => {
        if (!failed && !file) file = { field, bytes: Buffer.concat(chunks) };
      });
    });
    bb.on('filesLimit', () => fail(new CxrError('E_BAD_REQUEST', 'send one file per request (use STOW-RS for several)')));
    bb.on('partsLimit', () => fail(new CxrError('E_BAD_REQUEST', 'too many parts in the multipart/form-data body')));
    bb.on('fieldsLimit', () => fail(new CxrError('E_BAD_REQUEST', 'too many fields in the multipart/form-data body')));
    bb.on('error', broken);
    bb.on('close', finish);
    req.on('error', broken);
    req.on('aborted', () => broken(new Error('request aborted by the client')));
    req.pipe(bb);
  });
}
