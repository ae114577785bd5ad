import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { wasmHeap } from './wasm-heap.js';

/**
 * Runs other wasm kernels from inside a kernel, the way tfjs' own composite kernels do:
 * straight through the kernel registry, so nothing lands on the gradient tape and every
 * intermediate is a backend-level TensorInfo that this scope frees when the kernel ends.
 */
export class WasmKernelScope {
  private readonly temps: TensorInfo[] = [];

  constructor(readonly backend: KernelBackend) {}

  /** A view of a float32 tensor's data on the wasm heap (valid until the next allocation). */
  heap(t: TensorInfo): Float32Array {
    return wasmHeap(this.backend).typedArrayFromHeap(t);
  }

  /** A new float32 tensor filled by `fill` with the heap view of its data. */
  build(shape: number[], fill: (out: Float32Array) => void): TensorInfo {
    const out = wasmHeap(this.backend).makeOutput(shape, 'float32');
    this.temps.push(out);
    fill(this.heap(out));
    return out;
  }

  /**
   * Reverses the order of the first `taps` rows of a [taps, rest...] tensor, i.e. a
   * filter rotated by 180° over its spatial taps. (tfjs' wasm Reverse takes ~4 ms even
   * for a 3x3x128x32 filter; block copies take microseconds.)
   */
  reverseTaps(w: TensorInfo, taps: number): TensorInfo {
    const block = w.shape.reduce((a, b) => a * b, 1) / taps;
    return this.build([...w.shape], (out) => {
      const src = this.heap(w);
      for (let t = 0; t < taps; t++) out.set(src.subarray((taps - 1 - t) * block, (taps - t) * block), t * block);
    });
  }

  /** Runs a registered wasm kernel (Concat, AddN and Pack take an array of inputs). */
  run(kernelName: string, inputs: Record<string, TensorInfo> | TensorInfo[], attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (kernel == null) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = kernel.kernelFunc({ inputs: inputs as Record<string, TensorInfo>, backend: this.backend, attrs });
    if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several outputs`);
    this.temps.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  pad(x: TensorInfo, paddings: [number, number][]): TensorInfo {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    if (size.every((s, i) => s === x.shape[i]) && begin.every((b) => b === 0)) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  matMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }

  /** Frees an intermediate before the kernel ends (to bound peak memory in loops). */
  release(t: TensorInfo): void {
    const i = this.temps.indexOf(t);
    if (i < 0) return;
    this.temps.splice(i, 1);
    this.backend.disposeData(t.dataId);
  }

  /** Frees every intermediate except `result`, which the caller returns to the engine. */
  finish(result: TensorInfo): TensorInfo {
    for (const t of this.temps) {
      if (t !== result) this.backend.disposeData(t.dataId);
    }
    this.temps.length = 0;
    return result;
  }

  /** Frees every intermediate (on the error path). */
  abandon(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

/** Runs `body` in a scope; intermediates are freed whether it returns or throws. */
export function withScope(backend: KernelBackend, body: (s: WasmKernelScope) => TensorInfo): TensorInfo {
  const scope = new WasmKernelScope(backend);
  try {
    return scope.finish(body(scope));
  } catch (e) {
    scope.abandon();
    throw e;
  }
}
