/**
 * One table of routes drives three things: the express handlers, role checks with auditing,
 * and the OpenAPI document — so a route cannot exist without being documented and guarded.
 */
import type { NextFunction, Request, Response } from 'express';
import type { DataSource, EntityManager } from 'typeorm';
import { appendAudit, appendAuditInTransaction, type AuditEntry } from '../db/audit.js';
import type { Role } from '../db/entities.js';
import { findActiveClient, findActiveUser } from '../db/principals.js';
import { CxrError, httpStatusFor, isCxrError } from '../errors.js';
import type { Logger } from '../service/log.js';
import type { TriageService } from '../service/triage.js';
import { checkSession, CSRF_HEADER, csrfMatches, readCookie, SESSION_COOKIE, type SessionPolicy } from '../service/web-sessions.js';
import { closeIfBodyUnread, UUID_RE, type Reply } from './http.js';
import { checkText } from './input.js';
import type { StudyEvents } from './events.js';
import type { ServiceMetrics } from './metrics.js';
import type { LoginThrottle } from '../service/login-throttle.js';
import type { StorageMonitor } from '../service/storage.js';
import { DUMMY_HASH_PROMISE, verifySecret } from '../service/credentials.js';
import type { OperationDoc } from './openapi-types.js';
import { checkOperatorToken } from '../service/operator-tokens.js';
import { verifyTokenDetail, type JwtConfig, type Principal } from './tokens.js';

/** The settings the routes read (a subset of the service configuration, which lives above api/). */
export interface ApiSettings {
  jwt: JwtConfig;
  maxBodyBytes: number;
  waitTimeoutMs: number;
}

export interface ApiDeps {
  config: ApiSettings;
  ds: DataSource;
  service: TriageService;
  metrics: ServiceMetrics;
  log: Logger;
  /** loads an engine with this model version in place of the active one of its kind and swaps it in; ends a shadow run of it */
  activateModel?: (name: string, version: string, by: string) => Promise<{ shadowStopped: string | null }>;
  /** the models folder the workers load from (shadow candidates are checked against it); absent: shadow runs cannot be started here */
  modelsDir?: string;
  /** models loaded and warmed */
  modelsReady: () => boolean;
  /** live study events for the web app's worklist (absent: /v1/events answers 404) */
  events?: StudyEvents;
  /** idle and absolute timeouts of people's web sessions (cookie sign-in) */
  sessionPolicy: SessionPolicy;
  /** brake on failed token requests (absent: none) */
  loginThrottle?: LoginThrottle;
  /** whether the data directory has room; absent: not watched */
  storage?: StorageMonitor;
}

export interface Ctx {
  req: Request;
  res: Response;
  deps: ApiDeps;
  principal: Principal | null;
  requestId: string;
  /** the study the default audit row names */
  studyId: string | null;
  /** extra fields for the default audit row */
  detail: Record<string, unknown>;
  /** rows to append instead of the default one (a STOW-RS request touches several studies) */
  audits: Omit<AuditEntry, 'actor' | 'role' | 'requestId'>[];
  /** appends an audit row inside a transaction of the handler's own, so it commits with the change */
  auditIn(m: EntityManager, e: Omit<AuditEntry, 'actor' | 'role' | 'requestId'>): Promise<void>;
}

export interface RouteDef {
  method: 'get' | 'post' | 'delete';
  /** express path, e.g. /v1/studies/:id */
  path: string;
  roles: readonly Role[] | 'public';
  /** audit action; when set, every authenticated request to the route is written to the audit log */
  audit?: string;
  /** the route's :id is a study id: audit rows name it even when the request is refused */
  studyParam?: boolean;
  /** also accepts HTTP Basic with an API client's id and secret (DICOMweb routes: PACS send static credentials) */
  basicAuth?: boolean;
  doc: OperationDoc;
  handle(c: Ctx): Promise<Reply>;
}

export function principalOf(c: Ctx): Principal {
  if (!c.principal) throw new CxrError('E_UNAUTHENTICATED', 'authentication required');
  return c.principal;
}

