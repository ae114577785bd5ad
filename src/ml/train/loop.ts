import { appendFile, mkdir, writeFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { CxrError } from '../../errors.js';
import { diceBceLoss, focalLoss, l2Penalty } from '../losses.js';
import { mean, rocAuc } from '../metrics.js';
import { loadModel, saveModel } from '../model-io.js';
import { dataParallelEngine } from '../parallel/data-parallel.js';
import { seedDropout, shareSeed, stepSeed } from '../layers/dropout-seed.js';
import { Adam } from './adam.js';
import { EventFileWriter } from './tfevents.js';
import { loadCheckpoint, runPaths, saveCheckpoint, type RunPaths, type TrainerState } from './checkpoint.js';
import { balancedClassWeights, buildModel, freezeBlocks, validateConfig, type TrainConfig } from './config.js';
import { predictSource, type LossFn } from './predict.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { cosineDecay } from './schedule.js';
import type { Batch, EpochRecord, TrainData } from './types.js';

/** Computes the mean loss and its gradients for one batch, gradients in `vars` order. */
export interface GradientEngine {
  gradients(batch: Batch): Promise<{ loss: number; grads: tf.Tensor[] }>;
  dispose?(): void;
}

export interface TrainOptions {
  config: TrainConfig;
  data: TrainData;
  /** the run folder (runs/<id>); created if missing */
  runDir: string;
  /** continue from runDir's checkpoint */
  resume?: boolean;
  /** progress and per-epoch lines (stderr in the CLI) */
  log?: ProgressStream;
  /** saved in config.json next to the training config (data folder, hash, split, backend) */
  runInfo?: Record<string, unknown>;
  /** replaces the single-thread gradient computation (e.g. data-parallel workers) */
  gradientEngine?: (model: tf.LayersModel, vars: readonly tf.Variable[], loss: LossFn, config: TrainConfig) => GradientEngine;
  /**
   * gradient worker threads besides this one (data-parallel, each on a share of every
   * batch); 0 or absent computes in this thread alone. Ignored when gradientEngine is given.
   */
  workers?: number;
  /**
   * a new run starts from these weights instead of a random initialisation (fine-tuning:
   * phantom pre-training, or a site retraining the shipped model on its own data); the
   * architecture must match the config's. Ignored on resume, where the checkpoint wins.
   */
  initFrom?: tf.LayersModel;
  /**
   * Stops the run at the next batch (E_INTERRUPTED); the last epoch's checkpoint stays, so
   * `resume` continues exactly where it was.
   */
  signal?: AbortSignal;
}

export interface TrainResult {
  /** the model with the best validation weights restored */
  model: tf.LayersModel;
  state: TrainerState;
  paths: RunPaths;
  config: TrainConfig;
}

export function lossFor(config: TrainConfig, classWeights: [number, number] | null): LossFn {
  if (config.task === 'segmenter') return diceBceLoss;
  return (y, p) => focalLoss(y, p, { alpha: config.focalAlpha, gamma: config.focalGamma, classWeights: classWeights ?? undefined });
}

/** The plain in-process gradient computation: one forward/backward pass per batch. */
export function localGradients(model: tf.LayersModel, vars: readonly tf.Variable[], loss: LossFn, config: TrainConfig): GradientEngine {
  const s = config.inputSize;
  return {
    async gradients(batch: Batch) {
      seedDropout(model, shareSeed(batch.seed, 0));
      const { value, grads } = tf.variableGrads(() => {
        const x = tf.tensor4d(batch.x, [batch.n, s, s, 1]);
        const y = config.task === 'classifier' ? tf.tensor2d(batch.y, [batch.n, 1]) : tf.tensor4d(batch.y, [batch.n, s, s, 1]);
        const p = model.apply(x, { training: true }) as tf.Tensor;
        return loss(y, p);
      }, vars as tf.Variable[]);
      const lossValue = (await value.data())[0];
      value.dispose();
      return { loss: lossValue, grads: vars.map((v) => grads[v.name]) };
    },
  };
}

/** Copies every weight of `from` into `to`, refusing when the two architectures differ. */
export function copyWeights(from: tf.LayersModel, to: tf.LayersModel): void {
  const src = from.weights;
  const dst = to.weights;
  const same = src.length === dst.length && src.every((w, i) => w.shape.join('x') === dst[i].shape.join('x'));
  if (!same) {
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `the initial model does not match the configured architecture (${src.length} weights vs ${dst.length}, or different shapes): give the same --size and architecture options it was trained with`,
    );
  }
  to.setWeights(src.map((w) => w.read()));
}

