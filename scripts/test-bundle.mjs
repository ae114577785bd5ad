// Compiles the test files and the CLI once per `npm test` run, so that no test process and no
// spawned `cxr-triage` pays for tsx: under Node 20, tsx's loader hooks run on a separate
// thread and every import of every module crosses to it, which cost each process about two
// seconds of CPU before its first test (7.2 s against 5.1 s for an API test file; 3.9 s
// against 2.2 s for `cxr-triage --help`), and the suite starts a few hundred of them.
//
// esbuild (tsx's own compiler, so the same TypeScript semantics) bundles our code and leaves
// every package external, where Node loads it from node_modules as usual. Shared modules go
// into chunks, loaded once per process. `import.meta.url`, `.dirname` and `.filename` are
// replaced in each source file by that file's own location, so paths the code finds next to
// itself (fixtures, models, web assets, worker scripts started through tsx) are the same as
// when the file runs from source.
import { build } from 'esbuild';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT_DIR = '.test-build';
// one folder per run, so two `npm test` at once do not compile over each other's files
export const BUILD_DIR = join(ROOT_DIR, `run-${process.pid}`);

const keepImportMeta = {
  name: 'keep-import-meta',
  setup(b) {
    // a package imported by its absolute path (a test pointing at a package's own file) stays a package
    b.onResolve({ filter: /[\\/]node_modules[\\/]/ }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const contents = source
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)))
        .replaceAll('import.meta.filename', JSON.stringify(args.path));
      return { contents, loader: 'ts' };
    });
  },
};

/** What every compile here shares: our code bundled as ESM for this Node, packages left to node_modules. */
const COMMON = { bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', plugins: [keepImportMeta], logLevel: 'warning' };

/** The compiled file for a source path (relative to the repository root). */
export function compiledPath(file) {
  return join(BUILD_DIR, file.replace(/\.ts$/, '.mjs'));
}

/** The source path (relative) a compiled test file came from (any run's folder). */
export function sourcePath(file) {
  const rel = relative(resolve(ROOT_DIR), resolve(file));
  if (rel.startsWith('..')) return relative(process.cwd(), file);
  return rel
    .split(sep)
    .slice(1)
    .join('/')
    .replace(/\.mjs$/, '.ts');
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * A leftover is removed only an hour after it was written: a run in another PID namespace
 * sharing this checkout (a container, another session) looks dead to process.kill(pid, 0), and
 * removing its live build made 79 of its test files vanish. A whole suite takes minutes.
 */
const STALE_AFTER_MS = 3600_000;

function oldEnough(path) {
  try {
    return Date.now() - statSync(path).mtimeMs > STALE_AFTER_MS;
  } catch {
    return false;
  }
}

/** Removes the compiled files of runs whose process is gone (killed before they cleaned up). */
function removeStaleBuilds() {
  let names = [];
  try {
    names = readdirSync(ROOT_DIR);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^run-(\d+)$/.exec(name)?.[1]);
    const path = join(ROOT_DIR, name);
    if (pid !== process.pid && !alive(pid) && oldEnough(path)) rmSync(path, { recursive: true, force: true });
  }
}

/** Removes this run's compiled files. */
export function removeOwnBuild() {
  rmSync(BUILD_DIR, { recursive: true, force: true });
}

/** Bundles `entries` (paths relative to the root) into BUILD_DIR; resolves with their compiled paths. */
export async function bundle(entries) {
  removeStaleBuilds();
  removeOwnBuild();
  await build({
    entryPoints: entries,
    outbase: '.',
    outdir: BUILD_DIR,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
    sourcemap: 'linked',
    ...COMMON,
  });
  return entries.map(compiledPath);
}

let compiled = 0;

/**
 * Compiles one TypeScript file that a test starts as a process or worker (with what it imports
 * of ours) into `dir` (an absolute path inside the repository, so that packages resolve);
 * resolves with the compiled file's path.
 */
export async function compileScript(entry, dir) {
  const outfile = join(dir, `script-${process.pid}-${compiled++}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    sourcemap: 'inline',
    ...COMMON,
  });
  return outfile;
}
