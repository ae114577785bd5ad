import type { GrayImage } from '../imaging/types.js';
import type { ImageScorer, ScoredImage, ScoredModel } from '../ml/evaluate.js';
import type { Population } from '../ml/model-store/index.js';
import { loadEngine, type EngineOptions } from './engine.js';
import type { ModelRef } from './types.js';
import { mostSensitivePopulation } from '../ml/calibrate.js';
import { definedPopulations, populationForDatasets, populationProbability, populationRawProbability } from './population.js';

/** What an evaluation records of a served model: which version, at which precision. */
function scored(ref: ModelRef): ScoredModel {
  return { name: ref.name, version: ref.version, precision: ref.precision ?? 'float' };
}

export interface ScorerOptions extends EngineOptions {
  /**
   * Image folders carry no patient ages: decide at this population's threshold (it must have
   * one), or, when absent, at the one population's whose validation sets name every folder in
   * `datasets`; otherwise, when the version has a population estimator, each film as the
   * engine decides a study of unknown age (its estimated population when sure, else the
   * lowest population threshold: recall first), and without one at the version's single
   * threshold.
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
  const pops = definedPopulations(engine.threshold);
  // no population for the folder: each film at the one it is estimated as (counted for the summary)
  const estimated = new Map<string, number>();
  const decidedAt = new Map<string, number>();
  let unsure = 0;
  const recallFirst = mostSensitivePopulation(engine.threshold, engine.threshold.calibration);
  const mostCommon = (): [string, number] | undefined => [...decidedAt].sort((a, b) => b[1] - a[1])[0];
  return {
    description: `onnxruntime (TTA ${engine.settings.tta}, ${engine.settings.threads} threads)`,
    models: {
      segmenter: scored(engine.models.segmenter),
      classifier: scored(engine.models.classifier),
    },
    get threshold() {
      const common = mostCommon();
      return chosen?.value ?? (common ? pops.find(([n]) => n === common[0])![1].value : engine.threshold.value);
    },
    get population() {
      if (chosen) return { name: chosen.population, why: chosen.why };
      const common = mostCommon();
      if (!common) return undefined;
      const counts = [...estimated].map(([n, k]) => `${k} ${n}`).join(', ') || 'none sure';
      return {
        name: common[0],
        why: `estimated from each film: ${counts}${unsure ? `, ${unsure} unsure (decided at the lowest, ${recallFirst![0]}, recall first)` : ''}; each decided at its own population's threshold`,
      };
    },
    get unusedPopulations() {
      return chosen || decidedAt.size > 0 ? undefined : pops.map(([name]) => name);
    },
    // without a chosen population or an estimator no film can be decided at a population's threshold
    ...(!chosen && pops.length > 0 && !engine.threshold.estimatesPopulation ? { pooledBeforeScoring: pops.map(([name]) => name) } : {}),
    targetRecall: engine.threshold.targetRecall,
    async score(image: GrayImage): Promise<ScoredImage> {
      const s = await engine.scoreImage(image, { features: !chosen && pops.length > 0 && engine.threshold.estimatesPopulation });
      const e = s.populationEstimate;
      const sure = !chosen && e?.confident ? pops.find(([n]) => n === e.population) : undefined;
      // as the engine decides a study of unknown age: the estimate when sure, else recall first
      const own = sure ?? (!chosen && e ? recallFirst! : undefined);
      if (sure) estimated.set(sure[0], (estimated.get(sure[0]) ?? 0) + 1);
      else if (own) unsure++;
      if (own) decidedAt.set(own[0], (decidedAt.get(own[0]) ?? 0) + 1);
      const decidedBy = chosen ?? (own ? { population: own[0], value: own[1].value, calibration: own[1].calibration ?? null } : null);
      // the population decided at is the one whose calibration (and own head, when it has one) applies
      return {
        probability: populationProbability(decidedBy?.calibration, s, decidedBy?.population),
        rawProbability: populationRawProbability(s, decidedBy?.population),
        mask: s.mask,
        lungAreaFraction: s.lungAreaFraction,
        spread: s.spread,
        ...(own ? { threshold: own[1].value } : {}),
      };
    },
    dispose: () => engine.close(),
  };
}
