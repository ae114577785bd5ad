/**
 * The app talks to the same JSON API as machines, with the session cookie the browser sends by
 * itself and the CSRF token it got at sign-in (kept in memory, never in a URL or storage).
 */
export interface SessionInfo {
  user: { id: string; role: 'clinician' | 'auditor' | 'admin'; displayName: string };
  csrfToken: string;
  expiresAt: string;
  idleTimeoutSeconds: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf: string | null = null;
let onSignedOut: (why: string) => void = () => {};

export function setCsrf(token: string | null): void {
  csrf = token;
}

export function whenSignedOut(fn: (why: string) => void): void {
  onSignedOut = fn;
}

async function failure(r: Response): Promise<ApiError> {
  let code = `HTTP_${r.status}`;
  let message = r.statusText;
  try {
    const body = (await r.json()) as { error?: { code: string; message: string } };
    if (body.error) {
      code = body.error.code;
      message = body.error.message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(r.status, code, message);
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (!r.ok) {
    const e = await failure(r);
    if (r.status === 401 && !path.startsWith('/v1/auth/session')) onSignedOut(e.message);
    throw e;
  }
  if (r.status === 204) return undefined as T;
  return (await r.json()) as T;
}

export async function binary(path: string): Promise<{ bytes: ArrayBuffer; headers: Headers }> {
  const r = await fetch(path, { credentials: 'same-origin' });
  if (!r.ok) {
    const e = await failure(r);
    if (r.status === 401) onSignedOut(e.message);
    throw e;
  }
  return { bytes: await r.arrayBuffer(), headers: r.headers };
}

export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
