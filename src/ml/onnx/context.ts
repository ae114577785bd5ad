import { CxrError } from '../../errors.js';
import type { GraphBuilder } from './graph.js';
import type { TfShape } from './layout.js';

/**
 * A tensor of the tfjs graph as the exporter has produced it so far. Rank-4 tensors are
 * stored NCHW in the ONNX graph (see layout.ts); `shape` stays the tfjs (NHWC) shape.
 */
export interface TensorRef {
  /** ONNX tensor name (for a pending pad: the unpadded source's name) */
  name: string;
  shape: TfShape;
  /** every value >= 0 (after ReLU/sigmoid): zero padding equals -inf padding for max-pooling */
  nonNegative?: boolean;
  /**
   * A ZeroPadding2D not yet emitted: a following convolution takes the padding into its
   * own pads, which saves a copy of the feature map; anything else materialises it.
   */
  pendingPad?: PendingPad;
  /** Produced directly by a convolution with no activation: a following BN can fold into it. */
  foldable?: FoldableConv;
}

export interface PendingPad {
  source: TensorRef;
  /** [top, bottom, left, right] */
  pads: [number, number, number, number];
  materialized?: string;
}

export interface FoldableConv {
  /** initializer names */
  weight: string;
  bias: string;
  /** the output-channel axis of the weight: 0 for Conv [O,I,kh,kw], 1 for ConvTranspose [I,O,kh,kw] */
  channelAxis: 0 | 1;
}

export interface LayerWeight {
  data: Float32Array;
  shape: number[];
}

export interface LayerContext {
  g: GraphBuilder;
  className: string;
  layerName: string;
  config: Record<string, unknown>;
  inputs: TensorRef[];
  outputShape: TfShape;
  /** a weight by its Keras name: kernel, bias, gamma, beta, moving_mean, moving_variance, ... */
  weight(key: string): LayerWeight | undefined;
  /** The ONNX name of a tensor; emits a pending zero-padding first. */
  materialize(t: TensorRef): string;
  /** True when this layer is the only reader of `t` and `t` is not a model output. */
  soleConsumer(t: TensorRef): boolean;
}

export type Converter = (ctx: LayerContext) => TensorRef;

export function unsupported(ctx: LayerContext, what: string): never {
  throw new CxrError('E_MODEL_INVALID', `ONNX export: layer ${ctx.layerName} (${ctx.className}): ${what} is not supported`);
}

export function requireWeight(ctx: LayerContext, key: string): LayerWeight {
  const w = ctx.weight(key);
  if (!w) throw new CxrError('E_MODEL_INVALID', `ONNX export: layer ${ctx.layerName} has no '${key}' weight`);
  return w;
}

export function cfgNumber(ctx: LayerContext, key: string, fallback?: number): number {
  const v = ctx.config[key];
  if (typeof v === 'number') return v;
  if (v == null && fallback !== undefined) return fallback;
  return unsupported(ctx, `config ${key}=${JSON.stringify(v)}`);
}

export function cfgString(ctx: LayerContext, key: string, fallback?: string): string {
  const v = ctx.config[key];
  if (typeof v === 'string') return v;
  if (v == null && fallback !== undefined) return fallback;
  return unsupported(ctx, `config ${key}=${JSON.stringify(v)}`);
}

export function cfgBool(ctx: LayerContext, key: string, fallback: boolean): boolean {
  const v = ctx.config[key];
  return typeof v === 'boolean' ? v : fallback;
}

/** A Keras int-or-pair option (kernelSize, strides, poolSize, dilationRate) as [rows, cols]. */
export function cfgPair(ctx: LayerContext, key: string, fallback?: [number, number]): [number, number] {
  const v = ctx.config[key];
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return [v[0], v[0]];
  if (v == null && fallback) return fallback;
  return unsupported(ctx, `config ${key}=${JSON.stringify(v)}`);
}

export function requireChannelsLast(ctx: LayerContext): void {
  const f = ctx.config.dataFormat;
  if (f != null && f !== 'channelsLast') unsupported(ctx, `dataFormat ${String(f)}`);
}

export function requireRank(ctx: LayerContext, t: TensorRef, rank: number): void {
  if (t.shape.length !== rank) unsupported(ctx, `input of rank ${t.shape.length} (expected ${rank})`);
}

/** A static dimension, or an error naming the layer. */
export function dim(ctx: LayerContext, d: number | null): number {
  if (d == null) return unsupported(ctx, 'a dynamic spatial or channel dimension');
  return d;
}
