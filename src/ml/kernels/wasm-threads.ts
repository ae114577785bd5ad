import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

/**
 * Makes @tensorflow/tfjs-backend-wasm 4.22 start its threaded SIMD build under Node.
 *
 * The package refuses threads in Node (`WASM_HAS_MULTITHREAD_SUPPORT` is false when
 * `IS_NODE`, tfjs issue 3830) because its loader hands Emscripten's pthread workers
 * `blob:` URLs, which Node's `worker_threads` cannot start. Everything else works in
 * Node 20: emscripten's glue already switches to `worker_threads` when it sees Node. So
 * while the backend initialises we
 *  - record the text of the two Blobs the loader creates (the module factory and the
 *    pthread worker script) and write them to files in a folder of the system temp
 *    directory named after the factory's hash (shared by every process on the same tfjs
 *    build, so nothing accumulates and nothing needs cleaning up),
 *  - make `URL.createObjectURL` return the worker file's path, with the worker's
 *    "import the main script from a Blob" branch pointed at the factory file,
 *  - report at least `2 * threads` logical cores: the C++ side caps its thread pool at
 *    half the logical cores (it assumes hyper-threading), which is 1 on a 2-core box.
 * All three patches are undone as soon as initialisation finishes.
 *
 * The patch depends on text in the minified worker script; if that text is missing
 * (another tfjs version) `prepareThreadedWasm` says so and the caller stays single-threaded.
 */

/** The branch in tfjs 4.22's pthread worker script that imports the main script. */
const WORKER_IMPORT_BRANCH = 'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}';
const FACTORY_PREFIX = 'var WasmBackendModuleThreadedSimd';
/**
 * The factory text is a closure from the bundled module; these are the module-level
 * names it refers to, which a pthread worker (evaluating it at global scope) lacks.
 */
const FACTORY_PRELUDE =
  "var require$$0=require('fs'),require$$1=require('path'),require$$3=require('perf_hooks')," + "require$$4=require('os'),commonjsGlobal=globalThis;\n";

export interface ThreadedWasmPatch {
  /** Undo the global patches. */
  restore(): void;
  /** Problems seen while patching (empty when it went as planned). */
  problems: string[];
}

/** Writes `text` to `path` unless it is there already (via a rename, so readers never see half a file). */
function writeOnce(path: string, text: string): void {
  if (existsSync(path)) return;
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, text);
  renameSync(partial, path);
}

export function prepareThreadedWasm(threads: number): ThreadedWasmPatch {
  const problems: string[] = [];
  let dir: string | null = null;
  const RealBlob = globalThis.Blob;
  const realCreateObjectURL = URL.createObjectURL;
  const realCpus = os.cpus;
  const texts = new WeakMap<Blob, string>();
  let factoryPath: string | null = null;

  class RecordingBlob extends RealBlob {
    constructor(...args: ConstructorParameters<typeof Blob>) {
      super(...args);
      const parts = args[0];
      if (parts?.every((p) => typeof p === 'string')) {
        const text = (parts as unknown as string[]).join('');
        texts.set(this, text);
        if (text.startsWith(FACTORY_PREFIX)) {
          const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
          dir = join(os.tmpdir(), `cxr-tfjs-wasm-${hash}`);
          mkdirSync(dir, { recursive: true });
          factoryPath = join(dir, 'wasm-factory.cjs');
          writeOnce(factoryPath, FACTORY_PRELUDE + text);
        }
      }
    }
  }

  globalThis.Blob = RecordingBlob;
  URL.createObjectURL = (obj: Blob): string => {
    const text = texts.get(obj);
    if (text == null) return realCreateObjectURL(obj);
    if (factoryPath == null || dir == null) {
      problems.push('wasm factory script was not seen before the worker script');
      return realCreateObjectURL(obj);
    }
    if (!text.includes(WORKER_IMPORT_BRANCH)) {
      problems.push('pthread worker script has an unexpected shape (tfjs version?)');
      return realCreateObjectURL(obj);
    }
    const workerPath = join(dir, 'wasm-pthread-worker.cjs');
    writeOnce(workerPath, text.replace(WORKER_IMPORT_BRANCH, `if(true){importScripts(${JSON.stringify(factoryPath)})}`));
    return workerPath;
  };
  const cores = realCpus();
  if (cores.length < 2 * threads) {
    const padded = Array.from({ length: 2 * threads }, (_, i) => cores[i % Math.max(cores.length, 1)]);
    os.cpus = () => padded;
  }
  return {
    problems,
    restore() {
      globalThis.Blob = RealBlob;
      URL.createObjectURL = realCreateObjectURL;
      os.cpus = realCpus;
    },
  };
}