/** AUC per validation source, or null when there are fewer than two sources. */
export function aucBySource(scores: Float32Array, labels: Float32Array, groups: readonly string[] | undefined): Record<string, number | null> | null {
  if (!groups || new Set(groups).size < 2) return null;
  if (groups.length !== scores.length) throw new CxrError('E_BAD_ARGUMENT', `${groups.length} validation groups for ${scores.length} scores`);
  const out: Record<string, number | null> = {};
  for (const g of [...new Set(groups)].sort()) {
    const idx = groups.flatMap((x, k) => (x === g ? [k] : []));
    out[g] = rocAuc(Float32Array.from(idx.map((k) => scores[k])), Float32Array.from(idx.map((k) => labels[k])));
  }
  return out;
}

function meanOfDefined(values: (number | null)[]): number | null {
  const v = values.filter((x): x is number => x != null);
  return v.length > 0 ? v.reduce((s, x) => s + x, 0) / v.length : null;
}

function stepsPerEpoch(config: TrainConfig, trainSize: number): number {
  return Math.ceil(Math.ceil(trainSize / config.batchSize) / config.accumulate);
}

function isBetter(candidate: number, best: number | null): boolean {
  return best == null || candidate > best;
}

/**
 * The training loop: Adam with cosine decay and coupled L2 on kernels, gradient accumulation,
 * a checkpoint after every epoch (resumable), best weights kept by the validation metric
 * (AUC for the classifier, Dice for the segmenter) with early stopping, and one
 * metrics.jsonl line per epoch.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const paths = runPaths(opts.runDir);
  const log: ProgressStream = opts.log ?? { write: () => true };
  let config = validateConfig(opts.config);
  let model: tf.LayersModel;
  let state: TrainerState;
  await mkdir(paths.dir, { recursive: true });

  let adamState = null;
  if (opts.resume) {
    if (!existsSync(paths.config)) throw new CxrError('E_NOT_FOUND', `no run to resume in ${paths.dir} (config.json missing)`);
    const saved = JSON.parse(await readFile(paths.config, 'utf8')) as { config: TrainConfig } & Record<string, unknown>;
    // the saved config wins, except that a resumed run may be given more (or fewer) epochs
    config = validateConfig({ ...saved.config, epochs: opts.config.epochs });
    const ck = await loadCheckpoint(paths);
    model = ck.model;
    state = ck.state;
    adamState = ck.adam;
    if (state.stopped && config.epochs > saved.config.epochs) {
      // more epochs were asked for than the run had when it stopped early: give it another chance
      state.stopped = false;
      state.staleEpochs = 0;
    }
    if (config.epochs !== saved.config.epochs) {
      await writeFile(paths.config, `${JSON.stringify({ ...saved, config }, null, 2)}\n`);
    }
    log.write(`resuming ${paths.dir} after epoch ${state.epochsDone}\n`);
  } else {
    if (existsSync(paths.metrics)) throw new CxrError('E_BAD_ARGUMENT', `run folder ${paths.dir} already holds a run; use --resume or another --run-id`);
    model = buildModel(config);
    if (opts.initFrom) copyWeights(opts.initFrom, model);
    state = { epochsDone: 0, step: 0, bestMetric: null, bestEpoch: null, staleEpochs: 0, stopped: false, history: [] };
    await writeFile(paths.config, `${JSON.stringify({ config, ...opts.runInfo }, null, 2)}\n`);
  }

  const classWeights =
    config.task === 'classifier' ? (config.classWeights === 'balanced' ? balancedClassWeights(opts.data.trainLabels ?? []) : config.classWeights) : null;
  const loss = lossFor(config, classWeights);
  if (config.freezeBlocks) log.write(`${freezeBlocks(model, config.freezeBlocks)} layers of the stem and blocks 1-${config.freezeBlocks} frozen\n`);
  const layerVars = model.trainableWeights;
  const vars = layerVars.map((w) => w.read() as tf.Variable);
  const kernels = vars.filter((_, i) => layerVars[i].originalName.endsWith('/kernel'));
  const adam = new Adam(
    layerVars.map((w, i) => ({ name: w.originalName, variable: vars[i] })),
    { l2: config.l2 },
  );
  if (adamState) adam.setState(adamState);
  const workers = opts.workers ?? 0;
  const engineFactory =
    opts.gradientEngine ??
    (workers > 0
      ? // the workers rebuild this same loss from its name: functions cannot cross threads
        dataParallelEngine({ module: fileURLToPath(import.meta.url), name: 'lossFor', args: [config, classWeights] }, workers)
      : localGradients);
  const engine = engineFactory(model, vars, loss, config);
  const trainSize = opts.data.train.size;
  if (trainSize === 0) throw new CxrError('E_BAD_DATASET', 'the train split is empty');
  if (opts.data.validation.size === 0) throw new CxrError('E_BAD_DATASET', 'the validation split is empty');
  const totalSteps = stepsPerEpoch(config, trainSize) * config.epochs;
  // TensorBoard reads the run folder (`tensorboard --logdir <runs>`): per-step and per-epoch scalars
  const events = new EventFileWriter(paths.dir);

  try {
    for (let epoch = state.epochsDone; epoch < config.epochs && !state.stopped; epoch++) {
      const t0 = Date.now();
      const bar = new ProgressBar(log, `epoch ${epoch + 1}/${config.epochs}`, trainSize);
      let acc: tf.Tensor[] | null = null;
      let accImages = 0;
      let accBatches = 0;
      let accLoss = 0;
      let lossSum = 0;
      let images = 0;
      let lr = cosineDecay(state.step, totalSteps, config.lr, config.lrMinFactor);
      const applyAccumulated = (): void => {
        if (!acc) return;
        lr = cosineDecay(state.step, totalSteps, config.lr, config.lrMinFactor);
        const avg = tf.tidy(() => acc!.map((g) => tf.div(g, accImages)));
        adam.apply(avg, lr);
        tf.dispose([...avg, ...acc]);
        state.step++;
        events.scalars({ 'train/loss': accLoss / accImages, 'train/lr': lr }, state.step);
        acc = null;
        accImages = 0;
        accBatches = 0;
        accLoss = 0;
      };
      let batchIndex = 0;
      for await (const batch of opts.data.train.batches(epoch, config.batchSize)) {
        if (opts.signal?.aborted)
          throw new CxrError('E_INTERRUPTED', `interrupted in epoch ${epoch + 1}; the checkpoint after epoch ${state.epochsDone} is kept`);
        // every random draw of the pass follows from (seed, epoch, batch): same seed, same run; resume, same stream
        const { loss: l, grads } = await engine.gradients({ ...batch, seed: stepSeed(config.seed, epoch, batchIndex++) });
        if (!Number.isFinite(l)) {
          tf.dispose(grads);
          throw new CxrError('E_TRAINING_DIVERGED', `loss is ${l} at epoch ${epoch + 1}, step ${state.step}; lower --lr`);
        }
        const prev: tf.Tensor[] | null = acc;
        acc = tf.tidy(() => grads.map((g, i) => (prev ? tf.add(prev[i], tf.mul(g, batch.n)) : tf.mul(g, batch.n))));
        tf.dispose(grads);
        if (prev) tf.dispose(prev);
        accImages += batch.n;
        accLoss += l * batch.n;
        accBatches++;
        lossSum += l * batch.n;
        images += batch.n;
        if (accBatches === config.accumulate) applyAccumulated();
        bar.tick(batch.n, `loss ${(lossSum / images).toFixed(4)}`);
      }
      applyAccumulated();
      const trainSeconds = (Date.now() - t0) / 1000;
      bar.finish(`loss ${(lossSum / Math.max(images, 1)).toFixed(4)}`);

      const val = await predictSource(model, opts.data.validation, config.task, config.inputSize, config.batchSize, loss);
      const metricName = config.task === 'classifier' ? 'auc' : 'dice';
      const bySource = config.task === 'classifier' ? aucBySource(val.scores, val.labels, opts.data.validationGroups) : null;
      const valMetric = config.task === 'classifier' ? (bySource ? meanOfDefined(Object.values(bySource)) : rocAuc(val.scores, val.labels)) : mean(val.dice);
      // with a one-class validation split AUC is undefined; fall back to the loss to pick the best epoch
      const score = valMetric ?? -val.loss;
      const best = isBetter(score, state.bestMetric);
      if (best) {
        state.bestMetric = score;
        state.bestEpoch = epoch + 1;
        state.staleEpochs = 0;
        await saveModel(model, paths.best);
      } else {
        state.staleEpochs++;
      }
      const penalty = l2Penalty(kernels, config.l2);
      const l2Value = (await penalty.data())[0];
      penalty.dispose();
      const mem = tf.memory();
      const record: EpochRecord = {
        epoch: epoch + 1,
        step: state.step,
        lr,
        trainLoss: lossSum / Math.max(images, 1),
        l2Penalty: l2Value,
        valLoss: val.loss,
        valMetric,
        valMetricName: metricName,
        ...(config.task === 'segmenter' ? { valIou: mean(val.iou) } : {}),
        ...(bySource ? { valBySource: bySource } : {}),
        best,
        trainImages: images,
        seconds: (Date.now() - t0) / 1000,
        imagesPerSecond: images / Math.max(trainSeconds, 1e-9),
        tensors: mem.numTensors,
        bytes: mem.numBytes,
        time: new Date().toISOString(),
      };
      state.history.push(record);
      state.epochsDone = epoch + 1;
      if (config.patience > 0 && state.staleEpochs >= config.patience) state.stopped = true;
      await appendFile(paths.metrics, `${JSON.stringify(record)}\n`);
      events.scalars(
        {
          'epoch/train_loss': record.trainLoss,
          'epoch/val_loss': record.valLoss,
          [`epoch/val_${metricName}`]: valMetric,
          ...(record.valIou != null ? { 'epoch/val_iou': record.valIou } : {}),
          'epoch/l2_penalty': record.l2Penalty,
          'epoch/images_per_second': record.imagesPerSecond,
          'epoch/epoch': record.epoch,
        },
        state.step,
      );
      await saveCheckpoint(paths, model, await adam.getState(), state);
      log.write(
        `epoch ${epoch + 1}: train loss ${record.trainLoss.toFixed(4)}, val loss ${val.loss.toFixed(4)}, val ${metricName} ${valMetric == null ? 'n/a' : valMetric.toFixed(4)}${
          bySource
            ? ` (${Object.entries(bySource)
                .map(([k, v]) => `${k} ${v == null ? 'n/a' : v.toFixed(4)}`)
                .join(', ')})`
            : ''
        }${best ? ' (best)' : ''}${state.stopped ? `; stopping: no improvement in ${config.patience} epochs` : ''}\n`,
      );
    }
  } finally {
    engine.dispose?.();
    adam.dispose();
  }

  if (existsSync(paths.best)) {
    model.dispose();
    model = await loadModel(paths.best);
  }
  return { model, state, paths, config };
}
