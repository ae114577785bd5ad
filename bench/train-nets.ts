/**
 * The two real networks wrapped as one training step on random data, the same work as
 * shared/bench/reference_train.py: forward in training mode, the task's loss, gradients
 * of every trainable variable, and an Adam update (tfjs' own, as the reference uses
 * torch.optim.Adam).
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { buildDenseNet121SE } from '../src/ml/densenet.js';
import { diceBceLoss, focalLoss } from '../src/ml/losses.js';
import { dataParallelGradients } from '../src/ml/parallel/data-parallel.js';
import { buildUNet } from '../src/ml/unet.js';

export type BenchModel = 'classifier' | 'segmenter';

export interface TrainStep {
  model: tf.LayersModel;
  /** forward + loss + backward + optimizer update; returns nothing so no tensor escapes */
  run(): Promise<void>;
  dispose(): void;
}

/** The task's loss as reference_train.py has it (focal for the classifier, Dice + BCE for the U-Net). */
export function benchLoss(kind: BenchModel): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
  return kind === 'classifier' ? (y, p) => focalLoss(y, p) : (y, p) => diceBceLoss(y, p);
}

export function buildBenchModel(kind: BenchModel, size: number): tf.LayersModel {
  return kind === 'classifier' ? buildDenseNet121SE({ inputSize: size }) : buildUNet({ inputSize: size });
}

/**
 * One training step on random data. With `workers` > 0 the gradients come from the
 * data-parallel engine (this thread plus that many worker threads, each on a share of
 * the batch), as a training loop would use it.
 */
export async function buildTrainStep(kind: BenchModel, size: number, batch: number, workers = 0): Promise<TrainStep> {
  const model = buildBenchModel(kind, size);
  const x = tf.randomNormal([batch, size, size, 1], 0, 1, 'float32', 1);
  const y =
    kind === 'classifier'
      ? tf.cast(tf.greater(tf.randomUniform([batch, 1], 0, 1, 'float32', 2), 0.5), 'float32')
      : tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 3), 0.5), 'float32');
  const optimizer = tf.train.adam(1e-4);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const loss = benchLoss(kind);
  const engine =
    workers > 0
      ? await dataParallelGradients(model, {
          loss: { module: fileURLToPath(import.meta.url), name: 'benchLoss', args: [kind] },
          localLoss: loss,
          workers,
        })
      : null;
  const xs = x.dataSync() as Float32Array;
  const ys = y.dataSync() as Float32Array;
  return {
    model,
    async run() {
      if (engine == null) {
        tf.tidy(() => {
          optimizer.minimize(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), false, vars);
        });
        return;
      }
      const { grads } = await engine.gradients({ x: xs, y: ys, n: batch });
      optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
      tf.dispose(grads);
    },
    dispose() {
      engine?.dispose();
      tf.dispose([x, y]);
      optimizer.dispose();
      model.dispose();
    },
  };
}