function bearer(req: Request): string {
  const h = req.headers.authorization;
  if (!h) throw new CxrError('E_UNAUTHENTICATED', 'missing bearer token (Authorization: Bearer <token>)');
  const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(h);
  if (!m) throw new CxrError('E_UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"');
  return m[1];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const SESSION_ENDED: Record<string, string> = {
  unknown: 'not signed in (unknown or ended session)',
  logout: 'this session was signed out',
  idle: 'the session expired after inactivity: sign in again',
  absolute: 'the session reached its maximum age: sign in again',
  disabled: 'the user behind this session was disabled',
};

/**
 * A person in the web app: the session cookie, and on every state change the CSRF token the
 * page got at sign-in (SameSite=Strict already stops cross-site posts; the token also covers
 * same-site pages and older browsers).
 */
async function authenticateSession(deps: ApiDeps, req: Request, token: string, touch = true): Promise<Principal> {
  const check = await checkSession(deps.ds, token, deps.sessionPolicy, new Date(), { touch });
  if (!check.ok) throw new CxrError('E_UNAUTHENTICATED', SESSION_ENDED[check.reason]);
  if (!SAFE_METHODS.has(req.method)) {
    const sent = req.headers[CSRF_HEADER];
    if (!csrfMatches(typeof sent === 'string' ? sent : undefined, check.session.csrfToken)) {
      throw new CxrError('E_CSRF', `a signed-in page must send its CSRF token in ${CSRF_HEADER} on every change`);
    }
  }
  return { sub: check.session.userId, role: check.session.role, kind: 'user' };
}

/**
 * HTTP Basic with an API client's id and secret, for machines that can send only a static
 * credential (a PACS forwarding by DICOMweb): checked against the stored scrypt hash on every
 * request, so revoking the client ends it at once. An unknown id costs as much as a wrong secret.
 */
async function basicClient(deps: ApiDeps, req: Request, header: string): Promise<Principal> {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  const decoded = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon < 1) throw new CxrError('E_UNAUTHENTICATED', 'Authorization: Basic needs base64 of "client_id:client_secret"');
  // a NUL cannot reach PostgreSQL (it would be a 500); the token endpoint answers the same 400
  const id = checkText(decoded.slice(0, colon), 'the HTTP Basic client id');
  const secret = checkText(decoded.slice(colon + 1), 'the HTTP Basic client secret');
  if (id.length > 64 || secret.length > 1024) throw new CxrError('E_BAD_REQUEST', 'credentials too long');
  // the token endpoint's throttle and keys: a name or address locked there is locked here, before any hashing
  const subject = `client_credentials:${id}`;
  const address = req.socket.remoteAddress ?? 'unknown';
  const wait = deps.loginThrottle ? await deps.loginThrottle.lockedFor(subject, address) : null;
  if (wait !== null) throw new CxrError('E_RATE_LIMITED', `too many failed attempts: try again in ${wait} s`, { retryAfterSeconds: wait });
  const client = await findActiveClient(deps.ds, id);
  const ok = await verifySecret(secret, client?.secretHash ?? (await DUMMY_HASH_PROMISE));
  if (!client || !ok) {
    await deps.loginThrottle?.recordFailure(subject, address);
    throw new CxrError('E_UNAUTHENTICATED', 'unknown client or wrong secret');
  }
  return { sub: client.id, role: client.role, kind: 'client' };
}

/**
 * Machines send a bearer token (or HTTP Basic on DICOMweb routes); people's browsers send the
 * session cookie. A request with an Authorization header is judged by it alone, so a token never
 * mixes with a cookie. A token is checked against its client or user not having been revoked since,
 * and an operator token against its own record.
 */
