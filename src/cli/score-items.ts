import { onnxScorer, type ScorerOptions } from '../inference/scorer.js';
import { evaluateItems, type EvalItem, type EvaluationResult, type ImageScorer } from '../ml/evaluate.js';
import { ProgressBar } from '../ml/train/progress.js';

/**
 * Scores dataset images through the serving engine (the same ONNX sessions, TTA and
 * threshold as `analyze` and the service), with a progress bar on stderr; `evaluate` and
 * `calibrate` both report on what the service would decide.
 */
export async function scoreItems(
  items: readonly EvalItem[],
  engine: Omit<ScorerOptions, 'onWarning'>,
  label: { task: string; verb: string; what: string },
  /** called once the models are loaded, before any image is scored: a throw refuses the run then */
  before?: (scorer: ImageScorer) => void,
): Promise<EvaluationResult> {
  const scorer = await onnxScorer({ ...engine, onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
  try {
    before?.(scorer);
  } catch (e) {
    await scorer.dispose();
    throw e;
  }
  const m = scorer.models;
  process.stderr.write(
    `${label.verb} ${items.length} ${label.what} with segmenter ${m.segmenter.version} and classifier ${m.classifier.version} (${scorer.description})\n`,
  );
  const bar = new ProgressBar(process.stderr, label.task, items.length);
  let result: EvaluationResult;
  try {
    result = await evaluateItems(items, scorer, () => bar.tick(1));
  } finally {
    await scorer.dispose();
  }
  bar.finish();
  return result;
}

/** `n` items spread evenly over the list (deterministic: the same images every run, not the first n of a sorted folder). */
export function evenlySpread<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor(((i + 0.5) * items.length) / n)]);
}
