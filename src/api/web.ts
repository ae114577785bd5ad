/**
 * Serves the web app: one HTML shell for every page under /app/ and the bundle esbuild wrote to
 * dist/web (scripts/build-web.mjs, run by `npm install`). The pages get a Content-Security-Policy
 * of their own: scripts, styles and fetches from this origin only, images also from blob:/data:.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';

const here = dirname(fileURLToPath(import.meta.url));

/** dist/web from a checkout (src/api → ../../dist/web) and from the compiled package (dist/src/api → ../../web). */
export function webAssetsDir(): string | null {
  for (const c of [join(here, '..', '..', 'dist', 'web'), join(here, '..', '..', 'web')]) {
    if (existsSync(join(c, 'main.js'))) return c;
  }
  return null;
}

const APP_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cxr-triage</title>
<link rel="stylesheet" href="/app/assets/main.css">
</head>
<body>
<div id="app"></div>
<script type="module" src="/app/assets/main.js"></script>
</body>
</html>
`;

export function mountWebApp(app: Express): void {
  const dir = webAssetsDir();
  const page = (_req: Request, res: Response) => {
    res.setHeader('Content-Security-Policy', APP_CSP);
    if (!dir) {
      res.status(503).type('text/plain').send('The web app is not built: run `npm run build:web` (npm install does it).\n');
      return;
    }
    res.status(200).type('html').send(SHELL);
  };
  app.get('/', (_req, res) => res.redirect(302, '/app/'));
  if (dir) {
    app.use('/app/assets', (_req: Request, res: Response, next: NextFunction) => {
      res.setHeader('Content-Security-Policy', APP_CSP);
      // the bundle holds no patient data: a browser may keep it for a day
      res.setHeader('Cache-Control', 'public, max-age=86400');
      next();
    });
    app.use('/app/assets', express.static(dir, { index: false, fallthrough: true, etag: true, cacheControl: false }));
  }
  app.get('/app', page);
  app.get('/app/{*rest}', page);
}
