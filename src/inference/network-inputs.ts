import * as ort from 'onnxruntime-node';
import { classifierCrop, lungMask, segmenterInput, ttaBatch, ttaViews } from '../imaging/pixel-contract.js';
import type { IntensityMatch } from '../imaging/intensity-match.js';
import type { GrayImage } from '../imaging/types.js';
import { openSession } from './session.js';

/**
 * What each network of the served pipeline is fed for an image: the segmenter's resized
 * film, and the classifier's TTA batch of lung crops cut with the (float) segmenter's mask.
 * The quantizer calibrates activation ranges on these, so int8 ranges come from the inputs
 * the service produces, rotated views included.
 */
export interface NetworkInputs {
  segmenter: { data: Float32Array; dims: number[] };
  classifier: { data: Float32Array; dims: number[] };
}

export interface NetworkInputSource {
  inputs(image: GrayImage): Promise<NetworkInputs>;
  close(): Promise<void>;
}

export async function networkInputSource(
  segmenterOnnx: Uint8Array,
  sizes: { segmenter: number; classifier: number },
  opts: { tta?: number; threads?: number; intensity?: IntensityMatch | null } = {},
): Promise<NetworkInputSource> {
  const { session } = await openSession(segmenterOnnx, 'segmenter', { threads: opts.threads });
  const views = ttaViews(opts.tta ?? 4);
  const s = sizes.segmenter;
  const c = sizes.classifier;
  return {
    async inputs(image: GrayImage): Promise<NetworkInputs> {
      const small = segmenterInput(image, s);
      const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', small.data, [1, 1, s, s]) });
      // the pixel contract, as the engine and training run it
      const mask = lungMask(out[session.outputNames[0]].data as Float32Array, s);
      const { crop } = classifierCrop(image, mask, c, undefined, opts.intensity ?? null);
      return {
        segmenter: { data: small.data, dims: [1, 1, s, s] },
        classifier: { data: ttaBatch(crop, views), dims: [views.length, 1, c, c] },
      };
    },
    close: () => session.release(),
  };
}
