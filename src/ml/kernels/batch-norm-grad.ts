import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs';

/**
 * Gradient of FusedBatchNorm, y = (x - mean) · rsqrt(variance + ε) · scale + offset,
 * without the full-size Tile that tfjs-core's version materialises for dX (the wasm Tile
 * kernel is a scalar loop: a fifth of a DenseNet training step). Per-channel factors are
 * broadcast instead, and the two reductions the other gradients need, Σdy and
 * Σdy·(x - mean), are each computed once and shared:
 *
 *   dX        = dy · g                       with g = scale · rsqrt(variance + ε)
 *   dMean     = -g · Σdy
 *   dVariance = -½ · g · rsqrt(variance + ε)² · Σdy·(x - mean)
 *   dScale    = rsqrt(variance + ε) · Σdy·(x - mean)
 *   dOffset   = Σdy
 *
 * (Σ over the axes a parameter is broadcast along.) Same values as tfjs-core's gradient,
 * on every backend.
 */
export const fusedBatchNormGradConfig: GradConfig = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const grad = Array.isArray(dy) ? dy[0] : dy;
    const [x, mean, variance, scale] = saved;
    const epsilon = attrs.varianceEpsilon as number;
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const g = scale == null ? rstd : tf.mul(scale, rstd);
    const reduceTo = (t: tf.Tensor, shape: number[]): tf.Tensor => {
      const axes = tf.backend_util.getReductionAxes(shape, x.shape);
      return tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, shape);
    };
    // Computed here rather than inside the closures: the tape runs each closure in its own
    // tidy, which would dispose a value shared between two of them. gradFunc itself runs in
    // the backward pass's scope, so these are freed with the rest of it.
    // (The tape also keeps whatever gradFunc allocates until the backward pass ends, so the
    // full-size product is confined to a tidy.)
    const sumDy = reduceTo(grad, mean.shape);
    const sumDyCentered = tf.tidy(() => reduceTo(tf.mul(grad, tf.sub(x, mean)), mean.shape));
    return {
      x: () => tf.mul(grad, g),
      mean: () => tf.reshape(tf.neg(tf.mul(g, sumDy)), mean.shape),
      variance: () => tf.reshape(tf.mul(tf.mul(tf.mul(g, tf.square(rstd)), -0.5), sumDyCentered), variance.shape),
      scale: () => tf.reshape(tf.mul(rstd, sumDyCentered), scale?.shape ?? mean.shape),
      offset: () => tf.reshape(sumDy, mean.shape),
    };
  },
};
