/**
 * Sessions of people in the web app. The cookie holds 32 random bytes; the database keeps their
 * sha256, the CSRF token the page echoes on state changes, and two clocks: the idle timeout (moved
 * on by use, at most once a minute so reading a page is not a write per request) and the absolute
 * one (fixed at sign-in). An expired session is ended with its reason, so the audit trail can say
 * why somebody was signed out.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Role } from '../db/entities.js';
import { endSession, findSession, insertSession, touchSession, type SessionEndReason } from '../db/web-sessions.js';

export const SESSION_COOKIE = 'cxr_session';
export const CSRF_HEADER = 'x-csrf-token';
export const DEFAULT_SESSION_IDLE_S = 30 * 60;
export const DEFAULT_SESSION_MAX_S = 12 * 60 * 60;
/** the idle clock is written at most this often (and at least four times per idle timeout) */
const TOUCH_EVERY_MS = 60_000;

export interface SessionPolicy {
  idleMs: number;
  absoluteMs: number;
}

export interface LiveSession {
  userId: string;
  role: Role;
  displayName: string;
  csrfToken: string;
  expiresAt: Date;
  idleExpiresAt: Date;
}

export type SessionCheck = { ok: true; session: LiveSession } | { ok: false; reason: 'unknown' | SessionEndReason };

export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Opens a session for a user whose password was just checked. */
export async function openSession(
  ds: DataSource,
  userId: string,
  policy: SessionPolicy,
  now = new Date(),
): Promise<{ token: string; csrfToken: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(24).toString('base64url');
  const expiresAt = new Date(now.getTime() + policy.absoluteMs);
  await insertSession(ds, { tokenSha256: hashSessionToken(token), userId, csrfToken, expiresAt });
  return { token, csrfToken, expiresAt };
}

/** Resolves a cookie's token to a live session, ending it (with its reason) when a clock has run out. */
/** `touch: false` checks without counting as activity (a stream re-checking its session must not keep it from going idle). */
export async function checkSession(ds: DataSource, token: string, policy: SessionPolicy, now = new Date(), o: { touch?: boolean } = {}): Promise<SessionCheck> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return { ok: false, reason: 'unknown' };
  const sha = hashSessionToken(token);
  const s = await findSession(ds, sha);
  if (!s) return { ok: false, reason: 'unknown' };
  if (s.endedAt) return { ok: false, reason: 'logout' };
  const expired: SessionEndReason | null = s.userDisabled
    ? 'disabled'
    : now >= s.expiresAt
      ? 'absolute'
      : now.getTime() - s.lastSeenAt.getTime() >= policy.idleMs
        ? 'idle'
        : null;
  if (expired) {
    await endSession(ds, sha, expired);
    return { ok: false, reason: expired };
  }
  let lastSeen = s.lastSeenAt;
  if (o.touch !== false && now.getTime() - s.lastSeenAt.getTime() >= Math.min(TOUCH_EVERY_MS, policy.idleMs / 4)) {
    await touchSession(ds, sha, now);
    lastSeen = now;
  }
  return {
    ok: true,
    session: {
      userId: s.userId,
      role: s.role,
      displayName: s.displayName,
      csrfToken: s.csrfToken,
      expiresAt: s.expiresAt,
      idleExpiresAt: new Date(Math.min(lastSeen.getTime() + policy.idleMs, s.expiresAt.getTime())),
    },
  };
}

export async function closeSession(ds: DataSource, token: string): Promise<boolean> {
  return endSession(ds, hashSessionToken(token), 'logout');
}

/** Constant-time comparison of the CSRF token a page sent with the session's. */
export function csrfMatches(sent: string | undefined, expected: string): boolean {
  if (!sent) return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Reads one cookie from a Cookie header (RFC 6265 pairs; the first occurrence wins). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
