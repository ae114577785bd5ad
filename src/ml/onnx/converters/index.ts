import type { Converter } from '../context.js';
import { activationLayer, eluLayer, leakyReluLayer, reluLayer, softmaxLayer } from './activation.js';
import { conv2d, conv2dTranspose, depthwiseConv2d } from './conv.js';
import { dense, identity } from './core.js';
import { add, average, concatenate, maximum, minimum, multiply } from './merge.js';
import { batchNormalization } from './normalization.js';
import { averagePooling2d, globalAveragePooling2d, globalMaxPooling2d, maxPooling2d } from './pooling.js';
import { cropping2d, flatten, reshape, upSampling2d, zeroPadding2d } from './reshaping.js';

/** One converter per Keras layer class name (Layer.getClassName()). */
const converters = new Map<string, Converter>([
  ['Conv2D', conv2d],
  ['Conv2DTranspose', conv2dTranspose],
  ['DepthwiseConv2D', depthwiseConv2d],
  ['BatchNormalization', batchNormalization],
  ['Activation', activationLayer],
  ['ReLU', reluLayer],
  ['LeakyReLU', leakyReluLayer],
  ['ELU', eluLayer],
  ['Softmax', softmaxLayer],
  ['MaxPooling2D', maxPooling2d],
  ['AveragePooling2D', averagePooling2d],
  ['GlobalAveragePooling2D', globalAveragePooling2d],
  ['GlobalMaxPooling2D', globalMaxPooling2d],
  ['ZeroPadding2D', zeroPadding2d],
  ['Cropping2D', cropping2d],
  ['Reshape', reshape],
  ['Flatten', flatten],
  ['UpSampling2D', upSampling2d],
  ['Concatenate', concatenate],
  ['Add', add],
  ['Multiply', multiply],
  ['Maximum', maximum],
  ['Minimum', minimum],
  ['Average', average],
  ['Dense', dense],
  ['Dropout', identity],
  ['SpatialDropout1D', identity],
  ['GaussianNoise', identity],
  ['GaussianDropout', identity],
  ['AlphaDropout', identity],
]);

export function converterFor(className: string): Converter | undefined {
  return converters.get(className);
}

/** For project-defined custom layers: teach the exporter their ONNX form. */
export function registerConverter(className: string, converter: Converter): void {
  converters.set(className, converter);
}

export function supportedLayerClasses(): string[] {
  return [...converters.keys(), 'InputLayer'].sort();
}
