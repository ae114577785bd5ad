/** Request reading and query parsing shared by the routes; every refusal is a CxrError. */
import type { Request, Response } from 'express';
import { CxrError } from '../errors.js';
import { parseJson } from './input.js';

/** What a route handler returns; the route wrapper audits it, then sends it. */
export interface Reply {
  status: number;
  json?: unknown;
  body?: Buffer | string;
  type?: string;
  headers?: Record<string, string>;
  /** the handler answered on the response itself (a server-sent event stream): nothing more to send */
  streamed?: true;
  /** the error code of a refusal answered as a reply (status >= 400) rather than thrown */
  code?: string;
}

/** Retry-After (seconds) of a refusal that passes soon: a full inference queue, a briefly unavailable service. */
export const BUSY_RETRY_AFTER_S = '5';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An answer to a request whose body was refused unread (a full queue, checked before reading):
 * the body is not drained, which Node would do to keep the connection; the connection closes
 * after the answer instead. Used by every answer, a thrown refusal's and a route's reply alike.
 */
export function closeIfBodyUnread(req: Request, res: Response): void {
  if (!req.complete) res.setHeader('Connection', 'close');
}

/** The media type of the request without parameters, lower-case ('' when absent). */
export function mediaType(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

export function requireMediaType(req: Request, allowed: readonly string[]): string {
  const t = mediaType(req);
  if (!allowed.includes(t)) {
    throw new CxrError('E_UNSUPPORTED_MEDIA_TYPE', `Content-Type must be ${allowed.join(' or ')}${t ? ` (got ${t})` : ' (none sent)'}`);
  }
  return t;
}

export function tooLarge(limit: number): CxrError {
  return new CxrError('E_PAYLOAD_TOO_LARGE', `request body exceeds the ${formatBytes(limit)} limit`);
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${Math.round(n / (1024 * 1024))} MiB` : `${Math.round(n / 1024)} KiB`;
}

/**
 * Reads the whole body up to `limit` bytes. A declared Content-Length over the limit is
 * refused before reading; a body that grows past it is refused as soon as it does.
 */
export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new CxrError('E_BAD_REQUEST', `request body could not be read: ${e.message}`));
    };
    const onAborted = () => {
      cleanup();
      reject(new CxrError('E_BAD_REQUEST', 'request aborted by the client'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** A JSON object body (Content-Type application/json), at most `limit` bytes. */
export async function readJsonObject(req: Request, limit = 64 * 1024): Promise<Record<string, unknown>> {
  requireMediaType(req, ['application/json']);
  const v = parseJson((await readBody(req, limit)).toString('utf8'));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CxrError('E_BAD_REQUEST', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** Single-valued query parameters, each parsed or refused with a 400 naming the parameter. */
export class Query {
  constructor(private readonly q: Request['query']) {}

  private raw(name: string): string | undefined {
    const v = (this.q as Record<string, unknown>)[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' must be given once`);
    return v;
  }

  string(name: string, maxLength = 200): string | undefined {
    const v = this.raw(name);
    if (v !== undefined && v.length > maxLength) throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' is too long`);
    return v === '' ? undefined : v;
  }

  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined || v === '') return undefined;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' must be true or false (got '${v}')`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.raw(name);
    if (v === undefined || v === '') return undefined;
    if (!(allowed as readonly string[]).includes(v))
      throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' must be one of ${allowed.join(', ')} (got '${v}')`);
    return v as T;
  }

  int(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' must be an integer from ${min} to ${max} (got '${v}')`);
    return n;
  }

  date(name: string): Date | undefined {
    const v = this.raw(name);
    if (v === undefined || v === '') return undefined;
    const d = new Date(v);
    if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime()))
      throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' must be an ISO 8601 date or time (got '${v}')`);
    return d;
  }

  uuid(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === '') return undefined;
    if (!UUID_RE.test(v)) throw new CxrError('E_BAD_REQUEST', `query parameter '${name}' must be a UUID`);
    return v.toLowerCase();
  }
}

/** Opaque pagination cursors: base64url JSON, validated on the way back in. */
export function encodeCursor(v: unknown): string {
  return Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
}

export function decodeCursor<T>(raw: string | undefined, check: (v: unknown) => v is T): T | null {
  if (raw === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new CxrError('E_BAD_REQUEST', 'cursor is not valid');
  }
  if (!check(v)) throw new CxrError('E_BAD_REQUEST', 'cursor is not valid');
  return v;
}
