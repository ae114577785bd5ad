import type { GrayImage } from '../imaging/types.js';
import type { ImageScorer, ScoredImage } from '../ml/evaluate.js';
import type { Population } from '../ml/model-store/index.js';
import { loadEngine, type EngineOptions } from './engine.js';
import { definedPopulations, populationForDatasets, populationProbability } from './population.js';

export interface ScorerOptions extends EngineOptions {
  /**
   * Image folders carry no patient ages: decide at this population's threshold (it must have
   * one), or, when absent, at the one population's whose validation sets name every folder in
   * `datasets`; otherwise at the version's single threshold.
   */
  population?: Population;
  datasets?: readonly string[];
}

/**
 * `evaluate`'s image scorer on the serving engine: the same ONNX models, preprocessing,
 * TTA views and mean probability as `analyze` and the service, so the decisions evaluate
 * reports are the ones the CLI prints for the same models and images.
 */
export async function onnxScorer(opts: ScorerOptions = {}): Promise<ImageScorer> {
  const engine = await loadEngine(opts);
  let chosen: ReturnType<typeof populationForDatasets>;
  try {
    chosen = populationForDatasets(engine.threshold, opts.datasets ?? [], opts.population);
  } catch (e) {
    await engine.close();
    throw e;
  }
  return {
    description: `onnxruntime (TTA ${engine.settings.tta}, ${engine.settings.threads} threads)`,
    models: {
      segmenter: { name: engine.models.segmenter.name, version: engine.models.segmenter.version },
      classifier: { name: engine.models.classifier.name, version: engine.models.classifier.version },
    },
    threshold: chosen?.value ?? engine.threshold.value,
    ...(chosen
      ? { population: { name: chosen.population, why: chosen.why } }
      : { unusedPopulations: definedPopulations(engine.threshold).map(([name]) => name) }),
    targetRecall: engine.threshold.targetRecall,
    async score(image: GrayImage): Promise<ScoredImage> {
      const s = await engine.scoreImage(image);
      // the population decided at is the one whose calibration applies
      return {
        probability: populationProbability(chosen?.calibration, s),
        rawProbability: s.rawProbability,
        mask: s.mask,
        lungAreaFraction: s.lungAreaFraction,
        spread: s.spread,
      };
    },
    dispose: () => engine.close(),
  };
}
