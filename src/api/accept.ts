/**
 * Accept negotiation (RFC 9110 12.5.1) for the DICOMweb retrieve routes: the request's media
 * ranges with their parameters and q-values, matched against what a route can produce. For
 * multipart/related the `type` parameter names the part type, so `multipart/related;
 * type="application/dicom"` and `...type="application/octet-stream"` are different offers.
 */
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { CxrError } from '../errors.js';

export interface MediaRange {
  type: string;
  subtype: string;
  params: Record<string, string>;
  q: number;
}

/** Splits on `sep` outside double quotes. */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function parseAccept(header: string | undefined): MediaRange[] {
  if (!header?.trim()) return [{ type: '*', subtype: '*', params: {}, q: 1 }];
  const ranges: MediaRange[] = [];
  for (const part of splitOutsideQuotes(header, ',')) {
    const [mt, ...rest] = splitOutsideQuotes(part, ';');
    const [type, subtype] = mt.trim().toLowerCase().split('/');
    if (!type || !subtype) continue;
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim().toLowerCase();
      const v = p
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1');
      if (k === 'q') q = Number.isFinite(Number(v)) ? Math.min(1, Math.max(0, Number(v))) : 0;
      else params[k] = v;
    }
    ranges.push({ type, subtype, params, q });
  }
  return ranges;
}

/** What a route can produce: a media type, and for multipart/related the part type. */
export interface Offer {
  /** e.g. 'image/jpeg' or 'multipart/related' */
  media: string;
  /** the multipart/related part type */
  part?: string;
  /** whether a range's other parameters (transfer-syntax, charset) can be honoured */
  accepts?: (params: Record<string, string>) => boolean;
}

/** How well a range matches an offer: -1 no match, else its specificity (more specific wins). */
function matchOf(r: MediaRange, o: Offer): number {
  const [type, subtype] = o.media.split('/');
  if (r.type === '*' && r.subtype === '*') return 0;
  if (r.type !== type) return -1;
  if (r.subtype === '*') return 1;
  if (r.subtype !== subtype) return -1;
  if (o.part !== undefined) {
    const want = r.params.type?.toLowerCase();
    // a multipart/related range without `type` means the route's default part type: the first offer's
    if (want !== undefined && want !== o.part) return -1;
  }
  if (o.accepts && !o.accepts(r.params)) return -1;
  return 2 + Object.keys(r.params).length;
}

/**
 * The offer the request's Accept prefers (highest q of its most specific matching range; ties
 * go to the route's order), or E_NOT_ACCEPTABLE naming what the route produces.
 */
export function negotiate<O extends Offer>(req: Request, offers: readonly O[]): { offer: O; range: MediaRange } {
  const ranges = parseAccept(req.headers.accept);
  let best: { offer: O; range: MediaRange; q: number } | null = null;
  for (const o of offers) {
    let chosen: { range: MediaRange; spec: number } | null = null;
    for (const r of ranges) {
      // a bare multipart/related (no type) stands for the route's first multipart offer only
      if (o.part !== undefined && r.type === 'multipart' && r.params.type === undefined && o !== offers.find((x) => x.part !== undefined)) continue;
      const spec = matchOf(r, o);
      if (spec >= 0 && (!chosen || spec > chosen.spec)) chosen = { range: r, spec };
    }
    if (chosen && chosen.range.q > 0 && (!best || chosen.range.q > best.q)) best = { offer: o, range: chosen.range, q: chosen.range.q };
  }
  if (!best) {
    const produced = offers.map((o) => (o.part ? `${o.media}; type="${o.part}"` : o.media));
    throw new CxrError('E_NOT_ACCEPTABLE', `this resource is available as ${[...new Set(produced)].join(', ')}`.slice(0, 400));
  }
  return { offer: best.offer, range: best.range };
}

/** A multipart/related body of the parts, each with its own Content-Type (and Content-Location when given). */
export function multipartRelated(parts: { type: string; body: Uint8Array; location?: string }[], partType: string): { body: Buffer; type: string } {
  const boundary = `cxr-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const head = `--${boundary}\r\nContent-Type: ${p.type}\r\nContent-Length: ${p.body.length}\r\n${p.location ? `Content-Location: ${p.location}\r\n` : ''}\r\n`;
    chunks.push(Buffer.from(head), Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/related; type="${partType}"; boundary=${boundary}` };
}
