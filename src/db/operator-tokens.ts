/**
 * Operator tokens on record (migrations/…-OperatorTokens): one row per token `cxr-triage token`
 * minted, by its JWT id, so it can be listed and revoked. The token itself is never stored.
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { Role } from './entities.js';

export interface OperatorTokenRow {
  id: string;
  subject: string;
  role: Role;
  description: string;
  createdBy: string;
  issuedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
}

type Db = DataSource | EntityManager;

function rowOf(r: Record<string, unknown>): OperatorTokenRow {
  return {
    id: r.id as string,
    subject: r.subject as string,
    role: r.role as Role,
    description: r.description as string,
    createdBy: r.created_by as string,
    issuedAt: new Date(r.issued_at as string),
    expiresAt: new Date(r.expires_at as string),
    revokedAt: r.revoked_at ? new Date(r.revoked_at as string) : null,
    revokedBy: (r.revoked_by as string | null) ?? null,
  };
}

export async function insertOperatorToken(db: Db, t: Omit<OperatorTokenRow, 'revokedAt' | 'revokedBy'>): Promise<void> {
  await db.query(`INSERT INTO operator_tokens (id, subject, role, description, created_by, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    t.id,
    t.subject,
    t.role,
    t.description,
    t.createdBy,
    t.issuedAt,
    t.expiresAt,
  ]);
}

export async function findOperatorToken(db: Db, id: string): Promise<OperatorTokenRow | null> {
  const rows: Record<string, unknown>[] = await db.query(`SELECT * FROM operator_tokens WHERE id = $1`, [id]);
  return rows[0] ? rowOf(rows[0]) : null;
}

/** Newest first; `all: false` leaves out revoked and expired ones. */
export async function listOperatorTokens(db: Db, opts: { all: boolean } = { all: true }): Promise<OperatorTokenRow[]> {
  const rows: Record<string, unknown>[] = await db.query(
    `SELECT * FROM operator_tokens ${opts.all ? '' : 'WHERE revoked_at IS NULL AND expires_at > now()'} ORDER BY issued_at DESC, id`,
  );
  return rows.map(rowOf);
}

/** Marks a token revoked; false when there is no such token or it was already revoked. */
export async function revokeOperatorTokenRow(db: Db, id: string, by: string): Promise<boolean> {
  const res: [unknown[], number] = await db.query(`UPDATE operator_tokens SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL`, [
    id,
    by,
  ]);
  return res[1] > 0;
}