async function authenticate(deps: ApiDeps, req: Request, route: RouteDef, touch = true): Promise<Principal> {
  const h = req.headers.authorization;
  if (!h) {
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (cookie !== undefined) return authenticateSession(deps, req, cookie, touch);
  }
  if (route.basicAuth && h && /^Basic\s/i.test(h)) return basicClient(deps, req, h);
  const t = verifyTokenDetail(deps.config.jwt, bearer(req));
  const p = t.principal;
  // an operator token is on record by its id (cxr-triage token): revoked there, refused here
  if (p.kind === 'operator') await checkOperatorToken(deps.ds, t, deps.config.jwt.ttlSeconds);
  if (p.kind === 'client' && !(await findActiveClient(deps.ds, p.sub))) throw new CxrError('E_UNAUTHENTICATED', 'the client behind this token was revoked');
  if (p.kind === 'user' && !(await findActiveUser(deps.ds, p.sub))) throw new CxrError('E_UNAUTHENTICATED', 'the user behind this token was disabled');
  return p;
}

function send(res: Response, r: Reply): void {
  if (r.streamed) return;
  if (r.code) res.locals.errorCode = r.code;
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  closeIfBodyUnread(res.req, res);
  res.status(r.status);
  if (r.json !== undefined) {
    res.type(r.type ?? 'application/json').send(JSON.stringify(r.json));
  } else if (r.body !== undefined) {
    if (r.type) res.type(r.type);
    res.send(r.body);
  } else {
    res.end();
  }
}

export function outcomeOf(status: number, e?: unknown): string {
  if (e) return isCxrError(e) ? e.code : 'E_INTERNAL';
  return status < 400 ? 'ok' : `http_${status}`;
}

/**
 * Whether the request's credential still admits it (for a response that outlives its start: a
 * stream). Sessions are checked without counting as activity. False when it was signed out,
 * expired, disabled or revoked since, or its role no longer may use the route.
 */
export async function stillAuthenticated(c: Ctx, route: RouteDef): Promise<boolean> {
  try {
    const p = await authenticate(c.deps, c.req, route, false);
    return route.roles === 'public' || route.roles.includes(p.role);
  } catch {
    return false;
  }
}

/** The express handler for one route: authenticate, check role, run, audit, send. */
export function handlerFor(route: RouteDef, deps: ApiDeps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const requestId = res.locals.requestId as string;
    const c: Ctx = {
      req,
      res,
      deps,
      principal: null,
      requestId,
      studyId: null,
      detail: {},
      audits: [],
      auditIn: async () => {},
    };
    let auditedInTx = false;
    c.auditIn = async (m, e) => {
      const p = principalOf(c);
      await appendAuditInTransaction(m, { ...e, actor: p.sub, role: p.role, requestId });
      auditedInTx = true;
    };
    const audit = async (status: number, error?: unknown) => {
      // a row appended inside the handler's transaction counts only if that transaction
      // committed, which a failed request cannot promise (its COMMIT may be what failed):
      // then the failure is audited on its own
      if (!route.audit || !c.principal || (auditedInTx && !error)) return;
      const base = { actor: c.principal.sub, role: c.principal.role, requestId };
      const rows =
        c.audits.length > 0 && !error
          ? c.audits
          : [{ action: route.audit, studyId: c.studyId, outcome: outcomeOf(status, error), detail: { ...c.detail, status, method: req.method } }];
      for (const row of rows) await appendAudit(deps.ds, { ...base, ...row });
    };
    if (route.studyParam && UUID_RE.test(String(req.params.id ?? ''))) c.studyId = String(req.params.id).toLowerCase();
    try {
      if (route.roles !== 'public') {
        c.principal = await authenticate(deps, req, route);
        res.locals.principal = c.principal;
        if (!route.roles.includes(c.principal.role)) {
          throw new CxrError('E_FORBIDDEN', `role '${c.principal.role}' may not ${route.doc.summary.toLowerCase()}`);
        }
      }
      const reply = await route.handle(c);
      await audit(reply.status);
      send(res, reply);
    } catch (e) {
      try {
        await audit(isCxrError(e) ? httpStatusFor(e.code) : 500, e);
      } catch (auditError) {
        deps.log.error('audit append failed', { requestId, error: String(auditError) });
      }
      next(e);
    }
  };
}
