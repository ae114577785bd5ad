/**
 * The API boundary's one input check: every text a client sends (query values, JSON strings
 * and keys, credentials) and every number it sends is checked here before it can reach a
 * handler or PostgreSQL. PostgreSQL refuses NUL in text and numbers beyond bigint; a
 * malformed % escape or a lone UTF-16 surrogate silently changes meaning on the way. All
 * of them are the client's mistake: 400 E_BAD_REQUEST naming where, never a 500.
 */
import type { NextFunction, Request, Response } from 'express';
import { CxrError } from '../errors.js';
import { hasUnstorable } from '../db/storable-text.js';

/** PostgreSQL bigint's maximum: the largest sequence number a cursor may name. */
const BIGINT_MAX = 9223372036854775807n;
/** Deeper JSON than this is not something any route reads: refused before it is walked. */
const MAX_JSON_DEPTH = 32;

const bad = (message: string) => new CxrError('E_BAD_REQUEST', message);

/** Refuses a NUL (PostgreSQL refuses it in text) or a lone surrogate (not encodable as UTF-8) from a client. */
export function checkText(value: string, where: string): string {
  if (hasUnstorable(value)) {
    throw bad(`${where} contains ${value.includes('\0') ? 'a NUL character' : 'an unpaired UTF-16 surrogate'}`);
  }
  return value;
}

/** A JSON number a route could use: finite, and an integer only within the exactly representable range. */
export function checkNumber(value: number, where: string): number {
  if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) throw bad(`${where} is out of range`);
  return value;
}

/** Walks a parsed JSON value (iteratively, so depth cannot exhaust the stack). */
export function checkJson(value: unknown, where = 'request body'): void {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: where, depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') checkText(v, path);
    else if (typeof v === 'number') checkNumber(v, path);
    else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH) throw bad(`${where} is nested deeper than ${MAX_JSON_DEPTH} levels`);
      if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, path: `${path}[${i}]`, depth: depth + 1 }));
      else
        for (const [k, x] of Object.entries(v)) {
          checkText(k, `a key in ${path}`);
          stack.push({ v: x, path: `${path}.${k.slice(0, 40)}`, depth: depth + 1 });
        }
    }
  }
}

/** Parses JSON text and checks it; a syntax error is the client's too. */
export function parseJson(raw: string, where = 'request body'): unknown {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw bad(`${where} is not valid JSON`);
  }
  checkJson(v, where);
  return v;
}

/** decodeURIComponent for form fields and Basic credentials: a malformed escape is a 400, not a URIError. */
export function decodeComponent(raw: string, where: string): string {
  let v: string;
  try {
    v = decodeURIComponent(raw);
  } catch {
    throw bad(`${where} holds a malformed % escape`);
  }
  return checkText(v, where);
}

/** A % not followed by two hex digits. */
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;

/** A sequence number as text (pagination cursors): digits only, within PostgreSQL's bigint. */
export function isSeqText(v: unknown): v is string {
  return typeof v === 'string' && /^\d{1,19}$/.test(v) && BigInt(v) <= BIGINT_MAX;
}

/**
 * Express middleware run before every route: the request target's escapes and every query
 * value. JSON bodies are checked where they are read (http.ts readJsonObject, the token route).
 */
export function checkRequestTarget(req: Request, _res: Response, next: NextFunction): void {
  try {
    const url = req.originalUrl;
    if (BAD_ESCAPE.test(url)) throw bad('the request URL holds a malformed % escape');
    // %00 decodes to NUL in a path parameter or a query value alike.
    if (/%00/.test(url)) throw bad('the request URL contains a NUL character (%00)');
    for (const [name, v] of Object.entries(req.query as Record<string, unknown>)) {
      checkText(name, 'a query parameter name');
      for (const x of Array.isArray(v) ? v : [v]) if (typeof x === 'string') checkText(x, `query parameter '${name.slice(0, 40)}'`);
    }
    next();
  } catch (e) {
    next(e);
  }
}
