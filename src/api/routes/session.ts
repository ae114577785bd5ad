/**
 * Sign-in for people (the web app): a password exchanged for a server-side session in an HttpOnly,
 * SameSite=Strict cookie and a CSRF token the page keeps in memory. Machines keep bearer tokens
 * (POST /v1/auth/token); both count failed passwords in the same throttle, by the same key.
 */
import { appendAudit } from '../../db/audit.js';
import type { Role } from '../../db/entities.js';
import { findActiveUser } from '../../db/principals.js';
import { CxrError } from '../../errors.js';
import { checkSession, closeSession, openSession, readCookie, SESSION_COOKIE } from '../../service/web-sessions.js';
import { DUMMY_HASH_PROMISE, verifySecret } from '../../service/credentials.js';
import { readBody, requireMediaType, type Reply } from '../http.js';
import { checkJson, parseJson } from '../input.js';
import { json, ref } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';

const PEOPLE: readonly Role[] = ['clinician', 'auditor', 'admin'];

function cookie(c: Ctx, value: string, maxAgeS: number): string {
  // behind a TLS-terminating proxy the browser speaks HTTPS even though this hop is HTTP
  const https = c.req.secure || c.req.headers['x-forwarded-proto'] === 'https';
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${https ? '; Secure' : ''}`;
}

async function readLogin(c: Ctx): Promise<{ username: string; password: string }> {
  const t = requireMediaType(c.req, ['application/json', 'application/x-www-form-urlencoded']);
  const raw = (await readBody(c.req, 8 * 1024)).toString('utf8');
  let fields: Record<string, unknown>;
  // checked like every JSON body: a NUL or an unpaired surrogate in the name would otherwise
  // reach PostgreSQL (a 500) and the audit row, whose stored text would no longer match its hash
  if (t === 'application/json') {
    const v = parseJson(raw);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CxrError('E_BAD_REQUEST', 'request body must be a JSON object');
    fields = v as Record<string, unknown>;
  } else {
    fields = Object.fromEntries(new URLSearchParams(raw));
    checkJson(fields, 'form body');
  }
  const username = typeof fields?.username === 'string' ? fields.username : '';
  const password = typeof fields?.password === 'string' ? fields.password : '';
  if (!username || !password || username.length > 64 || password.length > 1024) {
    throw new CxrError('E_BAD_REQUEST', 'username and password are required');
  }
  return { username, password };
}

export const postSession: RouteDef = {
  method: 'post',
  path: '/v1/auth/session',
  roles: 'public',
  doc: {
    summary: 'Sign in (web app)',
    tags: ['auth'],
    description:
      'A person (clinician, auditor, admin) exchanges username and password for a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) ' +
      "and a CSRF token to send as X-CSRF-Token on every change. Failed passwords count in the token endpoint's throttle. Every attempt is audited.",
    requestBody: {
      required: true,
      content: { 'application/json': { schema: ref('LoginRequest') }, 'application/x-www-form-urlencoded': { schema: ref('LoginRequest') } },
    },
    responses: {
      '200': { description: 'Signed in', content: json(ref('Session')) },
      '400': { description: 'Malformed request', content: json(ref('Error')) },
      '401': { description: 'Unknown user or wrong password', content: json(ref('Error')) },
      '429': { description: 'Too many failed attempts; Retry-After says when to try again', content: json(ref('Error')) },
    },
  },
  async handle(c): Promise<Reply> {
    // Login CSRF: a page of another site can post a form here and sign the browser in as the
    // attacker (whose account then collects the victim's reviews). Browsers say where a request
    // comes from; only this site's own pages (or a typed address) may sign in. Clients that are
    // not browsers send no such header.
    const site = c.req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new CxrError('E_CSRF', `a sign-in must come from this site's own page (Sec-Fetch-Site: ${String(site).slice(0, 20)})`);
    const { username, password } = await readLogin(c);
    const audit = (outcome: string, role: Role | null) =>
      appendAudit(c.deps.ds, { actor: username, role, action: 'auth.session', studyId: null, requestId: c.requestId, outcome, detail: {} });
    const gate = c.deps.loginThrottle ? await c.deps.loginThrottle.begin(`password:${username}`, c.req.socket.remoteAddress ?? 'unknown') : null;
    if (gate && !gate.allowed) {
      await audit('E_RATE_LIMITED', null);
      throw new CxrError('E_RATE_LIMITED', `too many failed attempts: try again in ${gate.retryAfterSeconds} s`, {
        retryAfterSeconds: gate.retryAfterSeconds,
      });
    }
    const user = await findActiveUser(c.deps.ds, username);
    const ok = (await verifySecret(password, user ? user.passwordHash : await DUMMY_HASH_PROMISE)) && user !== null;
    if (!ok || !user) {
      await audit('E_UNAUTHENTICATED', null);
      await gate?.failed();
      throw new CxrError('E_UNAUTHENTICATED', 'wrong username or password');
    }
    if (!PEOPLE.includes(user.role)) {
      await audit('E_FORBIDDEN', user.role);
      await gate?.succeeded();
      throw new CxrError('E_FORBIDDEN', `role '${user.role}' signs in with a bearer token, not a web session`);
    }
    await gate?.succeeded();
    const policy = c.deps.sessionPolicy;
    const s = await openSession(c.deps.ds, user.id, policy);
    await audit('ok', user.role);
    return {
      status: 200,
      json: sessionView(user.id, user.role, user.displayName, s.csrfToken, s.expiresAt, policy.idleMs),
      headers: { 'Set-Cookie': cookie(c, s.token, Math.floor(policy.absoluteMs / 1000)), 'Cache-Control': 'no-store' },
    };
  },
};

