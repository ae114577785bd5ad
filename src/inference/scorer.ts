import type { GrayImage } from '../imaging/types.js';
import type { ImageScorer, ScoredImage } from '../ml/evaluate.js';
import { loadEngine, type EngineOptions } from './engine.js';

/**
 * `evaluate`'s image scorer on the serving engine: the same ONNX models, preprocessing,
 * TTA views and mean probability as `analyze` and the service, so the decisions evaluate
 * reports are the ones the CLI prints for the same models and images.
 */
export async function onnxScorer(opts: EngineOptions = {}): Promise<ImageScorer> {
  const engine = await loadEngine(opts);
  return {
    description: `onnxruntime (TTA ${engine.settings.tta}, ${engine.settings.threads} threads)`,
    models: {
      segmenter: { name: engine.models.segmenter.name, version: engine.models.segmenter.version },
      classifier: { name: engine.models.classifier.name, version: engine.models.classifier.version },
    },
    threshold: engine.threshold.value,
    targetRecall: engine.threshold.targetRecall,
    async score(image: GrayImage): Promise<ScoredImage> {
      const s = await engine.scoreImage(image);
      return { probability: s.probability, rawProbability: s.rawProbability, mask: s.mask, lungAreaFraction: s.lungAreaFraction };
    },
    dispose: () => engine.close(),
  };
}
