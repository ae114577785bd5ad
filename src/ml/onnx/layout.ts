/**
 * tfjs layers are channels-last (NHWC); the exported graph keeps every rank-4 tensor
 * channels-first (NCHW), the layout onnxruntime's CPU convolutions are fastest in. Other
 * ranks keep the tfjs layout. These helpers translate shapes, axes and weights.
 */
import type { Dim } from './graph.js';

/** A tfjs shape: null for the batch (or any unknown) dimension. */
export type TfShape = (number | null)[];

export const BATCH = 'N';

/** NHWC logical axis -> NCHW stored axis, for rank-4 tensors. */
const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

export function storedAxis(rank: number, logicalAxis: number): number {
  const a = logicalAxis < 0 ? logicalAxis + rank : logicalAxis;
  if (a < 0 || a >= rank) throw new RangeError(`axis ${logicalAxis} out of range for rank ${rank}`);
  return rank === 4 ? NHWC_TO_NCHW_AXIS[a] : a;
}

/** The stored (ONNX) shape of a tensor with tfjs shape `s`; unknown dims become the batch symbol. */
export function storedShape(s: TfShape): Dim[] {
  const dims: Dim[] = s.map((d) => (d == null ? BATCH : d));
  return s.length === 4 ? [dims[0], dims[3], dims[1], dims[2]] : dims;
}

/** Element order of NHWC and NCHW agree when there is one channel or a 1x1 spatial grid. */
export function layoutsAgree(s: TfShape): boolean {
  return s.length !== 4 || s[3] === 1 || (s[1] === 1 && s[2] === 1);
}

/** tfjs Conv2D kernel [kh, kw, in, out] -> ONNX Conv weight [out, in, kh, kw]. */
export function convKernelToOihw(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o];
  return out;
}

/** tfjs Conv2DTranspose kernel [kh, kw, out, in] -> ONNX ConvTranspose weight [in, out, kh, kw]. */
export function deconvKernelToIohw(k: Float32Array, kh: number, kw: number, cout: number, cin: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) out[((i * cout + o) * kh + y) * kw + x] = k[((y * kw + x) * cout + o) * cin + i];
  return out;
}

/** tfjs DepthwiseConv2D kernel [kh, kw, c, m] -> ONNX grouped Conv weight [c*m, 1, kh, kw]. */
export function depthwiseKernelToOihw(k: Float32Array, kh: number, kw: number, c: number, m: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < c; i++) for (let j = 0; j < m; j++) out[((i * m + j) * kh + y) * kw + x] = k[((y * kw + x) * c + i) * m + j];
  return out;
}

/** Dense kernel [in, out] -> its transpose [out, in]. */
export function transpose2d(k: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = k[r * cols + c];
  return out;
}

/**
 * TensorFlow's 'same' padding along one axis: output ceil(in/stride), total padding split
 * with the extra pixel at the end (ONNX SAME_UPPER), returned as [begin, end].
 */
export function samePadding(inSize: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const eff = (kernel - 1) * dilation + 1;
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + eff - inSize, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

/** NCHW float data -> NHWC (for comparing graph outputs with tfjs). */
export function nchwToNhwc(data: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = data[((b * c + ch) * h + y) * w + x];
  return out;
}

/** NHWC float data -> NCHW (for feeding multi-channel tfjs inputs to the graph). */
export function nhwcToNchw(data: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch];
  return out;
}
