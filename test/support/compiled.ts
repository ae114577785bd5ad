/**
 * Starting a TypeScript file as a process or worker from a test. When scripts/test.mjs runs
 * the suite compiled (CXR_TEST_BUILD), the file is compiled once with esbuild, like the test
 * files, and runs without tsx's start-up cost; otherwise it runs through tsx.
 */
import { pathToFileURL } from 'node:url';
import { compileScript } from '../../scripts/test-bundle.mjs';
import { workerBoot } from '../../src/worker-boot.js';

const compiled = new Map<string, Promise<string>>();

/** Node arguments that run `file` (an absolute path to a .ts/.mts file). */
export async function nodeArgsFor(file: string): Promise<string[]> {
  const dir = process.env.CXR_TEST_BUILD;
  if (!dir) return ['--import', 'tsx', file];
  let out = compiled.get(file);
  if (!out) {
    out = compileScript(file, dir);
    compiled.set(file, out);
  }
  return [await out];
}

/** Worker `eval` code that imports `file`: compiled when the suite runs compiled, else through tsx registered in the worker. */
export async function workerBootFor(file: string): Promise<string> {
  const args = await nodeArgsFor(file);
  return workerBoot(pathToFileURL(args.length === 1 ? args[0] : file));
}
