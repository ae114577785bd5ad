import { CxrError } from '../../errors.js';
import { decodeModel, encodeModel, floatValueInfo, graphOf, indexGraph, node } from './quantize/proto.js';

/** The ops a quantizer or a float16 store adds after a layer's own output: not the layer's output. */
const ADDED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'Cast']);

/**
 * A classifier graph with one more output, `pooled` [N,D]: the global average of each tapped
 * layer's output (tfjs layer names, e.g. transition2_relu), in the order given, then of the
 * final `features`: what a multi-scale head (densenet.ts withHeadTaps) reads, computed from a
 * version whose head does not read it yet, float or int8 alike. Everything else, the served
 * probability included, is left as it is. Used by `refit-head --head-taps`, which fits such
 * a head on these features; the version it writes then exports the same `pooled` itself.
 */
export function tapPooledFeatures(bytes: Uint8Array, taps: readonly string[], label = 'classifier'): Uint8Array {
  const m = decodeModel(bytes, label);
  const g = graphOf(m);
  if ((g.output ?? []).some((o) => o.name === 'pooled'))
    throw new CxrError('E_MODEL_INVALID', `${label} already outputs pooled features (its head is multi-scale already: refit it as it is, without new taps)`);
  if (!(g.output ?? []).some((o) => o.name === 'features')) throw new CxrError('E_MODEL_INVALID', `${label} has no 'features' output to pool`);
  const { consumers } = indexGraph(g);
  const sources = taps.map((layer) => {
    // the layer's output: the last node of its name that is not a quantizer's or a cast
    const mine = g.node.filter((n) => (n.name ?? '').startsWith(`${layer}/`) && !ADDED_OPS.has(n.opType ?? ''));
    if (mine.length === 0) throw new CxrError('E_BAD_ARGUMENT', `head tap '${layer}' names no layer of ${label}`);
    const out = mine[mine.length - 1].output![0];
    // In an int8 graph the quantizer gives a tapped layer's poolings its quantized-dequantized
    // values, as it does the next convolution: pool those, or the head is fitted on features
    // the served version never computes (measured: 0.066 mean probability change).
    const q = (consumers.get(out) ?? []).find((n) => n.opType === 'QuantizeLinear');
    const dq = q && (consumers.get(q.output![0]) ?? []).find((n) => n.opType === 'DequantizeLinear');
    return dq ? dq.output![0] : out;
  });
  const pooled = [...sources, 'features'].map((t, i) => {
    const out = `pooled/${i}/gap`;
    g.node.push(node('GlobalAveragePool', [t], [out], `pooled/${i}/GlobalAveragePool`));
    return out;
  });
  g.node.push(node('Concat', pooled, ['pooled/concat'], 'pooled/Concat', { axis: 1 }));
  g.node.push(node('Flatten', ['pooled/concat'], ['pooled'], 'pooled/Flatten', { axis: 1 }));
  g.output!.push(floatValueInfo('pooled'));
  return encodeModel(m);
}
