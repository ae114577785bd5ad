/** Token issue: an API client (client credentials) or a user (password) exchanges a secret for a JWT. */
import { appendAudit } from '../../db/audit.js';
import { findActiveClient, findActiveUser } from '../../db/principals.js';
import { CxrError } from '../../errors.js';
import { DUMMY_HASH_PROMISE, verifySecret } from '../../service/credentials.js';
import { readBody, requireMediaType, type Reply } from '../http.js';
import { checkJson, decodeComponent, parseJson } from '../input.js';
import { json, ref } from '../openapi-types.js';
import type { RouteDef } from '../route.js';
import { signToken, type Principal } from '../tokens.js';

async function readCredentials(c: Parameters<RouteDef['handle']>[0]): Promise<Record<string, string>> {
  const t = requireMediaType(c.req, ['application/json', 'application/x-www-form-urlencoded']);
  const raw = (await readBody(c.req, 8 * 1024)).toString('utf8');
  let fields: Record<string, unknown>;
  if (t === 'application/json') {
    const v = parseJson(raw);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CxrError('E_BAD_REQUEST', 'request body must be a JSON object');
    fields = v as Record<string, unknown>;
  } else {
    fields = Object.fromEntries(new URLSearchParams(raw));
    checkJson(fields, 'form body');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (typeof v === 'string') out[k] = v;
  // OAuth 2 client_secret_basic: client id and secret in an HTTP Basic header, form-urlencoded (RFC 6749 2.3.1).
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(c.req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      out.client_id ??= decodeComponent(decoded.slice(0, i), 'the HTTP Basic client id');
      out.client_secret ??= decodeComponent(decoded.slice(i + 1), 'the HTTP Basic client secret');
    }
  }
  return out;
}

export const postToken: RouteDef = {
  method: 'post',
  path: '/v1/auth/token',
  roles: 'public',
  doc: {
    summary: 'Get an access token',
    tags: ['auth'],
    description:
      'grant_type=client_credentials with client_id and client_secret (body or HTTP Basic), or grant_type=password with username and password. ' +
      "Returns a JWT (HS256) for the principal's role. Every attempt is audited.",
    requestBody: {
      required: true,
      content: { 'application/json': { schema: ref('TokenRequest') }, 'application/x-www-form-urlencoded': { schema: ref('TokenRequest') } },
    },
    responses: {
      '200': { description: 'Token issued', content: json(ref('Token')) },
      '400': { description: 'Malformed request', content: json(ref('Error')) },
      '401': { description: 'Unknown principal or wrong secret', content: json(ref('Error')) },
      '415': { description: 'Unsupported Content-Type', content: json(ref('Error')) },
      '429': { description: 'Too many failed attempts for this name or address; Retry-After says when to try again', content: json(ref('Error')) },
    },
  },
  async handle(c): Promise<Reply> {
    const f = await readCredentials(c);
    const grant = f.grant_type ?? (f.username ? 'password' : 'client_credentials');
    let id: string;
    let secret: string;
    if (grant === 'client_credentials') {
      id = f.client_id ?? '';
      secret = f.client_secret ?? '';
    } else if (grant === 'password') {
      id = f.username ?? '';
      secret = f.password ?? '';
    } else {
      throw new CxrError('E_BAD_REQUEST', "grant_type must be 'client_credentials' or 'password'");
    }
    if (!id || !secret || id.length > 64 || secret.length > 1024) throw new CxrError('E_BAD_REQUEST', 'credentials missing or too long');
    // Counted before the secret is checked (and atomically with the limit): concurrent
    // guesses cannot all slip through a check made before any of them was counted.
    const gate = c.deps.loginThrottle ? await c.deps.loginThrottle.begin(`${grant}:${id}`, c.req.socket.remoteAddress ?? 'unknown') : null;
    if (gate && !gate.allowed) {
      // refused before the secret is checked: a locked name gives a guesser no signal
      await appendAudit(c.deps.ds, {
        actor: id,
        role: null,
        action: 'auth.token',
        studyId: null,
        requestId: c.requestId,
        outcome: 'E_RATE_LIMITED',
        detail: { grant },
      });
      throw new CxrError('E_RATE_LIMITED', `too many failed attempts: try again in ${gate.retryAfterSeconds} s`, { retryAfterSeconds: gate.retryAfterSeconds });
    }
    const row = grant === 'client_credentials' ? await findActiveClient(c.deps.ds, id) : await findActiveUser(c.deps.ds, id);
    const storedHash = row ? ('secretHash' in row ? row.secretHash : row.passwordHash) : await DUMMY_HASH_PROMISE;
    const ok = (await verifySecret(secret, storedHash)) && row !== null;
    const principal: Principal | null = ok && row ? { sub: row.id, role: row.role, kind: grant === 'client_credentials' ? 'client' : 'user' } : null;
    await appendAudit(c.deps.ds, {
      actor: id,
      role: principal?.role ?? null,
      action: 'auth.token',
      studyId: null,
      requestId: c.requestId,
      outcome: principal ? 'ok' : 'E_UNAUTHENTICATED',
      detail: { grant },
    });
    if (!principal) {
      await gate?.failed();
      throw new CxrError('E_UNAUTHENTICATED', 'invalid credentials');
    }
    await gate?.succeeded();
    const { token, expiresIn } = signToken(c.deps.config.jwt, principal);
    return {
      status: 200,
      json: { access_token: token, token_type: 'Bearer', expires_in: expiresIn, role: principal.role },
      headers: { 'Cache-Control': 'no-store' },
    };
  },
};
