/**
 * Creating and revoking API clients: one rule set for the admin API and the `client` CLI
 * (id shape, generated secret stored only as a scrypt hash, ids never reused, the audit row
 * written in the same transaction as the client).
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { ApiClientRow, Role } from '../db/entities.js';
import { findActiveClientByAeTitle, findClient, insertClient, normaliseAeTitle, revokeClient } from '../db/principals.js';
import { CxrError } from '../errors.js';
import { generateSecret, hashSecret } from './credentials.js';

export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._-]{3,64}$/;
/** How a valid client id looks, for error messages. */
export const CLIENT_ID_SHAPE = '3-64 characters of A-Z a-z 0-9 . _ -';

export interface NewClient {
  id: string;
  role: Role;
  description: string;
  /** who creates it: an admin's principal or `operator:<login>` */
  createdBy: string;
  /** calling AE title a workstation sends DIMSE C-STORE from (stored trimmed, upper-case) */
  aeTitle?: string | null;
}

/** Writes the audit row for a created client inside the creating transaction. */
export type ClientAudit = (m: EntityManager, detail: { clientId: string; clientRole: Role; aeTitle?: string }) => Promise<void>;

export interface CreatedClient {
  client: ApiClientRow;
  /** shown once to the caller; only its hash is stored */
  secret: string;
}

/** Creates a client with a generated secret; E_CONFLICT when the id is taken (revoked ids stay taken). */
export async function createClient(ds: DataSource, c: NewClient, audit: ClientAudit): Promise<CreatedClient> {
  if (!CLIENT_ID_PATTERN.test(c.id)) throw new CxrError('E_BAD_ARGUMENT', `client id must be ${CLIENT_ID_SHAPE}`);
  const aeTitle = c.aeTitle === undefined || c.aeTitle === null ? null : normaliseAeTitle(c.aeTitle);
  if (c.aeTitle !== undefined && c.aeTitle !== null && aeTitle === null)
    throw new CxrError('E_BAD_ARGUMENT', 'an AE title is 1-16 characters without backslash or control characters');
  // Only workstations send studies; an AE title on another role would be a way in with nothing to do.
  if (aeTitle !== null && c.role !== 'workstation') throw new CxrError('E_BAD_ARGUMENT', 'an AE title is for workstation clients');
  const secret = generateSecret();
  const secretHash = await hashSecret(secret);
  const created = await ds.transaction(async (m) => {
    if (aeTitle !== null && (await findActiveClientByAeTitle(m, aeTitle)))
      throw new CxrError('E_CONFLICT', `AE title '${aeTitle}' is registered to another active client`);
    const ok = await insertClient(m, { ...c, secretHash, aeTitle });
    if (ok) await audit(m, { clientId: c.id, clientRole: c.role, ...(aeTitle !== null ? { aeTitle } : {}) });
    return ok;
  });
  if (!created) throw new CxrError('E_CONFLICT', `client id '${c.id}' is taken (revoked ids are not reused)`);
  const client = await findClient(ds, c.id);
  if (!client) throw new CxrError('E_INTERNAL', `client '${c.id}' vanished after it was created`);
  return { client, secret };
}

/** Revokes an active client (its tokens stop working at once); E_NOT_FOUND when none is active under this id. */
export async function revokeActiveClient(db: DataSource | EntityManager, id: string): Promise<void> {
  if (!(await revokeClient(db, id))) throw new CxrError('E_NOT_FOUND', `no active client '${id}'`);
}
