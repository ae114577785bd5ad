/**
 * How a worker thread starts on one of our modules, for every layer that runs threads (the
 * scoring engines, data-parallel training, the synthetic data generator). Like errors.ts it
 * sits below every layer and imports nothing of ours.
 *
 * - Built code (dist/, a .js module): the thread imports it directly.
 * - TypeScript sources (tsx): the thread registers tsx's loader first, since Node 20 hands
 *   neither `--import` hooks nor tsx's register() on to worker threads. That costs each thread
 *   about a second of CPU before its module runs.
 * - Sources compiled by the test runner (CXR_TEST_BUILD, scripts/test.mjs): its compiled copy
 *   of the module runs, when it made one, so the many threads a test suite starts skip tsx.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The module next to `from` (an import.meta.url) named `name`, with the extension `from` has (.ts from sources, .js built). */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
}

/** The `eval` source of a Worker that runs `script`. */
export function workerBoot(script: URL): string {
  if (!script.pathname.endsWith('.ts')) return `import(${JSON.stringify(script.href)});`;
  const build = process.env.CXR_TEST_BUILD;
  if (build) {
    const compiled = join(build, relative(ROOT, fileURLToPath(script)).replace(/\.ts$/, '.mjs'));
    if (existsSync(compiled)) return `import(${JSON.stringify(pathToFileURL(compiled).href)});`;
  }
  return `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(script.href)}); });`;
}
