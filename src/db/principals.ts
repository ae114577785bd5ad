/** API clients (machines: workstations, integrations) and users (people), each with one role. */
import type { DataSource, EntityManager } from 'typeorm';
import { IsNull } from 'typeorm';
import { ApiClientEntity, UserEntity, type ApiClientRow, type Role, type UserRow } from './entities.js';

export async function findActiveClient(db: DataSource | EntityManager, id: string): Promise<ApiClientRow | null> {
  return db.getRepository(ApiClientEntity).findOneBy({ id, revokedAt: IsNull() });
}

/** The active client that registered this calling AE title (compared trimmed and upper-case). */
export async function findActiveClientByAeTitle(db: DataSource | EntityManager, aeTitle: string): Promise<ApiClientRow | null> {
  const ae = normaliseAeTitle(aeTitle);
  // A null in a TypeORM where clause is dropped, not matched: never look up without a title.
  if (ae === null) return null;
  return db.getRepository(ApiClientEntity).findOneBy({ aeTitle: ae, revokedAt: IsNull() });
}

/**
 * An AE title as stored: trimmed (senders pad to 16 with spaces) and upper-case; null when it
 * is not 1-16 characters of the default repertoire without backslash and control characters.
 */
export function normaliseAeTitle(raw: string): string | null {
  const t = raw.trim().toUpperCase();
  return /^[\x20-\x5b\x5d-\x7e]{1,16}$/.test(t) ? t : null;
}

export async function findClient(db: DataSource | EntityManager, id: string): Promise<ApiClientRow | null> {
  return db.getRepository(ApiClientEntity).findOneBy({ id });
}

export async function listClients(db: DataSource | EntityManager): Promise<ApiClientRow[]> {
  return db.getRepository(ApiClientEntity).find({ order: { createdAt: 'ASC', id: 'ASC' } });
}

/** Inserts a client; false when the id is taken (revoked ids stay taken, so audit trails stay unambiguous). */
export async function insertClient(
  m: EntityManager | DataSource,
  c: { id: string; role: Role; secretHash: string; description: string; createdBy: string; aeTitle?: string | null },
): Promise<boolean> {
  const res = await m
    .createQueryBuilder()
    .insert()
    .into(ApiClientEntity)
    .values({ ...c, aeTitle: c.aeTitle ?? null, createdAt: new Date(), revokedAt: null })
    .orIgnore()
    .returning(['id'])
    .execute();
  return Array.isArray(res.raw) && res.raw.length > 0;
}

export async function revokeClient(m: EntityManager | DataSource, id: string): Promise<boolean> {
  const res: [unknown[], number] = await m.query(`UPDATE api_clients SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, [id]);
  return res[1] > 0;
}

export async function findActiveUser(db: DataSource | EntityManager, id: string): Promise<UserRow | null> {
  return db.getRepository(UserEntity).findOneBy({ id, disabledAt: IsNull() });
}

export async function findUser(db: DataSource | EntityManager, id: string): Promise<UserRow | null> {
  return db.getRepository(UserEntity).findOneBy({ id });
}

export async function listUsers(db: DataSource | EntityManager): Promise<UserRow[]> {
  return db.getRepository(UserEntity).find({ order: { createdAt: 'ASC', id: 'ASC' } });
}

export async function insertUser(
  m: EntityManager | DataSource,
  u: { id: string; displayName: string; role: Role; passwordHash: string; createdBy: string },
): Promise<boolean> {
  const res = await m
    .createQueryBuilder()
    .insert()
    .into(UserEntity)
    .values({ ...u, createdAt: new Date(), disabledAt: null })
    .orIgnore()
    .returning(['id'])
    .execute();
  return Array.isArray(res.raw) && res.raw.length > 0;
}

export async function disableUser(m: EntityManager | DataSource, id: string): Promise<boolean> {
  const res: [unknown[], number] = await m.query(`UPDATE users SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL`, [id]);
  return res[1] > 0;
}
