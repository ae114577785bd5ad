import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { CxrError } from '../errors.js';
import { nativeRuntime, nativeRuntimeError } from './kernels/native/ort-runtime.js';
import { registerWasmTrainingKernels } from './kernels/register.js';
import { prepareThreadedWasm } from './kernels/wasm-threads.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface InitBackendOptions {
  /** Try this backend first (the `CXR_BACKEND` environment variable wins over it). */
  prefer?: BackendName;
  /**
   * Threads for the wasm backend's XNNPACK pool (default: `CXR_WASM_THREADS`, else 1 when
   * the convolutions run on onnxruntime, else the number of cores). 1 loads the
   * single-threaded SIMD build; more loads the threaded one (and keeps convolutions on wasm).
   */
  threads?: number;
  /** Where the choice is reported (default: one line on stderr). */
  log?: (msg: string) => void;
}

const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
const requireHere = createRequire(import.meta.url);

let chosen: Promise<BackendName> | null = null;
let wasmThreads = 1;
let description = '';

function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

function defaultLog(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** The backend picked by `initBackend`, or null before it ran. */
export function activeBackend(): BackendName | null {
  const name = tf.getBackend();
  return name != null && isBackendName(name) ? name : null;
}

/** What `initBackend` chose, as it logged it (e.g. "wasm (SIMD, 1 thread; convolutions on onnxruntime, 2 threads)"). */
export function backendDescription(): string {
  return description;
}

/** Threads the wasm backend's XNNPACK pool runs on (1 when single-threaded or not wasm). */
export function wasmThreadCount(): number {
  return tf.getBackend() === 'wasm' ? wasmThreads : 1;
}

/**
 * Picks the fastest backend that works here, once per process: tfjs-node-gpu, then
 * tfjs-node (native TensorFlow; both optional and absent on most of our machines), then
 * wasm, then the pure-JS cpu backend. On wasm the training kernels of src/ml/kernels are
 * registered: by default the single-threaded SIMD build with convolutions (and a few
 * copy-bound kernels) on onnxruntime's native kernels; without that binding, or with
 * `CXR_WASM_THREADS` > 1, the threaded SIMD build with XNNPACK on that many threads.
 * `CXR_BACKEND=tensorflow|wasm|cpu` forces one; a forced backend that cannot start is an
 * E_BACKEND error rather than a silent fallback, and a malformed setting is E_CONFIG.
 * Later calls return the first answer.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendName> {
  chosen ??= choose(opts).catch((e: unknown) => {
    chosen = null;
    throw e;
  });
  return chosen;
}

async function choose(opts: InitBackendOptions): Promise<BackendName> {
  const log = opts.log ?? defaultLog;
  const forced = process.env.CXR_BACKEND?.trim();
  if (forced != null && forced !== '' && !isBackendName(forced)) {
    throw new CxrError('E_CONFIG', `CXR_BACKEND must be one of ${BACKEND_NAMES.join(', ')}, got '${forced}'`);
  }
  const order: BackendName[] = forced ? [forced] : opts.prefer ? [opts.prefer, ...BACKEND_NAMES.filter((b) => b !== opts.prefer)] : [...BACKEND_NAMES];
  const failures: string[] = [];
  for (const name of order) {
    const detail = await tryBackend(name, opts, failures);
    if (detail != null) {
      const skipped = failures.length > 0 ? ` (skipped: ${failures.join('; ')})` : '';
      description = `${name}${detail}`;
      log(`tfjs backend: ${name}${detail}${forced ? ' [CXR_BACKEND]' : ''}${skipped}`);
      return name;
    }
  }
  throw new CxrError('E_BACKEND', `no tfjs backend could start: ${failures.join('; ')}`);
}

/** Starts one backend; returns a short description on success, null on failure. */
async function tryBackend(name: BackendName, opts: InitBackendOptions, failures: string[]): Promise<string | null> {
  try {
    switch (name) {
      case 'tensorflow':
        return await startNative(failures);
      case 'wasm':
        return await startWasm(opts, failures);
      case 'cpu':
        if (await tf.setBackend('cpu')) return '';
        failures.push('cpu: did not start');
        return null;
    }
  } catch (e) {
    // A bad setting (E_CONFIG) is the caller's to fix, not a reason to try the next backend.
    if (e instanceof CxrError) throw e;
    failures.push(`${name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return null;
  }
}

async function startNative(failures: string[]): Promise<string | null> {
  // Imported by name at run time: both packages are optional and usually not installed.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
    } catch (e) {
      const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
      failures.push(`${pkg}: ${missing ? 'not installed' : e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      continue;
    }
    if (await tf.setBackend('tensorflow')) return ` (${pkg})`;
    failures.push(`${pkg}: loaded but the backend did not start`);
  }
  return null;
}

function positiveInt(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new CxrError('E_CONFIG', `${what} must be a positive integer, got ${value}`);
  return value;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v != null && v.trim() !== '' ? positiveInt(Number(v), name) : undefined;
}

async function startWasm(opts: InitBackendOptions, failures: string[]): Promise<string | null> {
  // Node cannot fetch the .wasm files relative to the bundle; point tfjs at node_modules.
  const dist = `${join(dirname(requireHere.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`;
  tfwasm.setWasmPaths(dist);
  const cores = os.availableParallelism();
  // Convolutions go to onnxruntime's native kernels when its binding loads. They read the
  // wasm heap in place, which needs the non-threaded build (a threaded heap is a
  // SharedArrayBuffer, which the binding refuses), and they use every core themselves.
  const native = process.env.CXR_NATIVE_KERNELS === '0' ? null : nativeRuntime(envInt('CXR_ORT_THREADS') ?? cores);
  if (process.env.CXR_NATIVE_KERNELS !== '0' && native == null) failures.push(`native kernels: ${nativeRuntimeError()}`);
  const requested = opts.threads != null ? positiveInt(opts.threads, 'threads') : envInt('CXR_WASM_THREADS');
  const threads = Math.min(requested ?? (native != null ? 1 : cores), 8); // the threaded build pre-spawns 8 workers
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  if (threads > 1 && simd) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    tfwasm.setThreadsCount(threads);
    const patch = prepareThreadedWasm(threads);
    let ok = false;
    try {
      ok = await tf.setBackend('wasm');
    } finally {
      patch.restore();
    }
    if (ok) {
      detachPthreadWorkers();
      wasmThreads = tfwasm.getThreadsCount();
      const { native: usesNative } = registerWasmTrainingKernels(null);
      if (native != null && !usesNative) failures.push('native kernels: not with a threaded wasm heap');
      return ` (threaded SIMD, ${wasmThreads} threads)`;
    }
    // The failed start left the factory registered: the retry below loads the plain SIMD build.
    failures.push(`wasm threaded SIMD: ${patch.problems.join('; ') || 'did not start'}`);
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tfwasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) {
    failures.push('wasm: did not start');
    return null;
  }
  wasmThreads = 1;
  const { native: usesNative } = registerWasmTrainingKernels(native);
  const base = simd ? 'SIMD, 1 thread' : 'no SIMD, 1 thread';
  return usesNative && native != null ? ` (${base}; convolutions on onnxruntime, ${native.threads} threads)` : ` (${base})`;
}

interface PthreadWorker {
  ref(): void;
  unref(): void;
}

/**
 * Emscripten keeps a busy pthread's worker referenced, and the XNNPACK pool's threads are
 * busy (parked) for the life of the process, so Node would never exit on its own. They
 * hold no work the process must wait for: let the event loop ignore them.
 */
function detachPthreadWorkers(): void {
  const backend = tf.backend() as unknown as { wasm?: { PThread?: { runningWorkers?: PthreadWorker[]; unusedWorkers?: PthreadWorker[] } } };
  const pthread = backend.wasm?.PThread;
  for (const w of [...(pthread?.runningWorkers ?? []), ...(pthread?.unusedWorkers ?? [])]) {
    w.unref();
    w.ref = () => {};
  }
}
