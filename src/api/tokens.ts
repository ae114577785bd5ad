/**
 * JWT access tokens. HS256 only: the verifier pins the algorithm, so `alg: none` and
 * algorithm-confusion tokens are refused, and checks signature, expiry, issuer and audience.
 */
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { CxrError } from '../errors.js';
import { isRole, type Role } from '../db/entities.js';

export const JWT_ALGORITHM = 'HS256' as const;

export interface JwtConfig {
  secret: Buffer;
  issuer: string;
  audience: string;
  /** lifetime of tokens from POST /v1/auth/token */
  ttlSeconds: number;
}

/** Who a token speaks for: an API client, a user, or an operator token minted on the server. */
export type PrincipalKind = 'client' | 'user' | 'operator';

export interface Principal {
  sub: string;
  role: Role;
  kind: PrincipalKind;
}

/**
 * The secret as a KeyObject, made once: given a Buffer, jsonwebtoken first tries it as a
 * public key (and throws) on every call before treating it as a secret.
 */
const keys = new WeakMap<Buffer, KeyObject>();
function keyOf(secret: Buffer): KeyObject {
  let k = keys.get(secret);
  if (!k) {
    k = createSecretKey(secret);
    keys.set(secret, k);
  }
  return k;
}

/** A signed token, with its id (jti) and times, which an operator token is recorded under. */
export interface SignedToken {
  token: string;
  expiresIn: number;
  id: string;
  issuedAt: Date;
  expiresAt: Date;
}

export function signToken(cfg: JwtConfig, p: Principal, ttlSeconds = cfg.ttlSeconds): SignedToken {
  const id = randomUUID();
  // whole seconds, as the token's iat and exp are
  const iat = Math.floor(Date.now() / 1000);
  const token = jwt.sign({ role: p.role, kind: p.kind, iat }, keyOf(cfg.secret), {
    algorithm: JWT_ALGORITHM,
    subject: p.sub,
    issuer: cfg.issuer,
    audience: cfg.audience,
    expiresIn: ttlSeconds,
    jwtid: id,
  });
  return { token, expiresIn: ttlSeconds, id, issuedAt: new Date(iat * 1000), expiresAt: new Date((iat + ttlSeconds) * 1000) };
}

/** A verified token: whom it speaks for, its id (jti; null when absent) and its whole lifetime. */
export interface VerifiedToken {
  principal: Principal;
  id: string | null;
  lifetimeSeconds: number;
}

export function verifyToken(cfg: JwtConfig, token: string): Principal {
  return verifyTokenDetail(cfg, token).principal;
}

export function verifyTokenDetail(cfg: JwtConfig, token: string): VerifiedToken {
  let claims: jwt.JwtPayload | string;
  try {
    claims = jwt.verify(token, keyOf(cfg.secret), {
      algorithms: [JWT_ALGORITHM],
      issuer: cfg.issuer,
      audience: cfg.audience,
      clockTolerance: 5,
    });
  } catch (e) {
    const reason = e instanceof jwt.TokenExpiredError ? 'token expired' : e instanceof jwt.JsonWebTokenError ? `invalid token (${e.message})` : 'invalid token';
    throw new CxrError('E_UNAUTHENTICATED', reason);
  }
  if (typeof claims === 'string' || typeof claims.sub !== 'string' || !claims.sub) throw new CxrError('E_UNAUTHENTICATED', 'invalid token (no subject)');
  if (typeof claims.exp !== 'number') throw new CxrError('E_UNAUTHENTICATED', 'invalid token (no expiry)');
  if (!isRole(claims.role)) throw new CxrError('E_UNAUTHENTICATED', 'invalid token (no valid role)');
  const kind = claims.kind === 'client' || claims.kind === 'user' || claims.kind === 'operator' ? claims.kind : null;
  if (!kind) throw new CxrError('E_UNAUTHENTICATED', 'invalid token (no principal kind)');
  const id = typeof claims.jti === 'string' ? claims.jti : null;
  // no iat: judged as living from the epoch, i.e. long-lived
  const lifetimeSeconds = claims.exp - (typeof claims.iat === 'number' ? claims.iat : 0);
  return { principal: { sub: claims.sub, role: claims.role, kind }, id, lifetimeSeconds };
}