function sessionView(id: string, role: Role, displayName: string, csrfToken: string, expiresAt: Date, idleMs: number) {
  return { user: { id, role, displayName }, csrfToken, expiresAt: expiresAt.toISOString(), idleTimeoutSeconds: Math.floor(idleMs / 1000) };
}

export const getSession: RouteDef = {
  method: 'get',
  path: '/v1/auth/session',
  roles: PEOPLE,
  doc: {
    summary: 'The signed-in person',
    tags: ['auth'],
    description:
      'Who the session cookie belongs to and the CSRF token of the session (a reloaded page reads it here); with a bearer token, who it speaks for and no CSRF token.',
    responses: { '200': { description: 'The session', content: json(ref('Session')) }, '401': { description: 'Not signed in', content: json(ref('Error')) } },
  },
  async handle(c) {
    const p = principalOf(c);
    const token = c.req.headers.authorization ? undefined : readCookie(c.req.headers.cookie, SESSION_COOKIE);
    if (!token) {
      // a bearer token has no web session: who it speaks for, without a CSRF token
      return { status: 200, json: { user: { id: p.sub, role: p.role, displayName: '' }, csrfToken: null, expiresAt: null, idleTimeoutSeconds: null } };
    }
    const user = await findActiveUser(c.deps.ds, p.sub);
    const check = await checkSession(c.deps.ds, token, c.deps.sessionPolicy);
    if (!user || !check.ok) throw new CxrError('E_UNAUTHENTICATED', 'the session ended');
    return {
      status: 200,
      json: sessionView(user.id, user.role, user.displayName, check.session.csrfToken, check.session.expiresAt, c.deps.sessionPolicy.idleMs),
    };
  },
};

export const deleteSession: RouteDef = {
  method: 'delete',
  path: '/v1/auth/session',
  roles: PEOPLE,
  audit: 'auth.session.logout',
  doc: {
    summary: 'Sign out',
    tags: ['auth'],
    description: 'Ends the session in the database and clears the cookie.',
    responses: { '204': { description: 'Signed out' }, '401': { description: 'Not signed in', content: json(ref('Error')) } },
  },
  async handle(c) {
    const token = readCookie(c.req.headers.cookie, SESSION_COOKIE);
    if (token) await closeSession(c.deps.ds, token);
    return { status: 204, headers: { 'Set-Cookie': cookie(c, '', 0) } };
  },
};

export const sessionRoutes = [postSession, getSession, deleteSession];
