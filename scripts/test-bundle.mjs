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
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const BUILD_DIR = '.test-build';

const keepImportMeta = {
  name: 'keep-import-meta',
  setup(b) {
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

/** The compiled file for a source path (relative to the repository root). */
export function compiledPath(file) {
  return join(BUILD_DIR, file.replace(/\.ts$/, '.mjs'));
}

/** The source path (relative) a compiled test file came from. */
export function sourcePath(file) {
  const rel = relative(resolve(BUILD_DIR), resolve(file));
  return rel.startsWith('..') ? relative(process.cwd(), file) : rel.replace(/\.mjs$/, '.ts');
}

/** Bundles `entries` (paths relative to the root) into BUILD_DIR; resolves with their compiled paths. */
export async function bundle(entries) {
  await rm(BUILD_DIR, { recursive: true, force: true });
  await build({
    entryPoints: entries,
    outbase: '.',
    outdir: BUILD_DIR,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    plugins: [keepImportMeta],
    logLevel: 'warning',
  });
  return entries.map(compiledPath);
}
