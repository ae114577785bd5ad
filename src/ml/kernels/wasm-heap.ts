import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs';
import { CxrError } from '../../errors.js';

/**
 * The two private methods of @tensorflow/tfjs-backend-wasm's BackendWasm (4.22, pinned
 * exactly in package.json) that the kernels here use to allocate an output on the wasm
 * heap and to read or write a float32 tensor in place. Declared once: when a tfjs release
 * renames them, this is the one place that says so.
 */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/** The backend as a WasmHeapBackend; E_BACKEND when it lacks the two methods (another tfjs-backend-wasm). */
export function wasmHeap(backend: KernelBackend): WasmHeapBackend {
  const b = backend as unknown as Partial<WasmHeapBackend>;
  if (typeof b.makeOutput !== 'function' || typeof b.typedArrayFromHeap !== 'function') {
    throw new CxrError(
      'E_BACKEND',
      'the wasm backend has no makeOutput/typedArrayFromHeap: the kernels in src/ml/kernels need @tensorflow/tfjs-backend-wasm 4.22.0',
    );
  }
  return b as WasmHeapBackend;
}
