import type * as tf from '@tensorflow/tfjs';
import { CxrError } from '../../errors.js';
import { GraphBuilder, OPSET, type Dim } from './graph.js';
import { storedShape, type TfShape } from './layout.js';
import type { LayerContext, LayerWeight, TensorRef } from './context.js';
import { converterFor } from './converters/index.js';

/**
 * Exports a tfjs LayersModel (functional or sequential) to an ONNX model. The graph is
 * channels-first: a rank-4 input [N,H,W,C] becomes [N,C,H,W] (for one channel the bytes
 * are identical, so callers can feed NHWC data unchanged) and rank-4 outputs are NCHW.
 */

export interface ExportOptions {
  /** names of the graph outputs, in the model's output order (default output_0, ...) */
  outputNames?: string[];
  /** names of the graph inputs (default input, input_1, ...) */
  inputNames?: string[];
  /**
   * Adds the class activation map: the feature maps feeding the head's global average
   * pooling as output `features` [N,C,h,w], and `cam` [N,1,h,w] = sum_c w_c * features_c
   * with w the head Dense's kernel (no bias), so that mean(cam) + bias is the logit. A
   * multi-scale head (concatenated poolings) also gets `pooled` [N,D], its input, and the CAM
   * weighs the final features with their rows of the kernel (the logit then also has the
   * taps' share).
   */
  cam?: boolean;
  metadata?: Record<string, string>;
}

/** The graph's inputs and outputs as the manifest records them (the model store owns the format). */
export type { GraphIo } from '../model-store/manifest.js';
import type { GraphIo } from '../model-store/manifest.js';

export interface ExportResult {
  bytes: Uint8Array;
  inputs: GraphIo[];
  outputs: GraphIo[];
  opset: number;
  /** the tfjs tensor behind each output (null for 'cam', which tfjs does not compute) */
  outputSources: (tf.SymbolicTensor | null)[];
  stats: { layers: number; nodes: number; foldedBatchNorms: number; parameters: number; ops: Record<string, number> };
}

/** Where the CAM comes from: the final feature maps, the head, and for a multi-scale head its pooled input and the final features' first row in its kernel. */
interface CamPlan {
  features: tf.SymbolicTensor;
  dense: tf.layers.Layer;
  offset: number;
  pooled?: tf.SymbolicTensor;
}

interface TfNode {
  layer: tf.layers.Layer;
  inputs: tf.SymbolicTensor[];
  outputs: tf.SymbolicTensor[];
}

