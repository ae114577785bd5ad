import { planQuantization, type PlanOptions, type QuantizationPlan } from './plan.js';
import { applyQdq, type QdqResult } from './qdq.js';
import { calibrateRanges, type CalibrateRangesOptions, type CalibrationInput, type CalibrationMethod } from './ranges.js';
import { decodeModel, encodeModel } from './proto.js';

export { planQuantization, DEFAULT_OPS, QUANTIZABLE_OPS, type QuantizableOp } from './plan.js';
export { WEIGHT_QMAX } from './qdq.js';
export type { CalibrationInput, CalibrationMethod, Range } from './ranges.js';

export interface QuantizeOptions extends PlanOptions, CalibrateRangesOptions {}

export interface QuantizeResult {
  bytes: Uint8Array;
  plan: QuantizationPlan;
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
  const model = decodeModel(floatBytes);
  const plan = planQuantization(model, opts);
  const ranges = await calibrateRanges(model, plan.tensors, inputs, opts);
  const q = applyQdq(model, plan, ranges);
  return {
    bytes: encodeModel(q.model),
    plan,
    weightError: q.weightError,
    activations: q.activations,
    method: opts.method ?? 'minmax',
    calibrationInputs: inputs.length,
  };
}
