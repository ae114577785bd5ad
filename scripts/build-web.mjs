#!/usr/bin/env node
// Bundles the web app (src/web, Preact + TSX) into dist/web with esbuild: run by `npm install`
// (the `prepare` script) and by `npm run build:web`. The service serves dist/web; nothing is fetched from a CDN.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
await build({
  entryPoints: [join(root, 'src/web/main.tsx')],
  outdir: join(root, 'dist/web'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  logLevel: 'warning',
  legalComments: 'linked',
});
console.log(`web app built into dist/web in ${Date.now() - started} ms`);
