/**
 * People who sign in to the web app (clinician, auditor, admin): one rule set for the admin API
 * and the `user` CLI — id shape, password length, a generated password when none is given, only a
 * scrypt hash stored, ids never reused, the audit row in the creating transaction; disabling a
 * user ends their web sessions at once.
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { Role, UserRow } from '../db/entities.js';
import { disableUser, findUser, insertUser } from '../db/principals.js';
import { endSessionsOf } from '../db/web-sessions.js';
import { CxrError } from '../errors.js';
import { generateSecret, hashSecret } from './credentials.js';

export const USER_ID_PATTERN = /^[A-Za-z0-9._@-]{3,64}$/;
export const USER_ID_SHAPE = '3-64 characters of A-Z a-z 0-9 . _ @ -';
export const MIN_PASSWORD_LENGTH = 12;

export interface NewUser {
  id: string;
  role: Role;
  displayName: string;
  /** absent: one is generated and returned once */
  password?: string;
  createdBy: string;
}

export type UserAudit = (m: EntityManager, detail: { userId: string; userRole: Role }) => Promise<void>;

export async function createUser(ds: DataSource, u: NewUser, audit: UserAudit): Promise<{ user: UserRow; generatedPassword: string | null }> {
  if (!USER_ID_PATTERN.test(u.id)) throw new CxrError('E_BAD_ARGUMENT', `user id must be ${USER_ID_SHAPE}`);
  if (u.role === 'workstation') throw new CxrError('E_BAD_ARGUMENT', 'machines are clients, not users: use role clinician, auditor or admin');
  if (u.password !== undefined && u.password.length < MIN_PASSWORD_LENGTH) {
    throw new CxrError('E_BAD_ARGUMENT', `password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (u.displayName.length > 200) throw new CxrError('E_BAD_ARGUMENT', 'display name must be at most 200 characters');
  const password = u.password ?? generateSecret();
  const passwordHash = await hashSecret(password);
  const created = await ds.transaction(async (m) => {
    const ok = await insertUser(m, { id: u.id, displayName: u.displayName, role: u.role, passwordHash, createdBy: u.createdBy });
    if (ok) await audit(m, { userId: u.id, userRole: u.role });
    return ok;
  });
  if (!created) throw new CxrError('E_CONFLICT', `user id '${u.id}' is taken (disabled ids are not reused)`);
  const user = await findUser(ds, u.id);
  if (!user) throw new CxrError('E_INTERNAL', `user '${u.id}' vanished after it was created`);
  return { user, generatedPassword: u.password === undefined ? password : null };
}

/** Disables an active user and ends their web sessions; E_NOT_FOUND when no active user has this id. */
export async function disableActiveUser(ds: DataSource, id: string, audit: (m: EntityManager) => Promise<void>): Promise<void> {
  const done = await ds.transaction(async (m) => {
    if (!(await disableUser(m, id))) return false;
    await endSessionsOf(m, id, 'disabled');
    await audit(m);
    return true;
  });
  if (!done) throw new CxrError('E_NOT_FOUND', `no active user '${id}'`);
}
