/** Server-side web sessions of people (the web app); the token itself is never stored, only its sha256. */
import type { DataSource, EntityManager } from 'typeorm';
import type { Role } from './entities.js';

export type SessionEndReason = 'logout' | 'idle' | 'absolute' | 'disabled';

export interface WebSessionRecord {
  tokenSha256: string;
  userId: string;
  role: Role;
  displayName: string;
  userDisabled: boolean;
  csrfToken: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
}

type Db = DataSource | EntityManager;

export async function insertSession(db: Db, s: { tokenSha256: string; userId: string; csrfToken: string; expiresAt: Date }): Promise<void> {
  await db.query(`INSERT INTO web_sessions (token_sha256, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)`, [
    s.tokenSha256,
    s.userId,
    s.csrfToken,
    s.expiresAt,
  ]);
}

interface SessionSqlRow {
  token_sha256: string;
  user_id: string;
  role: Role;
  display_name: string;
  disabled_at: Date | null;
  csrf_token: string;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  ended_at: Date | null;
}

export async function findSession(db: Db, tokenSha256: string): Promise<WebSessionRecord | null> {
  const rows: SessionSqlRow[] = await db.query(
    `SELECT s.token_sha256, s.user_id, u.role, u.display_name, u.disabled_at, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.ended_at
       FROM web_sessions s JOIN users u ON u.id = s.user_id
      WHERE s.token_sha256 = $1`,
    [tokenSha256],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    tokenSha256: r.token_sha256,
    userId: r.user_id,
    role: r.role,
    displayName: r.display_name,
    userDisabled: r.disabled_at !== null,
    csrfToken: r.csrf_token,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
    endedAt: r.ended_at,
  };
}

/** Moves the idle clock on; only a live session is touched (an ended one stays ended). */
export async function touchSession(db: Db, tokenSha256: string, now: Date): Promise<void> {
  await db.query(`UPDATE web_sessions SET last_seen_at = $2 WHERE token_sha256 = $1 AND ended_at IS NULL`, [tokenSha256, now]);
}

/** Ends a live session; false when it had already ended. */
export async function endSession(db: Db, tokenSha256: string, reason: SessionEndReason): Promise<boolean> {
  const res: [unknown[], number] = await db.query(`UPDATE web_sessions SET ended_at = now(), ended_reason = $2 WHERE token_sha256 = $1 AND ended_at IS NULL`, [
    tokenSha256,
    reason,
  ]);
  return res[1] > 0;
}

/** Ends every live session of a user (disabled by an admin). */
export async function endSessionsOf(db: Db, userId: string, reason: SessionEndReason): Promise<number> {
  const res: [unknown[], number] = await db.query(`UPDATE web_sessions SET ended_at = now(), ended_reason = $2 WHERE user_id = $1 AND ended_at IS NULL`, [
    userId,
    reason,
  ]);
  return res[1];
}
