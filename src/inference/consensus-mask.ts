import * as ort from 'onnxruntime-node';
import type { BinaryMask } from '../imaging/components.js';
import { lungMask, segmenterInput } from '../imaging/pixel-contract.js';
import { PSEUDO_VIEWS, unviewOf, viewOf } from '../imaging/pseudo-mask.js';
import { dice } from '../ml/metrics.js';
import { grayImage, type SampledImage } from '../imaging/types.js';
import { openSession } from './session.js';

export interface ConsensusMask {
  /** the served post-processing of the views' mean probability, on the segmenter's grid */
  mask: BinaryMask;
  /** mean Dice of each view's own mask against `mask` */
  agreement: number;
}

export interface ConsensusMaskSource {
  consensus(image: SampledImage): Promise<ConsensusMask>;
  close(): Promise<void>;
}

/**
 * The segmenter run over a film under PSEUDO_VIEWS, each output brought back to the film's
 * frame: the mean is the pseudo-label, the spread between views its confidence.
 */
export async function consensusMaskSource(segmenterOnnx: Uint8Array, size: number, opts: { threads?: number } = {}): Promise<ConsensusMaskSource> {
  const { session } = await openSession(segmenterOnnx, 'segmenter', { threads: opts.threads });
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  return {
    async consensus(image: SampledImage): Promise<ConsensusMask> {
      const small = segmenterInput(image, size);
      const mean = new Float32Array(size * size);
      const masks: BinaryMask[] = [];
      for (const view of PSEUDO_VIEWS) {
        const seen = viewOf(small, view);
        const out = await session.run({ [input]: new ort.Tensor('float32', seen.data, [1, 1, size, size]) });
        const back = unviewOf(grayImage(size, size, out[output].data as Float32Array), view);
        for (let i = 0; i < mean.length; i++) mean[i] += back.data[i] / PSEUDO_VIEWS.length;
        masks.push(lungMask(back.data, size));
      }
      const mask = lungMask(mean, size);
      const agreement = masks.reduce((s, m) => s + dice(m.data, mask.data), 0) / masks.length;
      return { mask, agreement };
    },
    close: () => session.release(),
  };
}
