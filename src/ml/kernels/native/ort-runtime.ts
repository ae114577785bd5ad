import { createRequire } from 'node:module';
import os from 'node:os';
import { encodeGraph, type OnnxGraph } from './onnx-graph.js';

/**
 * onnxruntime-node as a synchronous kernel runner. Its public `InferenceSession.run` is
 * async (it defers the native call with setImmediate), but tfjs kernels must return
 * synchronously; the native binding underneath runs synchronously, so we call it
 * directly. Inputs are float32 views (typically of the wasm heap) that ORT reads in
 * place, and outputs are pre-allocated views that ORT writes in place: no copies.
 * One session per kernel signature, created on first use and kept.
 *
 * The binding is an internal module of onnxruntime-node (pinned by the lock file); if it
 * cannot be loaded, `nativeRuntime()` returns null and callers stay on wasm kernels.
 */
interface OrtTensor {
  readonly dims: readonly number[];
}
interface OrtTensorConstructor {
  new (type: 'float32', data: Float32Array, dims: readonly number[]): OrtTensor;
}
interface BindingSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: Record<string, unknown>): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor | null>, options: Record<string, unknown>): Record<string, OrtTensor>;
  dispose(): void;
}
interface Binding {
  InferenceSession: new () => BindingSession;
}

export interface NativeRuntime {
  readonly threads: number;
  /** Uses `threads` from now on (drops the cached sessions, which were built for the old count). */
  setThreads(threads: number): void;
  /**
   * Runs `graph` (cached under `key`) with `inputs` read in place and `outputs` written in
   * place; every array must have exactly its declared shape's size.
   */
  run(key: string, graph: () => OnnxGraph, inputs: Record<string, Float32Array>, outputs: Record<string, Float32Array>): void;
  /** sessions created so far */
  readonly sessions: number;
}

let runtime: NativeRuntime | null | undefined;
let loadError: string | null = null;

export function nativeRuntimeError(): string | null {
  return loadError;
}

/** The process-wide runtime, or null when onnxruntime-node's binding is unavailable. */
export function nativeRuntime(threads?: number): NativeRuntime | null {
  if (runtime !== undefined) return runtime;
  try {
    const require = createRequire(import.meta.url);
    const { binding, initOrt } = require('onnxruntime-node/dist/binding') as { binding: Binding; initOrt: () => void };
    const { Tensor } = require('onnxruntime-node') as { Tensor: OrtTensorConstructor };
    initOrt();
    runtime = createRuntime(binding, Tensor, threads ?? os.availableParallelism());
  } catch (e) {
    loadError = e instanceof Error ? e.message.split('\n')[0] : String(e);
    runtime = null;
  }
  return runtime;
}

function createRuntime(binding: Binding, Tensor: OrtTensorConstructor, threads: number): NativeRuntime {
  const cache = new Map<string, { session: BindingSession; graph: OnnxGraph }>();
  const options = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Sessions are many and small: per-session arenas would each keep their peak.
    enableCpuMemArena: false,
    enableMemPattern: false,
    // errors only: warnings about initializers ORT folds away are noise for these graphs
    logSeverityLevel: 3,
    // Do not spin between kernels: the wasm side runs then and needs the core.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  return {
    get threads() {
      return options.intraOpNumThreads;
    },
    setThreads(n: number) {
      if (n === options.intraOpNumThreads) return;
      for (const { session } of cache.values()) session.dispose();
      cache.clear();
      options.intraOpNumThreads = n;
    },
    get sessions() {
      return cache.size;
    },
    run(key, makeGraph, inputs, outputs) {
      let entry = cache.get(key);
      if (entry == null) {
        const graph = makeGraph();
        const bytes = encodeGraph(graph);
        const session = new binding.InferenceSession();
        session.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, options);
        entry = { session, graph };
        cache.set(key, entry);
      }
      const { graph, session } = entry;
      const feeds: Record<string, OrtTensor> = {};
      for (const i of graph.inputs) feeds[i.name] = new Tensor('float32', inputs[i.name], i.shape);
      const fetches: Record<string, OrtTensor> = {};
      for (const o of graph.outputs) fetches[o.name] = new Tensor('float32', outputs[o.name], o.shape);
      session.run(feeds, fetches, {});
    },
  };
}
