import * as tf from '@tensorflow/tfjs';

/** Probabilities are clipped away from 0 and 1 so that log() stays finite. */
export const PROB_EPSILON = 1e-7;

export interface FocalOptions {
  /** weight of the positive class in the alpha-balanced form (default 0.25) */
  alpha?: number;
  /** focusing exponent (default 2) */
  gamma?: number;
  /** optional per-class weights [negative, positive] multiplied into each sample's loss */
  classWeights?: readonly [number, number];
}

function binaryCrossEntropy(p: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const pc = tf.clipByValue(p, PROB_EPSILON, 1 - PROB_EPSILON);
  // -(y log p + (1-y) log(1-p))
  return tf.neg(tf.add(tf.mul(y, tf.log(pc)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, pc)))));
}

/**
 * Binary focal loss (Lin et al. 2017) on sigmoid probabilities, the formula of `focal` in
 * shared/bench/reference_train.py: mean(a_t * (1 - p_t)^gamma * CE) with
 * p_t = p*y + (1-p)(1-y) and a_t = alpha*y + (1-alpha)(1-y).
 */
export function focalLoss(yTrue: tf.Tensor, yPred: tf.Tensor, opts: FocalOptions = {}): tf.Scalar {
  const alpha = opts.alpha ?? 0.25;
  const gamma = opts.gamma ?? 2;
  return tf.tidy(() => {
    const y = tf.reshape(yTrue, [-1]);
    const p = tf.reshape(yPred, [-1]);
    const ce = binaryCrossEntropy(p, y);
    const pt = tf.add(tf.mul(p, y), tf.mul(tf.sub(1, p), tf.sub(1, y)));
    const a = tf.add(tf.mul(alpha, y), tf.mul(1 - alpha, tf.sub(1, y)));
    let per = tf.mul(tf.mul(a, tf.pow(tf.sub(1, pt), gamma)), ce);
    if (opts.classWeights) {
      const [w0, w1] = opts.classWeights;
      per = tf.mul(per, tf.add(tf.mul(w1, y), tf.mul(w0, tf.sub(1, y))));
    }
    return tf.mean(per) as tf.Scalar;
  });
}

/**
 * Soft Dice (smoothing 1, per image) plus pixel-wise binary cross-entropy, the formula of
 * `dice_bce` in shared/bench/reference_train.py: mean over images of
 * 1 - (2|P∩Y| + 1)/(|P| + |Y| + 1), plus the mean BCE over all pixels.
 */
export function diceBceLoss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const n = yPred.shape[0];
    const p = tf.reshape(yPred, [n, -1]);
    const y = tf.reshape(yTrue, [n, -1]);
    const inter = tf.sum(tf.mul(p, y), 1);
    const dice = tf.sub(1, tf.div(tf.add(tf.mul(2, inter), 1), tf.add(tf.add(tf.sum(p, 1), tf.sum(y, 1)), 1)));
    return tf.add(tf.mean(dice), tf.mean(binaryCrossEntropy(p, y))) as tf.Scalar;
  });
}

/** L2 penalty l2 * sum(w^2) over the given kernels (reported; its gradient is applied in the optimizer step). */
export function l2Penalty(kernels: readonly tf.Tensor[], l2: number): tf.Scalar {
  return tf.tidy(() => {
    if (kernels.length === 0 || l2 === 0) return tf.scalar(0);
    return tf.mul(l2, tf.addN(kernels.map((k) => tf.sum(tf.square(k))))) as tf.Scalar;
  });
}
