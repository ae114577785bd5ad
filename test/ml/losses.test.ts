import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { diceBceLoss, focalLoss, l2Penalty } from '../../src/ml/losses.js';
import { closeTo, setupBackend } from '../support/ml.js';

await setupBackend();

const value = (t: tf.Scalar) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

test('focal loss matches the hand-computed alpha-balanced value', () => {
  // p=0.8,y=1: CE=-ln 0.8=0.2231436, p_t=0.8, a=0.25 -> 0.25*0.2^2*0.2231436 = 0.0022314
  // p=0.3,y=0: CE=-ln 0.7=0.3566749, p_t=0.7, a=0.75 -> 0.75*0.3^2*0.3566749 = 0.0240756
  // mean = 0.0131535 (reference_train.focal on logit(p) gives 0.0131535 too)
  const y = tf.tensor2d([1, 0], [2, 1]);
  const p = tf.tensor2d([0.8, 0.3], [2, 1]);
  closeTo(value(focalLoss(y, p)), 0.0131535, 1e-6, 'focal');
  // gamma 0, alpha 0.5 is half the plain BCE: 0.5 * (0.2231436 + 0.3566749) / 2
  closeTo(value(focalLoss(y, p, { alpha: 0.5, gamma: 0 })), 0.1449546, 1e-6, 'focal gamma 0');
  // class weights [1, 3] triple the positive term: (3*0.0022314 + 0.0240756)/2
  closeTo(value(focalLoss(y, p, { classWeights: [1, 3] })), 0.0153849, 1e-6, 'weighted focal');
  tf.dispose([y, p]);
});

test('focal loss stays finite for saturated probabilities', () => {
  const y = tf.tensor1d([1, 0]);
  const p = tf.tensor1d([0, 1]);
  assert.ok(Number.isFinite(value(focalLoss(y, p))));
  tf.dispose([y, p]);
});

test('Dice + BCE matches the hand-computed value, Dice averaged per image', () => {
  // image 1: p=[.9,.2,.6,.1], y=[1,0,1,0]: dice loss 1-(2*1.5+1)/(1.8+2+1)=0.1666667
  // image 2: p=.5 everywhere, y=0: dice loss 1-1/(2+0+1)=0.6666667
  // BCE over 8 pixels: (ln(1/.9)*2+ln(1/.8)+ln(1/.6) + 4 ln 2)/8 = 0.4646599
  // total 0.4166667 + 0.4646599 = 0.8813266 (reference_train.dice_bce: 0.8813266)
  const p = tf.tensor4d([0.9, 0.2, 0.6, 0.1, 0.5, 0.5, 0.5, 0.5], [2, 2, 2, 1]);
  const y = tf.tensor4d([1, 0, 1, 0, 0, 0, 0, 0], [2, 2, 2, 1]);
  closeTo(value(diceBceLoss(y, p)), 0.8813266, 1e-6, 'dice+bce');
  tf.dispose([y, p]);
});

test('L2 penalty is l2 times the sum of squared kernel values', () => {
  const a = tf.tensor1d([1, -2]);
  const b = tf.tensor2d([[3]]);
  closeTo(value(l2Penalty([a, b], 1e-3)), 1e-3 * 14, 1e-9, 'l2');
  tf.dispose([a, b]);
});
