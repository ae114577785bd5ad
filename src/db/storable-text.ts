/**
 * Text as PostgreSQL keeps it. A text value cannot hold a NUL (the statement fails) and an
 * unpaired UTF-16 surrogate is stored as U+FFFD, so text carrying either is refused at the edge
 * (api/input.ts) or, where it must be kept whatever it holds (the audit log, hashed as stored),
 * made storable.
 */

/** A NUL, or half of a UTF-16 surrogate pair. */
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

export function hasUnstorable(s: string): boolean {
  return UNSTORABLE.test(s);
}

/** Each NUL and unpaired surrogate replaced by U+FFFD: the text PostgreSQL gives back. */
export function storableText(s: string): string {
  return s.replace(UNSTORABLE_ALL, '\uFFFD');
}
