/**
 * Weights trained outside this project (scripts/gpu/finetune.py on a GPU machine, say) for a
 * version's own graph: a tfjs weights.bin in exactly the layout its model.json lists. Checked
 * here before anything is written: the byte count the manifest implies, and every value
 * finite (a diverged run writes NaN or Inf, which would serve as a silent constant).
 */
import { CxrError } from '../errors.js';
import { float16BitsToFloat32 } from './float16.js';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype?: string };
}

/** The bytes one weight takes in weights.bin: float16-quantized float32 is 2 a value, float32 4. */
function bytesPer(w: WeightSpec): number {
  const q = w.quantization?.dtype;
  if (q === 'float16') return 2;
  if (q === undefined && w.dtype === 'float32') return 4;
  throw new CxrError('E_MODEL_INVALID', `weight ${w.name}: ${q ?? w.dtype} weights cannot be imported (float32 or float16-quantized only)`);
}

/** Where one weight sits in weights.bin. */
export interface WeightSlot {
  spec: WeightSpec;
  /** its first byte */
  offset: number;
  /** its values */
  values: number;
  /** bytes a value takes: 2 for float16-quantized, 4 for float32 */
  bytesPerValue: number;
}

/** Each weight's place in a single-file weights.bin, in manifest order (the order tfjs writes). */
export function weightLayout(specs: readonly WeightSpec[]): WeightSlot[] {
  let offset = 0;
  return specs.map((spec) => {
    const slot = { spec, offset, values: spec.shape.reduce((a, b) => a * b, 1), bytesPerValue: bytesPer(spec) };
    offset += slot.values * slot.bytesPerValue;
    return slot;
  });
}

/** Total bytes of a single-file weights manifest. */
export function expectedWeightBytes(specs: readonly WeightSpec[]): number {
  return weightLayout(specs).reduce((s, w) => s + w.values * w.bytesPerValue, 0);
}

export interface WeightCheck {
  values: number;
  bytes: number;
}

/**
 * Throws E_MODEL_INVALID unless `bytes` is a weights.bin for `specs`: the exact length, every
 * value finite; the first bad weight is named.
 */
export function checkImportedWeights(specs: readonly WeightSpec[], bytes: Uint8Array): WeightCheck {
  const want = expectedWeightBytes(specs);
  if (bytes.byteLength !== want) {
    throw new CxrError(
      'E_MODEL_INVALID',
      `the weights file has ${bytes.byteLength} bytes, the graph's manifest needs ${want}: it was not written for this version's model.json`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let values = 0;
  for (const { spec, offset, values: n, bytesPerValue: per } of weightLayout(specs)) {
    for (let k = 0, off = offset; k < n; k++, off += per) {
      const ok = Number.isFinite(per === 2 ? float16BitsToFloat32(view.getUint16(off, true)) : view.getFloat32(off, true));
      if (!ok)
        throw new CxrError('E_MODEL_INVALID', `weight ${spec.name} holds a value that is not finite (value ${k} of ${n}): the run that wrote it diverged`);
    }
    values += n;
  }
  return { values, bytes: want };
}

/** The first layer of a tfjs layers model.json: its InputLayer. */
interface InputLayerJson {
  class_name: string;
  config: { batch_input_shape?: (number | null)[] };
}

/**
 * A tfjs layers model.json whose image input is `size` x `size` instead: every convolution,
 * pooling and global pooling of a DenseNet is defined at any side, so the same weights run at
 * another resolution (finetune.py's `inputSize` trains them there). `minimumStride` is the
 * network's total downsampling; the side must be a multiple of it, as `densenetConfig` asks, so
 * the CAM's cells keep tiling the crop.
 */
export function graphAtInputSize(modelJson: string, size: number, minimumStride: number): string {
  if (!Number.isInteger(size) || size < minimumStride || size % minimumStride !== 0) {
    throw new CxrError('E_BAD_ARGUMENT', `input size ${size} must be a positive multiple of the network's stride ${minimumStride}`);
  }
  const m = JSON.parse(modelJson) as { modelTopology?: { config?: { layers?: InputLayerJson[] } } };
  const first = m.modelTopology?.config?.layers?.[0];
  const shape = first?.config.batch_input_shape;
  if (first?.class_name !== 'InputLayer' || !shape || shape.length !== 4) {
    throw new CxrError('E_MODEL_INVALID', 'the graph does not start with an image InputLayer [batch, height, width, channels]');
  }
  first.config.batch_input_shape = [shape[0], size, size, shape[3]];
  return JSON.stringify(m);
}