export function exportLayersModel(model: tf.LayersModel, opts: ExportOptions = {}): ExportResult {
  const g = new GraphBuilder();
  const refs = new Map<number, TensorRef>();
  const idOf = new WeakMap<TensorRef, number>();
  const set = (t: tf.SymbolicTensor, r: TensorRef) => {
    refs.set(t.id, r);
    idOf.set(r, t.id);
  };

  const inputs: GraphIo[] = model.inputs.map((t, i) => {
    const name = g.reserve(opts.inputNames?.[i] ?? (i === 0 ? 'input' : `input_${i}`));
    const shape = storedShape(t.shape as TfShape);
    g.addInput(name, shape);
    set(t, { name, shape: t.shape as TfShape });
    return { name, shape, layout: layoutOf(t.shape.length) };
  });

  const outputNames = model.outputs.map((_, i) => g.reserve(opts.outputNames?.[i] ?? `output_${i}`));
  let camPlan: CamPlan | undefined;
  if (opts.cam) camPlan = findCamHead(model);
  const wanted = [...model.outputs, ...(camPlan ? [camPlan.features] : []), ...(camPlan?.pooled ? [camPlan.pooled] : [])];

  const order = topoOrder(model, wanted);
  const consumers = new Map<number, number>();
  for (const n of order) for (const t of n.inputs) consumers.set(t.id, (consumers.get(t.id) ?? 0) + 1);
  for (const t of wanted) consumers.set(t.id, (consumers.get(t.id) ?? 0) + 1);

  let foldedBatchNorms = 0;
  for (const node of order) {
    const { layer } = node;
    const className = layer.getClassName();
    const convert = converterFor(className);
    if (!convert) {
      throw new CxrError('E_MODEL_INVALID', `ONNX export: layer ${layer.name} of class ${className} has no converter`);
    }
    if (node.outputs.length !== 1) throw new CxrError('E_MODEL_INVALID', `ONNX export: layer ${layer.name} has ${node.outputs.length} outputs`);
    const weights = layerWeights(layer);
    const ctx: LayerContext = {
      g,
      className,
      layerName: layer.name,
      config: layer.getConfig() as Record<string, unknown>,
      inputs: node.inputs.map((t) => {
        const r = refs.get(t.id);
        if (!r) throw new Error(`ONNX export: ${layer.name} reads a tensor not yet converted`);
        return r;
      }),
      outputShape: node.outputs[0].shape as TfShape,
      weight: (key) => weights.get(key),
      materialize: (t) => materialize(g, t),
      soleConsumer: (t) => {
        const id = idOf.get(t);
        return id !== undefined && consumers.get(id) === 1;
      },
    };
    const before = g.nodes.length;
    set(node.outputs[0], convert(ctx));
    if (className === 'BatchNormalization' && g.nodes.length === before) foldedBatchNorms++;
  }

  const outputs: GraphIo[] = [];
  const outputSources: (tf.SymbolicTensor | null)[] = [];
  const publish = (t: tf.SymbolicTensor, publicName: string) => {
    const ref = refs.get(t.id);
    if (!ref) throw new Error(`ONNX export: output ${publicName} was never produced`);
    const internal = materialize(g, ref);
    const producer = g.producerOf(internal);
    const isPublished = outputs.some((o) => o.name === internal);
    if (producer && !isPublished && !inputs.some((i) => i.name === internal)) g.rename(internal, publicName);
    else g.nodeTo('Identity', [internal], publicName);
    // later look-ups of this tensor (the CAM reads the features) must see the new name
    refs.set(t.id, { ...ref, name: publicName, pendingPad: undefined });
    const shape = storedShape(t.shape as TfShape);
    g.addOutput(publicName, shape);
    outputs.push({ name: publicName, shape, layout: layoutOf(t.shape.length) });
    outputSources.push(t);
  };
  model.outputs.forEach((t, i) => publish(t, outputNames[i]));

  if (camPlan) {
    const { features, dense, offset, pooled } = camPlan;
    if (!model.outputs.some((t) => t.id === features.id)) publish(features, g.reserve('features'));
    // a multi-scale head's input, what a head refit fits on (the engine's features then)
    if (pooled) publish(pooled, g.reserve('pooled'));
    const featuresName = refs.get(features.id)!.name;
    const kernel = layerWeights(dense).get('kernel');
    const channels = features.shape[3];
    if (!kernel || kernel.shape[0] !== offset + channels!) {
      throw new CxrError('E_MODEL_INVALID', `ONNX export: head ${dense.name} does not match the ${channels} feature channels`);
    }
    // unit 0 of the head: the pneumonia logit
    const w = new Float32Array(channels!);
    const units = kernel.shape[1];
    for (let c = 0; c < channels!; c++) w[c] = kernel.data[(offset + c) * units];
    const camName = g.reserve('cam');
    g.nodeTo('Conv', [featuresName, g.floatInit('cam/W', w, [1, channels!, 1, 1])], camName, { kernel_shape: [1, 1] });
    const shape: Dim[] = ['N', 1, features.shape[1]!, features.shape[2]!];
    g.addOutput(camName, shape);
    outputs.push({ name: camName, shape, layout: 'NCHW' });
    outputSources.push(null);
  }

  const bytes = g.toModel({ producer: 'cxr-triage', metadata: opts.metadata });
  const ops: Record<string, number> = {};
  for (const n of g.nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;
  let parameters = 0;
  for (const init of g.initializers.values()) parameters += init.data.length;
  return {
    bytes,
    inputs,
    outputs,
    opset: OPSET,
    outputSources,
    stats: { layers: order.length, nodes: g.nodes.length, foldedBatchNorms, parameters, ops },
  };
}

function layoutOf(rank: number): string {
  return rank === 4 ? 'NCHW' : rank === 2 ? 'NC' : `rank${rank}`;
}

function materialize(g: GraphBuilder, t: TensorRef): string {
  const p = t.pendingPad;
  if (!p) return t.name;
  if (!p.materialized) {
    const [top, bottom, left, right] = p.pads;
    const pads = g.int64Init(`${p.source.name}/pads`, [0, 0, top, left, 0, 0, bottom, right]);
    p.materialized = g.node('Pad', [p.source.name, pads], `${p.source.name}/zero_pad`, { mode: 'constant' });
  }
  return p.materialized;
}

/** Weights by their Keras short name (kernel, bias, gamma, moving_mean, ...). */
function layerWeights(layer: tf.layers.Layer): Map<string, LayerWeight> {
  const out = new Map<string, LayerWeight>();
  for (const v of layer.weights) {
    const full = v.originalName ?? v.name;
    const key = full.slice(full.lastIndexOf('/') + 1).replace(/_\d+$/, '');
    out.set(key, { data: v.read().dataSync() as Float32Array, shape: [...v.shape] as number[] });
  }
  return out;
}

/** The layer applications needed for `targets`, inputs before consumers. */
function topoOrder(model: tf.LayersModel, targets: tf.SymbolicTensor[]): TfNode[] {
  const inputIds = new Set(model.inputs.map((t) => t.id));
  const done = new Set<tf.layers.Layer | object>();
  const order: TfNode[] = [];
  // iterative DFS: DenseNet121 is ~430 layers deep along one path
  const stack: { t: tf.SymbolicTensor; expanded: boolean }[] = targets.map((t) => ({ t, expanded: false }));
  const producerNode = (t: tf.SymbolicTensor) => {
    const node = t.sourceLayer.inboundNodes[t.nodeIndex];
    if (!node) throw new CxrError('E_MODEL_INVALID', `ONNX export: tensor ${t.name} has no producing node`);
    return node;
  };
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (inputIds.has(top.t.id)) {
      stack.pop();
      continue;
    }
    const node = producerNode(top.t);
    if (done.has(node)) {
      stack.pop();
      continue;
    }
    if (!top.expanded) {
      top.expanded = true;
      for (const x of node.inputTensors) if (!inputIds.has(x.id) && !done.has(producerNode(x))) stack.push({ t: x, expanded: false });
      continue;
    }
    stack.pop();
    done.add(node);
    const cls = top.t.sourceLayer.getClassName();
    if (cls === 'InputLayer') throw new CxrError('E_MODEL_INVALID', `ONNX export: ${top.t.name} comes from an input that is not the model's`);
    order.push({ layer: top.t.sourceLayer, inputs: node.inputTensors, outputs: node.outputTensors });
  }
  return order;
}

