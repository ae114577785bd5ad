import * as tf from '@tensorflow/tfjs';
import { dice, iou } from '../metrics.js';
import type { BatchSource, Task } from './types.js';

export interface SourcePredictions {
  ids: string[];
  /** classifier: one probability per image */
  scores: Float32Array;
  /** classifier: one label per image */
  labels: Float32Array;
  /** segmenter: per-image Dice and IoU of the mask cut at 0.5 */
  dice: number[];
  iou: number[];
  /** mean loss over images */
  loss: number;
  n: number;
}

export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

/** Runs the model in inference mode over every batch of a source (batch order kept). */
export async function predictSource(
  model: tf.LayersModel,
  source: BatchSource,
  task: Task,
  size: number,
  batchSize: number,
  loss: LossFn,
): Promise<SourcePredictions> {
  const ids: string[] = [];
  const scores: number[] = [];
  const labels: number[] = [];
  const dices: number[] = [];
  const ious: number[] = [];
  let lossSum = 0;
  let n = 0;
  for await (const batch of source.batches(0, batchSize)) {
    const [pred, l] = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [batch.n, size, size, 1]);
      const p = model.predict(x) as tf.Tensor;
      const y = task === 'classifier' ? tf.tensor2d(batch.y, [batch.n, 1]) : tf.tensor4d(batch.y, [batch.n, size, size, 1]);
      return [p, loss(y, p)] as const;
    });
    const values = (await pred.data()) as Float32Array;
    lossSum += (await l.data())[0] * batch.n;
    tf.dispose([pred, l]);
    n += batch.n;
    for (let i = 0; i < batch.n; i++) ids.push(batch.ids?.[i] ?? String(ids.length));
    if (task === 'classifier') {
      for (let i = 0; i < batch.n; i++) {
        scores.push(values[i]);
        labels.push(batch.y[i]);
      }
    } else {
      const px = size * size;
      for (let i = 0; i < batch.n; i++) {
        const p = values.subarray(i * px, (i + 1) * px);
        const y = batch.y.subarray(i * px, (i + 1) * px);
        dices.push(dice(p, y));
        ious.push(iou(p, y));
      }
    }
  }
  return {
    ids,
    scores: Float32Array.from(scores),
    labels: Float32Array.from(labels),
    dice: dices,
    iou: ious,
    loss: n > 0 ? lossSum / n : NaN,
    n,
  };
}
