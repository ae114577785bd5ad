/** The express application: security headers, request ids, metrics, the route table, JSON errors. */
import { randomUUID } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { CxrError, httpStatusFor, isCxrError } from '../errors.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { isStorageFullError, storageFullError } from '../service/storage.js';
import { BUSY_RETRY_AFTER_S, closeIfBodyUnread } from './http.js';
import { checkRequestTarget } from './input.js';
import { buildOpenApi } from './openapi.js';
import { handlerFor, type ApiDeps, type RouteDef } from './route.js';
import { adminRoutes } from './routes/admin.js';
import { appDataRoutes } from './routes/app-data.js';
import { postToken } from './routes/auth.js';
import { sessionRoutes } from './routes/session.js';
import { listRoutes } from './routes/lists.js';
import { shadowRoutes } from './routes/shadow.js';
import { metaRoutes } from './routes/meta.js';
import { stow, stowStudy } from './routes/stow.js';
import { wadoRoutes } from './routes/wado.js';
import { qidoRoutes } from './routes/qido.js';
import { diagnosticReports } from './routes/fhir.js';
import { studyRoutes } from './routes/studies.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { json } from './openapi-types.js';
import { mountWebApp } from './web.js';

export type { ApiDeps } from './route.js';

export const API_VERSION = '1.0.0';

const openApiRoute: RouteDef = {
  method: 'get',
  path: '/v1/openapi.json',
  roles: 'public',
  doc: {
    summary: 'This API description',
    tags: ['operations'],
    responses: { '200': { description: 'OpenAPI 3.1 document', content: json({ type: 'object' }) } },
  },
  async handle() {
    return { status: 200, json: openApiDocument() };
  },
};

/** Every route the app serves, in registration order. */
export const routes: readonly RouteDef[] = [
  ...metaRoutes,
  openApiRoute,
  postToken,
  ...sessionRoutes,
  ...studyRoutes,
  ...deliveryRoutes,
  ...appDataRoutes,
  stow,
  stowStudy,
  ...wadoRoutes,
  ...qidoRoutes,
  diagnosticReports,
  ...listRoutes,
  ...shadowRoutes,
  ...adminRoutes,
];

let cachedDocument: Record<string, unknown> | null = null;
export function openApiDocument(): Record<string, unknown> {
  cachedDocument ??= buildOpenApi(routes, API_VERSION);
  return cachedDocument;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );
  app.use((req: Request, res: Response, next: NextFunction) => {
    const inbound = req.headers['x-request-id'];
    const id = typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    // Responses carry patient-derived data: never cached by browsers or proxies.
    res.setHeader('Cache-Control', 'no-store');
    const end = deps.metrics.requestSeconds.startTimer();
    res.on('finish', () => {
      const route = (res.locals.route as string | undefined) ?? 'unmatched';
      const seconds = end({ method: req.method, route });
      const status = res.statusCode;
      deps.metrics.requests.inc({ method: req.method, route, status: String(status) });
      logRequest(deps, req, res, route, status, seconds);
    });
    next();
  });
  for (const r of routes) {
    app[r.method](
      r.path,
      (_req: Request, res: Response, next: NextFunction) => {
        res.locals.route = r.path;
        next();
      },
      checkRequestTarget,
      handlerFor(r, deps),
    );
  }
  mountWebApp(app);
  app.use((req: Request, _res: Response, next: NextFunction) => next(new CxrError('E_NOT_FOUND', `no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(errorHandler(deps));
  return app;
}

/**
 * One access line per request, and for a refusal (status >= 400) one more line with its code
 * and a count in cxr_http_refusals_total. Route templates, never URLs: a URL or body may
 * carry patient data, a template and a client id do not.
 */
function logRequest(deps: ApiDeps, req: Request, res: Response, route: string, status: number, seconds: number): void {
  const client = (res.locals.principal as { sub?: string } | undefined)?.sub ?? null;
  const requestId = res.locals.requestId as string;
  deps.log.info('request', { requestId, method: req.method, route, status, ms: Math.round(seconds * 1000), client });
  if (status < 400) return;
  const code = (res.locals.errorCode as string | undefined) ?? `http_${status}`;
  deps.metrics.refusals.inc({ code, route });
  deps.log.warn('request refused', { requestId, code, status, method: req.method, route, client, address: req.socket.remoteAddress ?? null });
}

/** Maps anything thrown to `{ error: { code, message } }`; internals never leak into a response. */
function errorHandler(deps: ApiDeps) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const requestId = res.locals.requestId as string;
    let e: CxrError;
    if (isStorageFullError(err)) {
      // the disk (or PostgreSQL's) is full: one 507 code for every layer, logged once per change by the monitor
      e = isCxrError(err) ? err : storageFullError('the database has no room');
      deps.storage?.noteFull(err);
    } else if (isCxrError(err)) {
      e = err;
    } else if (isDatabaseUnavailable(err)) {
      // a burst beyond the pool, or connections terminated under us: retry shortly, not a bug
      e = new CxrError('E_UNAVAILABLE', 'the database is busy or unreachable; retry shortly');
      deps.log.warn('database unavailable', { requestId, method: req.method, path: req.path, error: String((err as Error)?.message ?? err).slice(0, 300) });
    } else {
      const status = (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
      if (status === 413) e = new CxrError('E_PAYLOAD_TOO_LARGE', 'request body too large');
      else if (typeof status === 'number' && status >= 400 && status < 500) e = new CxrError('E_BAD_REQUEST', 'malformed request');
      else e = new CxrError('E_INTERNAL', `internal error (request ${requestId})`);
    }
    const status = httpStatusFor(e.code);
    res.locals.errorCode = e.code;
    if (status >= 500 && e.code !== 'E_QUEUE_FULL' && e.code !== 'E_STORAGE_FULL' && e.code !== 'E_UNAVAILABLE') {
      deps.log.error('request failed', { requestId, method: req.method, path: req.path, error: String((err as Error)?.stack ?? err) });
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (status === 401) {
      res.setHeader(
        'WWW-Authenticate',
        req.path.startsWith('/dicomweb/') ? ['Bearer realm="cxr-triage"', 'Basic realm="cxr-triage"'] : 'Bearer realm="cxr-triage"',
      );
    }
    if (e.code === 'E_QUEUE_FULL' || e.code === 'E_UNAVAILABLE') res.setHeader('Retry-After', BUSY_RETRY_AFTER_S);
    if ((e.code === 'E_RATE_LIMITED' || e.code === 'E_STORAGE_FULL') && typeof e.details?.retryAfterSeconds === 'number')
      res.setHeader('Retry-After', String(e.details.retryAfterSeconds));
    closeIfBodyUnread(req, res);
    const message = status >= 500 && e.code === 'E_INTERNAL' ? `internal error (request ${requestId})` : e.message;
    res
      .status(status)
      .type('application/json')
      .send(JSON.stringify({ error: { code: e.code, message, requestId } }));
  };
}