/**
 * Walks back from the first output through its sigmoid, the one-unit Dense and any
 * dropout to the GlobalAveragePooling2D: the tensor that pooling reads is the CAM's
 * feature map.
 */
function findCamHead(model: tf.LayersModel): CamPlan {
  let t = model.outputs[0];
  let dense: tf.layers.Layer | undefined;
  let pooled: tf.SymbolicTensor | undefined;
  let offset = 0;
  for (let steps = 0; steps < 10; steps++) {
    const layer = t.sourceLayer;
    const cls = layer.getClassName();
    const node = layer.inboundNodes[t.nodeIndex];
    if (cls === 'GlobalAveragePooling2D') {
      if (!dense) break;
      return { features: node.inputTensors[0], dense, offset, ...(pooled ? { pooled } : {}) };
    }
    if (cls === 'Concatenate' && dense && !pooled) {
      // a multi-scale head (densenet.ts withHeadTaps): the final features' pooling comes last,
      // and its rows of the kernel are the CAM's weights
      pooled = t;
      const parts = node.inputTensors;
      for (const p of parts.slice(0, -1)) offset += p.shape[p.shape.length - 1] ?? 0;
      t = parts[parts.length - 1];
      continue;
    }
    if (cls === 'Dense') {
      if (dense) break;
      dense = layer;
    } else if (!['Activation', 'Dropout', 'GaussianDropout', 'AlphaDropout', 'GaussianNoise'].includes(cls)) {
      break;
    }
    t = node.inputTensors[0];
  }
  throw new CxrError(
    'E_MODEL_INVALID',
    'ONNX export: no class-activation head (GlobalAveragePooling2D -> [Concatenate] -> [Dropout] -> Dense) before the first output',
  );
}
