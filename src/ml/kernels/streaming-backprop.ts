import * as tf from '@tensorflow/tfjs';

/**
 * tfjs-core's backward pass (engine.gradients, tape.ts) keeps every intermediate gradient
 * and every tensor saved for the backward pass alive until the whole pass ends, so its
 * peak memory is roughly the forward activations plus gradients of the same total size.
 * In the 4 GiB wasm heap that halves the batch that fits (DenseNet121 at 224 px: batch 4
 * peaked at 2.1 GiB with 1.1 GiB of activations).
 *
 * This replaces `engine.gradients` with the same algorithm (the same node filtering, the
 * same gradient functions in the same order, the same accumulation) that also frees,
 * once a node has been back-propagated, the gradients of its outputs and the tensors it
 * saved, unless something still refers to them. Values are identical; only the lifetime
 * of temporaries changes. Higher-order gradients (a tape inside a tape) keep tfjs'
 * behaviour. The port follows tfjs-core 4.22; other versions are left alone.
 */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T>(nameOrFn: string | (() => T), fn?: () => T): T;
  gradients: (f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean) => { value: tf.Tensor; grads: tf.Tensor[] };
}

export const SUPPORTED_CORE = '4.22.0';
let original: EngineInternals['gradients'] | null = null;
let streaming: EngineInternals['gradients'] | null = null;

/**
 * Switches the engine to the streaming backward pass (true) or back to tfjs' own (false).
 * Returns whether streaming is now on (false also when this tfjs version is not the one
 * the port follows).
 */
export function setStreamingBackprop(on: boolean): boolean {
  const engine = tf.engine() as unknown as EngineInternals;
  if (!on) {
    if (original != null) engine.gradients = original;
    original = null;
    streaming = null;
    return false;
  }
  if (original != null) return true;
  if (tf.version_core !== SUPPORTED_CORE || typeof engine.gradients !== 'function' || engine.state == null) return false;
  original = engine.gradients;
  engine.gradients = function gradients(this: EngineInternals, f, xs, dy, allowNoGradients = false) {
    if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = this.scopedRun(
      () => this.startTape(),
      () => this.endTape(),
      () => this.tidy('forward', f),
    );
    if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
    const tape = this.state.activeTape ?? [];
    const filtered = filterTape(tape, xs, y);
    if (!allowNoGradients && filtered.length === 0 && xs.length > 0) {
      throw new Error('Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.');
    }
    const outermost = this.state.gradientDepth === 0;
    return this.tidy('backward', () => {
      const acc = new GradientMap();
      acc.set(y.id, dy ?? tf.ones(y.shape));
      const keep = new Set<number>(xs.map((x) => x.id));
      backprop(acc, filtered, (fn) => this.tidy(fn), outermost, keep, dy);
      const grads = xs.map((x) => acc.get(x.id) as tf.Tensor);
      if (outermost) {
        for (const node of tape) for (const t of node.saved ?? []) if (!acc.refers(t)) t.dispose();
        this.state.activeTape = null;
      }
      return { value: y, grads };
    });
  };
  streaming = engine.gradients;
  return true;
}

/** Whether the engine's backward pass is currently this streaming one. */
export function streamingBackpropActive(): boolean {
  return streaming != null && (tf.engine() as unknown as EngineInternals).gradients === streaming;
}

/** Tensor id -> accumulated gradient, counting how many ids refer to each tensor. */
class GradientMap {
  private readonly byId = new Map<number, tf.Tensor>();
  private readonly refs = new Map<tf.Tensor, number>();

  get(id: number): tf.Tensor | undefined {
    return this.byId.get(id);
  }

  set(id: number, t: tf.Tensor): void {
    const old = this.byId.get(id);
    if (old != null) this.release(old);
    this.byId.set(id, t);
    this.refs.set(t, (this.refs.get(t) ?? 0) + 1);
  }

  /** Forgets `id`; returns its tensor if nothing else refers to it any more. */
  take(id: number): tf.Tensor | null {
    const t = this.byId.get(id);
    if (t == null) return null;
    this.byId.delete(id);
    return this.release(t) ? t : null;
  }

  refers(t: tf.Tensor): boolean {
    return (this.refs.get(t) ?? 0) > 0;
  }

  private release(t: tf.Tensor): boolean {
    const n = (this.refs.get(t) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(t, n);
      return false;
    }
    this.refs.delete(t);
    return true;
  }
}

function backprop(
  acc: GradientMap,
  tape: TapeNode[],
  tidy: (f: () => tf.Tensor) => tf.Tensor,
  stream: boolean,
  keep: Set<number>,
  userDy: tf.Tensor | undefined,
): void {
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
    if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const inputGradients = node.gradient(dys);
    for (const inputName in node.inputs) {
      if (!(inputName in inputGradients)) {
        throw new Error(`Cannot backprop through input ${inputName}. Available gradients found: ${Object.keys(inputGradients)}.`);
      }
      const dx = tidy(() => inputGradients[inputName]());
      if (dx.dtype !== 'float32') {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${inputName} must have 'float32' dtype, but has '${dx.dtype}'`);
      }
      const x = node.inputs[inputName];
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input '${inputName}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
        );
      }
      const current = acc.get(x.id);
      if (current == null) {
        acc.set(x.id, dx);
      } else {
        acc.set(x.id, tf.add(current, dx));
        if (!acc.refers(current) && current !== userDy) current.dispose();
      }
    }
    if (!stream) continue;
    // This node's outputs receive no more gradient, and its saved tensors are not read again.
    for (const o of node.outputs) {
      if (keep.has(o.id)) continue;
      const g = acc.take(o.id);
      if (g != null && g !== userDy) g.dispose();
    }
    for (const t of node.saved ?? []) if (!acc.refers(t)) t.dispose();
  }
}

/** The nodes on a path from any of xs to y, inputs pruned to those depending on xs (as tfjs). */
function filterTape(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    for (const name in node.inputs) {
      if (fromX.has(node.inputs[name].id)) {
        for (const o of node.outputs) fromX.add(o.id);
        nodesFromX.add(node.id);
        break;
      }
    }
  }
  const toY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const name in node.inputs) toY.add(node.inputs[name].id);
      nodesToY.add(node.id);
    }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const name in node.inputs) if (fromX.has(node.inputs[name].id)) inputs[name] = node.inputs[name];
    filtered.push({ ...node, inputs, outputs: node.outputs });
  }
  return filtered;
}
