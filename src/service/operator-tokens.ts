/**
 * Long-lived operator tokens that can be revoked: each token `cxr-triage token` mints is
 * recorded by its JWT id, and every request with an operator token looks the id up. One rule
 * set for the CLI and the admin API; each change is audited in the transaction that makes it.
 */
import type { DataSource, EntityManager } from 'typeorm';
import { findOperatorToken, insertOperatorToken, revokeOperatorTokenRow, type OperatorTokenRow } from '../db/operator-tokens.js';
import { CxrError } from '../errors.js';

const TOKEN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const SUBJECT_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;

export type TokenAudit = (m: EntityManager, detail: Record<string, unknown>) => Promise<void>;

export type NewOperatorToken = Omit<OperatorTokenRow, 'revokedAt' | 'revokedBy'>;

/** Records a minted token (before it is handed out: a token not on record may be refused). */
export async function recordOperatorToken(ds: DataSource, t: NewOperatorToken, audit: TokenAudit): Promise<void> {
  if (!SUBJECT_PATTERN.test(t.subject)) throw new CxrError('E_BAD_ARGUMENT', 'a token subject is 1-64 characters of A-Z a-z 0-9 . _ @ -');
  if (t.description.length > 500) throw new CxrError('E_BAD_ARGUMENT', 'a token description is at most 500 characters');
  await ds.transaction(async (m) => {
    await insertOperatorToken(m, t);
    await audit(m, { tokenId: t.id, subject: t.subject, tokenRole: t.role, expiresAt: t.expiresAt.toISOString() });
  });
}

/** Revokes a token on record; E_NOT_FOUND when there is none under this id that is not already revoked. */
export async function revokeOperatorToken(ds: DataSource, id: string, by: string, audit: TokenAudit): Promise<OperatorTokenRow> {
  if (!TOKEN_ID.test(id)) throw new CxrError('E_NOT_FOUND', `no token '${id.slice(0, 64)}' (a token id is a UUID)`);
  const key = id.toLowerCase();
  return ds.transaction(async (m) => {
    if (!(await revokeOperatorTokenRow(m, key, by))) throw new CxrError('E_NOT_FOUND', `no unrevoked token '${key}'`);
    const row = await findOperatorToken(m, key);
    if (!row) throw new CxrError('E_INTERNAL', `token '${key}' vanished while it was revoked`);
    await audit(m, { tokenId: key, subject: row.subject, tokenRole: row.role });
    return row;
  });
}

/**
 * Whether an operator token may be used: not revoked, and on record when it lives longer than
 * `maxUnrecordedSeconds` (an access token's lifetime), so a 10-year token minted before tokens
 * were recorded, or signed outside `cxr-triage token`, cannot be used and never revoked.
 */
export async function checkOperatorToken(
  db: DataSource | EntityManager,
  t: { id: string | null; lifetimeSeconds: number },
  maxUnrecordedSeconds: number,
): Promise<void> {
  const row = t.id && TOKEN_ID.test(t.id) ? await findOperatorToken(db, t.id.toLowerCase()) : null;
  if (row?.revokedAt) throw new CxrError('E_UNAUTHENTICATED', 'this operator token was revoked');
  if (!row && t.lifetimeSeconds > maxUnrecordedSeconds)
    throw new CxrError('E_UNAUTHENTICATED', 'a long-lived operator token must be on record: mint it with `cxr-triage token`');
}
