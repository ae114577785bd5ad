import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs';
import { wasmHeap } from '../wasm-heap.js';
import type { OnnxGraph } from './onnx-graph.js';
import type { NativeRuntime } from './ort-runtime.js';

/**
 * One kernel call on onnxruntime, in place on the wasm heap — the steps every native kernel
 * takes: allocate the outputs first (growing the heap detaches older views, so the views of
 * the inputs are taken after), run the graph cached under `key` (built by `graph` the first
 * time), and on any failure free the outputs and return null, so the caller answers with the
 * wasm kernel. Outputs come back in the order of `outputs`.
 */
export function runOnHeap(
  ort: NativeRuntime,
  backend: KernelBackend,
  key: string,
  inputs: Record<string, TensorInfo>,
  outputs: Record<string, number[]>,
  graph: () => OnnxGraph,
): TensorInfo[] | null {
  const heap = wasmHeap(backend);
  const outs = Object.entries(outputs).map(([name, shape]) => [name, heap.makeOutput(shape, 'float32')] as const);
  try {
    ort.run(
      key,
      graph,
      Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, heap.typedArrayFromHeap(t)])),
      Object.fromEntries(outs.map(([name, t]) => [name, heap.typedArrayFromHeap(t)])),
    );
    return outs.map(([, t]) => t);
  } catch {
    for (const [, t] of outs) backend.disposeData(t.dataId);
    return null;
  }
}
