import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { csvLine } from '../../data/csv.js';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { CxrError } from '../../errors.js';
import { fewPositivesWarning } from '../calibrate.js';
import { perImageCsv, writeCurvePlots } from '../evaluation-files.js';
import {
  EVALUATIONS_DIR,
  readManifest,
  THRESHOLD_NOTES,
  versionFromDate,
  writeManifest,
  writeVersion,
  type MetricValues,
  type ModelManifest,
  type ModelName,
  type ThresholdInfo,
  type TrainingInfo,
} from '../model-store/index.js';
import { calibrateThreshold, classificationReport, mean } from '../metrics.js';
import { loadModel, saveModel } from '../model-io.js';
import { architectureName, architectureOptions, balancedClassWeights } from './config.js';
import { lossFor, type TrainResult } from './loop.js';
import { predictSource, type SourcePredictions } from './predict.js';
import type { BatchSource, TrainData } from './types.js';

export interface FinalizeOptions {
  result: TrainResult;
  data: TrainData;
  /** the model's folder (e.g. models/classifier): the version goes to <outDir>/<version>/ */
  outDir: string;
  name?: ModelName;
  version?: string;
  training: Omit<TrainingInfo, 'config' | 'epochs' | 'bestEpoch'>;
  now?: Date;
  /**
   * Further steps on the version while it is still in its staging folder (copy the split,
   * export model.onnx, re-calibrate on the served pipeline); a failure there publishes nothing.
   */
  build?: (dir: string) => Promise<void>;
}

export interface FinalizedVersion {
  dir: string;
  manifest: ModelManifest;
}

function segmentationMetrics(p: SourcePredictions): MetricValues {
  return { dice: mean(p.dice), iou: mean(p.iou), loss: p.loss, n: p.n };
}

function classificationMetrics(p: SourcePredictions, threshold: number): MetricValues {
  const r = classificationReport(p.scores, p.labels, threshold);
  return { ...r, confusion: { ...r.confusion }, loss: p.loss };
}

/** The predictions of one set of a pool (rows where groups[k] === name); the loss is not split. */
function ofSet(p: SourcePredictions, groups: readonly string[], name: string): SourcePredictions {
  const idx = groups.flatMap((g, k) => (g === name ? [k] : []));
  return {
    ...p,
    ids: idx.map((k) => p.ids[k]),
    scores: Float32Array.from(idx.map((k) => p.scores[k])),
    labels: Float32Array.from(idx.map((k) => p.labels[k])),
    n: idx.length,
    loss: NaN,
  };
}

/** Each set's validation and test figures at the pooled threshold, when the data is a pool. */
function perSetMetrics(data: TrainData, val: SourcePredictions, test: SourcePredictions | null, threshold: number): ModelManifest['metrics']['sets'] {
  const vg = data.validationGroups;
  const names = [...new Set(vg ?? [])].sort();
  if (!vg || names.length < 2) return undefined;
  const tg = data.testGroups;
  const out: NonNullable<ModelManifest['metrics']['sets']> = {};
  for (const name of names) {
    const { loss: _v, ...v } = classificationMetrics(ofSet(val, vg, name), threshold);
    const t = test && tg ? ofSet(test, tg, name) : null;
    const testMetrics = t && t.n > 0 ? classificationMetrics(t, threshold) : {};
    delete testMetrics.loss;
    out[name] = { validation: v, test: testMetrics };
  }
  return out;
}

/**
 * Turns a finished run into a model version: weights saved (float16 if configured), then
 * reloaded so that the threshold is calibrated on validation and the test split is scored
 * with exactly the weights that ship; manifest written last, hashing every file. All of it
 * happens in a staging folder that is renamed into <outDir>/<version> only when complete.
 */
export async function finalizeVersion(opts: FinalizeOptions): Promise<FinalizedVersion> {
  const now = opts.now ?? new Date();
  const version = opts.version ?? versionFromDate(now);
  if (existsSync(join(opts.outDir, version))) throw new CxrError('E_CONFLICT', `model version ${join(opts.outDir, version)} already exists`);
  const { dir, result } = await writeVersion(opts.outDir, version, async (stage) => {
    const written = await buildVersion(opts, stage, version, now);
    await opts.build?.(stage);
    return written;
  });
  await writeFile(
    join(opts.result.paths.dir, 'version.json'),
    `${JSON.stringify({ dir, name: result.name, version, bestEpoch: opts.result.state.bestEpoch, metrics: result.metrics, threshold: result.threshold }, null, 2)}\n`,
  );
  return { dir, manifest: await readManifest(dir) };
}

