/** Messages between the training process and its gradient workers (structured-clone safe). */

/**
 * Where a worker finds the loss: `import(module)[name](...args)` must return
 * `(yTrue, yPred) => tf.Scalar`. Functions cannot cross to a worker, so the loss is
 * named instead (e.g. the training loop's own `lossFor` with its config).
 */
export interface LossSpec {
  /** file URL or absolute path of an ES module */
  module: string;
  /** name of the export to call */
  name: string;
  /** arguments for that export (structured-cloneable) */
  args?: unknown[];
}

export interface InitMessage {
  type: 'init';
  /** model.toJSON(): topology of standard Keras layers */
  topology: string;
  loss: LossSpec;
  /** onnxruntime threads for this worker's convolutions */
  nativeThreads: number;
  /** weights (trainable, then the rest, in model.weights order) are read from here */
  weights: SharedArrayBuffer;
  /** the worker writes gradients (trainable order) and then the non-trainable weights here */
  results: SharedArrayBuffer;
}

export interface StepMessage {
  type: 'step';
  id: number;
  x: Float32Array;
  y: Float32Array;
  n: number;
  /** dropout seed of this share's pass */
  seed?: number;
}

export type ToWorker = InitMessage | StepMessage | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'done'; id: number; loss: number }
  | { type: 'error'; id: number | null; message: string };
