/** A loss factory the data-parallel test's workers import by name (functions cannot be sent to a worker). */
import * as tf from '@tensorflow/tfjs';

export function meanSquaredError(): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
  return (yTrue, yPred) => tf.mean(tf.square(tf.sub(yPred, yTrue))) as tf.Scalar;
}