async function buildVersion(opts: FinalizeOptions, dir: string, version: string, now: Date): Promise<ModelManifest> {
  const { config, model: trained } = opts.result;
  const name: ModelName = opts.name ?? config.task;
  await saveModel(trained, dir, { float16: config.float16, metadata: { name, version, task: config.task } });

  const model: tf.LayersModel = await loadModel(dir);
  try {
    const classWeights = config.classWeights === 'balanced' ? balancedClassWeights(opts.data.trainLabels ?? []) : config.classWeights;
    const loss = lossFor(config, config.task === 'classifier' ? classWeights : null);
    const predict = (src: BatchSource) => predictSource(model, src, config.task, config.inputSize, config.batchSize, loss);
    const val = await predict(opts.data.validation);
    const test = opts.data.test && opts.data.test.size > 0 ? await predict(opts.data.test) : null;

    let threshold: ThresholdInfo | null = null;
    let metrics: ModelManifest['metrics'];
    if (config.task === 'classifier') {
      let cal;
      try {
        cal = calibrateThreshold(val.scores, val.labels, config.targetRecall);
      } catch (e) {
        throw new CxrError('E_BAD_DATASET', `cannot calibrate the threshold: ${(e as Error).message} in the validation split`);
      }
      const warning = fewPositivesWarning(cal.confusion.tp + cal.confusion.fn);
      threshold = {
        value: cal.threshold,
        targetRecall: cal.targetRecall,
        validationSensitivity: cal.sensitivity,
        validationSpecificity: cal.specificity,
        ...(warning ? { warnings: [warning] } : {}),
      };
      const sets = perSetMetrics(opts.data, val, test, cal.threshold);
      metrics = {
        validation: classificationMetrics(val, cal.threshold),
        test: test ? classificationMetrics(test, cal.threshold) : {},
        ...(sets ? { sets } : {}),
      };
    } else {
      metrics = { validation: segmentationMetrics(val), test: test ? segmentationMetrics(test) : {} };
    }
    await writeTrainingEvaluation(join(dir, EVALUATIONS_DIR, TRAINING_EVALUATION), {
      task: config.task,
      version,
      validation: val,
      test,
      threshold: threshold?.value ?? null,
      at: now,
    });
    return await writeManifest(dir, {
      name,
      version,
      architecture: architectureName(config.task),
      architectureConfig: architectureOptions(config),
      inputSize: config.inputSize,
      createdAt: now.toISOString(),
      training: {
        ...opts.training,
        config: { ...config },
        epochs: opts.result.state.epochsDone,
        ...(opts.result.state.bestEpoch != null ? { bestEpoch: opts.result.state.bestEpoch } : {}),
      },
      metrics,
      threshold,
      ...(config.task === 'classifier' ? { notes: THRESHOLD_NOTES } : {}),
    });
  } finally {
    model.dispose();
  }
}

/** evaluations/<this>/ of a trained version: how training scored its held-out images. */
export const TRAINING_EVALUATION = 'training';

/**
 * The plots and per-image results of the version as training scored it (tfjs, single view, the
 * weights that ship), written in the staging folder so they are there the moment the version
 * is: per-image.csv lists every validation and test image; the classifier's ROC, PR and
 * reliability plots are of the test split (validation when there is none) at the threshold
 * calibrated on validation. Under evaluations/, they are not part of the version's hashes.
 */
async function writeTrainingEvaluation(
  out: string,
  o: { task: 'segmenter' | 'classifier'; version: string; validation: SourcePredictions; test: SourcePredictions | null; threshold: number | null; at: Date },
): Promise<void> {
  await mkdir(out, { recursive: true });
  const sets = [['validation', o.validation] as const, ...(o.test && o.test.n > 0 ? [['test', o.test] as const] : [])];
  const plotted = sets[sets.length - 1];
  const summary: Record<string, unknown> = {
    version: o.version,
    scorer: 'tfjs, single view, the shipped weights (as training scored them; `cxr-triage evaluate` scores the served pipeline)',
    at: o.at.toISOString(),
  };
  if (o.task === 'classifier' && o.threshold !== null) {
    const threshold = o.threshold;
    const rows = sets.flatMap(([split, p]) => p.ids.map((id, k) => ({ id, split, label: p.labels[k], probability: p.scores[k] })));
    await writeFile(join(out, 'per-image.csv'), perImageCsv(rows, threshold));
    const [subset, p] = plotted;
    const labels = Array.from(p.labels);
    await writeCurvePlots(out, { scores: Array.from(p.scores), labels, threshold, version: o.version });
    summary.threshold = threshold;
    summary.plots = { subset, n: p.n, prevalence: labels.filter((l) => l >= 0.5).length / Math.max(1, p.n) };
  } else {
    const lines = [csvLine(['file', 'split', 'dice', 'iou'])];
    for (const [split, p] of sets) p.ids.forEach((id, k) => lines.push(csvLine([id, split, String(p.dice[k]), String(p.iou[k])])));
    await writeFile(join(out, 'per-image.csv'), `${lines.join('\n')}\n`);
  }
  summary.images = Object.fromEntries(sets.map(([split, p]) => [split, p.n]));
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
}
