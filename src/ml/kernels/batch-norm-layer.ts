import * as tf from '@tensorflow/tfjs';

/**
 * Batch normalisation in training mode as one custom-gradient op, for the wasm backend.
 *
 * tfjs-layers normalises a training batch through tf.moments + tf.batchNorm. On the
 * gradient tape that is ~10 kernels per layer, and the tape keeps x - mean and (x - mean)²
 * alive for every BN layer until the backward pass ends (Square and Mean save their
 * inputs): for DenseNet121 at 224 px that is ~45% of the activation memory, which is
 * what limits the batch in the 4 GiB wasm heap. Here the forward pass runs untaped inside
 * one op that saves only x (already alive as the previous layer's output) and C-element
 * statistics, and the backward pass is the closed form
 *
 *   x̂ = (x - μ)·r,  r = rsqrt(σ² + ε),  g = γ·r,  M = elements per channel
 *   dβ = Σdy,  dγ = r·Σdy·(x - μ),
 *   dx = g·dy - g·Σdy/M - g·r²·(x - μ)·Σdy·(x - μ)/M
 *
 * (the gradient through μ and σ² included). Moving statistics are updated exactly as
 * tfjs-layers does (biased batch variance, value -= (value - batch)·(1 - momentum)).
 *
 * The patch replaces BatchNormalization.prototype.call once; it takes the fused path only
 * in training mode, on the wasm backend, for a last-axis BN with scale and centre. Every
 * other call (inference, the cpu reference backend) runs the original method.
 */
interface BatchNormLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: { read(): tf.Tensor };
  beta: { read(): tf.Tensor };
  movingMean: { read(): tf.Tensor; write(t: tf.Tensor): void };
  movingVariance: { read(): tf.Tensor; write(t: tf.Tensor): void };
}
type Call = (this: BatchNormLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

/** The tfjs-layers release whose BatchNormalization fields and `call` this patch was written against. */
export const SUPPORTED_LAYERS = '4.22.0';

let patched: Call | null = null;

function hasVariable(v: unknown, write: boolean): boolean {
  const o = v as { read?: unknown; write?: unknown } | null | undefined;
  return typeof o?.read === 'function' && (!write || typeof o.write === 'function');
}

/** The layer's fields this patch reads are there (a built, scaled and centred BatchNormalization of the pinned release). */
function looksPatchable(l: BatchNormLike): boolean {
  return (
    typeof l.axis === 'number' &&
    typeof l.momentum === 'number' &&
    typeof l.epsilon === 'number' &&
    hasVariable(l.gamma, false) &&
    hasVariable(l.beta, false) &&
    hasVariable(l.movingMean, true) &&
    hasVariable(l.movingVariance, true)
  );
}

function batchNormPrototype(): { call: Call } {
  return Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: Call };
}

/**
 * Installs the patch (once per process). Returns whether it is installed: false, leaving
 * tfjs alone, when tfjs-layers is not the release it was written against or its
 * BatchNormalization no longer looks the same (package.json pins the version exactly).
 */
export function installFusedBatchNormTraining(): boolean {
  if (patched != null) return true;
  if (tf.version_layers !== SUPPORTED_LAYERS) return false;
  const proto = batchNormPrototype();
  const original = proto.call;
  const probe = tf.layers.batchNormalization({}) as unknown as Partial<BatchNormLike>;
  if (typeof original !== 'function' || typeof probe.axis !== 'number' || typeof probe.center !== 'boolean' || typeof probe.scale !== 'boolean') {
    return false;
  }
  patched = function (this: BatchNormLike, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = this.axis === -1 || this.axis === x.rank - 1;
    if (kwargs?.training !== true || tf.getBackend() !== 'wasm' || !lastAxis || !this.scale || !this.center || x.dtype !== 'float32' || !looksPatchable(this)) {
      return original.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, this.gamma.read(), this.beta.read(), this.epsilon);
      const update = (v: BatchNormLike['movingMean'], batch: tf.Tensor) =>
        tf.tidy(() => {
          const old = v.read();
          v.write(tf.sub(old, tf.mul(tf.sub(old, batch), 1 - this.momentum)));
        });
      update(this.movingMean, mean);
      update(this.movingVariance, variance);
      tf.dispose([mean, variance]);
      return y;
    });
  };
  proto.call = patched;
  return true;
}

/** Whether BatchNormalization layers currently run through this patch. */
export function fusedBatchNormTrainingActive(): boolean {
  return patched != null && batchNormPrototype().call === patched;
}

/** y = BN(x) over all axes but the last, with the batch's mean and (biased) variance. */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const stats: { mean?: tf.Tensor; variance?: tf.Tensor } = {};
  const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    const [xt, g, b] = [xIn, gammaIn, betaIn] as tf.Tensor[];
    const mean = tf.mean(xt, axes);
    const variance = tf.mean(tf.squaredDifference(xt, mean), axes);
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    // Kernels run inside a custom op are not taped: intermediates die with this scope,
    // except the two statistics kept for the moving averages.
    stats.mean = tf.keep(mean);
    stats.variance = tf.keep(variance);
    (save as tf.GradSaveFunc)([xt, mean, rstd, g]);
    return {
      value: tf.batchNorm(xt, mean, variance, b, g, epsilon),
      // tfjs calls a custom op's gradFunc outside any scope of its own and keeps what it
      // allocates until the whole backward pass ends: tidy, so only the results survive.
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const d = Array.isArray(dy) ? dy[0] : dy;
          const [xs, mu, r, gm] = saved;
          const m = xs.size / mu.size;
          const centered = tf.sub(xs, mu);
          const sumDy = tf.sum(d, axes);
          const sumDyCentered = tf.sum(tf.mul(d, centered), axes);
          const gr = tf.mul(gm, r);
          // dx = gr·dy + centered·a + c with per-channel a = -gr·r²·ΣdyC/M, c = -gr·Σdy/M
          const a = tf.neg(tf.div(tf.mul(tf.mul(gr, tf.square(r)), sumDyCentered), m));
          const c = tf.neg(tf.div(tf.mul(gr, sumDy), m));
          const dx = tf.add(tf.mul(d, gr), tf.add(tf.mul(centered, a), c));
          return [dx, tf.mul(r, sumDyCentered), sumDy];
        }),
    };
  });
  const y = op(x, gamma, beta);
  if (stats.mean == null || stats.variance == null) throw new Error('batch-norm statistics were not computed');
  return { y, mean: stats.mean, variance: stats.variance };
}
