import { assertDataScope, DATA_OPS, DEFAULT_OPS, inDataScope, planQuantization, type PlanOptions, type QuantizationPlan } from './plan.js';
import { foldPreactivationBatchNorm } from './fold-preactivation.js';
import { convTransposeAsDepthToSpace } from './transpose-conv.js';
import { channelAbsMax, equalizablePieces, equalizeConcatPieces } from './equalize.js';
import { applyQdq, type QdqResult } from './qdq.js';
import { calibrateRanges, sharedRanges, type CalibrateRangesOptions, type CalibrationInput, type CalibrationMethod } from './ranges.js';
import { decodeModel, encodeModel } from './proto.js';
import { halveExactFloatInitializers } from '../half-initializers.js';

export { planQuantization, inDataScope, DEFAULT_OPS, QUANTIZABLE_OPS, DATA_OPS, type QuantizableOp, type DataOp } from './plan.js';
export { WEIGHT_QMAX } from './qdq.js';
export type { CalibrationInput, CalibrationMethod, Range } from './ranges.js';

export interface QuantizeOptions extends PlanOptions, CalibrateRangesOptions {}

export interface QuantizeResult {
  bytes: Uint8Array;
  plan: QuantizationPlan;
  /** batch norms folded into the convolutions after them (fold-preactivation.ts) */
  foldedBatchNorms: string[];
  /** ConvTranspose nodes rewritten as Conv + DepthToSpace */
  rewrittenConvTransposes: string[];
  /** concatenation pieces whose channels were brought to one scale */
  equalizedPieces: string[];
  /** float initializers stored as float16 behind a Cast (exact: half-initializers.ts) */
  halvedInitializers: number;
  weightError: QdqResult['weightError'];
  activations: QdqResult['activations'];
  method: CalibrationMethod;
  calibrationInputs: number;
}

/**
 * Static int8 quantization of a float ONNX model in QDQ format: plan the nodes, calibrate
 * the activation ranges on `inputs` with ONNX Runtime, rewrite the graph.
 */
export async function quantizeOnnx(floatBytes: Uint8Array, inputs: readonly CalibrationInput[], opts: QuantizeOptions = {}): Promise<QuantizeResult> {
  const dataOps = opts.dataOps ?? DATA_OPS;
  const inScope = (id: string) => inDataScope(opts.dataScope, id);
  let decoded = decodeModel(floatBytes);
  // before the rewrites and the calibration runs, which take minutes on a DenseNet
  assertDataScope(decoded, opts.dataScope);
  // each rewrite computes the same function in float; it only pays when its result runs in uint8
  // (not when ConvTranspose itself is asked for in int8: then it stays one node)
  const rewriteUpsampling = dataOps.includes('DepthToSpace') && !(opts.ops ?? DEFAULT_OPS).includes('ConvTranspose');
  const upsampling = rewriteUpsampling ? convTransposeAsDepthToSpace(decoded) : { model: decoded, rewritten: [] };
  decoded = upsampling.model;
  const fold = dataOps.includes('Add') ? foldPreactivationBatchNorm(decoded, inScope) : { model: decoded, folded: [] };
  let model = fold.model;
  // uint8 concatenations need their pieces' channels on one scale (equalize.ts)
  let equalized: string[] = [];
  if (dataOps.includes('Concat') && inputs.length > 0) {
    const pieces = equalizablePieces(model, inScope);
    if (pieces.length > 0) {
      const eq = equalizeConcatPieces(model, await channelAbsMax(model, pieces, inputs, opts.threads));
      model = eq.model;
      equalized = eq.equalized;
    }
  }
  const plan = planQuantization(model, opts);
  const ranges = sharedRanges(await calibrateRanges(model, plan.tensors, inputs, opts), {
    same: plan.data.filter((p) => p.op === 'MaxPool' || p.op === 'DepthToSpace').map((p) => [...p.inputs, p.output]),
    concat: plan.data.filter((p) => p.op === 'Concat').map((p) => [...p.inputs, p.output]),
    pinned: new Set([...plan.quantized, ...plan.data].filter((p) => p.relu).map((p) => p.output)),
  });
  const q = applyQdq(model, plan, ranges);
  // what stays float (SE blocks, kept batch norms, the head) is float16 data already: half the bytes, the same outputs
  const halved = halveExactFloatInitializers(q.model);
  return {
    bytes: encodeModel(halved.model),
    halvedInitializers: halved.halved.length,
    plan,
    foldedBatchNorms: fold.folded,
    equalizedPieces: equalized,
    rewrittenConvTransposes: upsampling.rewritten,
    weightError: q.weightError,
    activations: q.activations,
    method: opts.method ?? 'minmax',
    calibrationInputs: inputs.length,
  };
}
