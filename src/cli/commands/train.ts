import type { Command } from 'commander';
import type { LayersModel } from '@tensorflow/tfjs';
import { existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import { copyFile, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { csvLine } from '../../data/csv.js';
import type { RowProblem } from '../../data/dataset.js';
import { splitOverlap } from '../../data/leakage.js';
import { readSplit, readSplitFile } from '../../data/split.js';
import { formatProblems, validateDataset } from '../../data/validate.js';
import { parseWindowPolicy } from '../../dicom/index.js';
import { ProgressBar } from '../../ml/train/progress.js';
import { basename, join, resolve } from 'node:path';
import { CxrError } from '../../errors.js';
import { initBackend } from '../../ml/backend.js';
import { defaultConfig, type TrainConfig } from '../../ml/train/config.js';
import { prepareTrainData, type DataOptions } from '../../ml/train/dataset-source.js';
import { finalizeVersion } from '../../ml/train/finalize.js';
import { train } from '../../ml/train/loop.js';
import { loadModel } from '../../ml/model-io.js';
import {
  portablePath,
  readManifest,
  refreshFileHashes,
  runEnvironment,
  versionFromDate,
  type InitFrom,
  type TrainingInfo,
} from '../../ml/model-store/index.js';
import { exportModelVersion } from '../../ml/onnx/model-version.js';
import { DEFAULT_TTA } from '../../inference/engine.js';
import { recalibrate } from '../recalibrate.js';
import { applyConfig, loadTrainConfig } from '../train-config.js';
import type { Task } from '../../ml/train/types.js';
import { action, collect, invocation, parseInteger, parseNumber } from '../run.js';
import { parseDatasetSpec } from '../../data/multi-dataset.js';

interface TrainCliOptions {
  data: string[];
  out: string;
  runs?: string;
  runId?: string;
  resume?: string | boolean;
  epochs?: string;
  batch?: string;
  accumulate?: string;
  lr?: string;
  lrMin?: string;
  l2?: string;
  seed?: string;
  patience?: string;
  maxImages?: string;
  size?: string;
  targetRecall?: string;
  focalAlpha?: string;
  focalGamma?: string;
  classWeights?: string;
  segmenter?: string;
  split?: string;
  augment: boolean;
  window?: string;
  version?: string;
  float32?: boolean;
  base?: string;
  depth?: string;
  blocks?: string;
  growth?: string;
  dropout?: string;
  workers?: string;
  init?: string;
  onnx?: boolean;
  calibrateViews?: string;
  epochImages?: string;
  freezeBlocks?: string;
  sourceWeights?: string;
  skipBad?: boolean;
  splitFile?: string;
  validate?: boolean;
  config?: string;
}

/** `nih=1,kermany=2` -> { nih: 1, kermany: 2 } */
export function parseSourceWeights(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of v.split(',')) {
    const m = /^([^=]*)=(.+)$/.exec(part.trim());
    const w = m ? Number(m[2]) : NaN;
    if (!m || !(w >= 0) || !Number.isFinite(w)) throw new CxrError('E_BAD_ARGUMENT', `--source-weights must be SOURCE=WEIGHT,..., got '${v}'`);
    out[m[1]] = w;
  }
  return out;
}

/** Per-thread share of a batch when gradient workers split it: what fits each 4 GiB wasm heap. */
const SHARE_PER_THREAD = 4;

/** Gradient worker threads besides the main one: one per further core unless told. */
export function workerCount(o: Pick<TrainCliOptions, 'workers'>): number {
  if (o.workers != null) return parseInteger('--workers', o.workers, 0);
  return Math.max(0, os.availableParallelism() - 1);
}

function parseFraction(name: string, v: string): number {
  const n = parseNumber(name, v);
  if (!(n > 0 && n <= 1)) throw new CxrError('E_BAD_ARGUMENT', `${name} must be in (0,1], got '${v}'`);
  return n;
}

function parseSplit(v: string): [number, number, number] {
  const parts = v.split(/[/,:]/).map((p) => parseNumber('--split', p));
  const sum = parts.reduce((s, p) => s + p, 0);
  if (parts.length !== 3 || parts.some((p) => !(p >= 0)) || !(sum > 0) || parts[0] === 0 || parts[1] === 0) {
    throw new CxrError('E_BAD_ARGUMENT', `--split must be TRAIN/VALIDATION/TEST with train and validation > 0, got '${v}'`);
  }
  return [parts[0] / sum, parts[1] / sum, parts[2] / sum];
}

function parseClassWeights(v: string): TrainConfig['classWeights'] {
  if (v === 'balanced') return 'balanced';
  if (v === 'none') return null;
  const w = v.split(',').map((p) => parseNumber('--class-weights', p));
  if (w.length !== 2 || w.some((x) => !(x > 0))) throw new CxrError('E_BAD_ARGUMENT', `--class-weights must be 'balanced', 'none' or NEG,POS, got '${v}'`);
  return [w[0], w[1]];
}

/** Training options from the command line, over the task's defaults. */
export function configFromOptions(task: Task, o: TrainCliOptions, workers = 0): TrainConfig {
  const c = defaultConfig(task);
  if (workers > 0 && !o.batch && !o.accumulate) {
    // with threads splitting every batch, the per-thread share keeps the single-thread memory
    // bound while the effective batch stays at least the single-thread default
    const effective = c.batchSize * c.accumulate;
    c.batchSize = SHARE_PER_THREAD * (workers + 1);
    c.accumulate = Math.max(1, Math.ceil(effective / c.batchSize));
  }
  if (o.size) c.inputSize = parseInteger('--size', o.size, 8);
  if (o.epochs) c.epochs = parseInteger('--epochs', o.epochs, 1);
  if (o.batch) c.batchSize = parseInteger('--batch', o.batch, 1);
  if (o.accumulate) c.accumulate = parseInteger('--accumulate', o.accumulate, 1);
  if (o.lr) c.lr = parseNumber('--lr', o.lr);
  if (o.lrMin) c.lrMinFactor = parseNumber('--lr-min', o.lrMin);
  if (o.l2) c.l2 = parseNumber('--l2', o.l2);
  if (o.seed) c.seed = parseInteger('--seed', o.seed, 0);
  if (o.patience) c.patience = parseInteger('--patience', o.patience, 0);
  if (o.targetRecall) c.targetRecall = parseFraction('--target-recall', o.targetRecall);
  if (o.focalAlpha) c.focalAlpha = parseNumber('--focal-alpha', o.focalAlpha);
  if (o.focalGamma) c.focalGamma = parseNumber('--focal-gamma', o.focalGamma);
  if (o.classWeights) c.classWeights = parseClassWeights(o.classWeights);
  if (o.float32) c.float16 = false;
  if (o.freezeBlocks) c.freezeBlocks = parseInteger('--freeze-blocks', o.freezeBlocks, 0);
  if (task === 'segmenter') {
    c.architecture = {
      ...(o.base ? { base: parseInteger('--base', o.base, 1) } : {}),
      ...(o.depth ? { depth: parseInteger('--depth', o.depth, 1) } : {}),
    };
  } else {
    c.architecture = {
      ...(o.blocks ? { blocks: o.blocks.split(',').map((b) => parseInteger('--blocks', b, 1)) } : {}),
      ...(o.growth ? { growth: parseInteger('--growth', o.growth, 1) } : {}),
      ...(o.dropout ? { dropout: parseNumber('--dropout', o.dropout) } : {}),
    };
  }
  return c;
}

function newRunId(task: Task): string {
  const iso = new Date().toISOString();
  return `${task}-${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
}

/** The most recently modified run folder with a checkpoint. */
async function latestRun(runsDir: string): Promise<string> {
  if (!existsSync(runsDir)) throw new CxrError('E_NOT_FOUND', `no runs in ${runsDir} to resume`);
  let best: { dir: string; mtime: number } | null = null;
  for (const e of await readdir(runsDir, { withFileTypes: true })) {
    const dir = join(runsDir, e.name);
    const state = join(dir, 'checkpoint', 'state.json');
    if (!e.isDirectory() || !existsSync(state)) continue;
    const mtime = (await stat(state)).mtimeMs;
    if (!best || mtime > best.mtime) best = { dir, mtime };
  }
  if (!best) throw new CxrError('E_NOT_FOUND', `no run with a checkpoint in ${runsDir} to resume`);
  return best.dir;
}

export function register(program: Command): void {
  program
    .command('train')
    .description(
      'train the lung segmenter (U-Net) or the pneumonia classifier (DenseNet121-SE) on a dataset folder; ' +
        'writes a model version <out>/<version>/ with manifest.json, and the run (config, metrics.jsonl, checkpoints) to <out>/runs/<id>/',
    )
    .argument('<model>', 'segmenter | classifier')
    .option(
      '--data <dir[:weight]>',
      'dataset folder: images/, labels.csv, optional masks/ (required unless --resume); repeat it to train on a pool of sets, ' +
        'each split by patient on its own and drawn in proportion to its weight (default 1), e.g. --data nih:1 --data kermany:1',
      collect,
      [],
    )
    .option('--out <dir>', 'where the model version goes, e.g. models/classifier (required, here or in --config)')
    .option(
      '--config <file>',
      'options from a YAML or JSON file, keys as the flags (epochs: 3, target-recall: 0.9); flags given here win; copied into the run folder',
    )
    .option('--runs <dir>', 'where runs go (default <out>/runs)')
    .option('--run-id <id>', 'name of the run folder (default <model>-<date>-<time>)')
    .option('--resume [id]', 'continue a run from its last checkpoint (default: the latest run)')
    .option('--epochs <n>', 'epochs (segmenter 20, classifier 30); with --resume, the new total')
    .option(
      '--batch <n>',
      'images per forward/backward pass (one thread: segmenter 4, classifier 2, what fits the 4 GiB wasm heap; with workers: 4 per thread)',
    )
    .option('--accumulate <n>', 'passes averaged into one optimizer step (one thread: segmenter 2, classifier 4; with workers: 1)')
    .option('--workers <n>', 'gradient worker threads besides the main one, each on a share of every batch (default: cores - 1; 0 = one thread)')
    .option('--init <dir>', "start from this model version's weights (fine-tuning; same architecture), e.g. a classifier pre-trained on phantoms")
    .option('--lr <x>', 'initial Adam learning rate (segmenter 1e-3, classifier 3e-4), cosine-decayed')
    .option('--lr-min <f>', 'final learning rate as a fraction of the initial one (default 0.01)')
    .option('--l2 <x>', 'L2 on kernels (default 1e-3)')
    .option('--seed <n>', 'seed for weights, split, order and augmentation (default 1)')
    .option(
      '--patience <n>',
      'stop after this many epochs without a better validation metric: AUC (classifier, default 8) or Dice (segmenter, default 5); 0 = never',
    )
    .option('--max-images <n>', 'use at most this many images of the dataset (a quick run)')
    .option('--size <px>', 'network input side (segmenter 256, classifier 224)')
    .option('--split <a/b/c>', 'train/validation/test fractions by patient (default 70/10/20)')
    .option('--split-file <csv>', "reuse a split (file,patient_id,label,split), e.g. a version's split.csv, instead of drawing one")
    .option('--target-recall <r>', 'classifier: recall the threshold is calibrated for on validation (default 0.95)')
    .option('--focal-alpha <a>', 'classifier: focal loss alpha (default 0.25)')
    .option('--focal-gamma <g>', 'classifier: focal loss gamma (default 2)')
    .option('--class-weights <w>', "classifier: 'balanced', 'none' or NEG,POS (default none)")
    .option('--segmenter <dir>', 'classifier: segmenter version folder whose masks give the lung crops when the dataset has no masks/')
    .option('--window <policy>', 'DICOM window policy: auto|lung|header|minmax (default auto)')
    .option('--no-augment', 'train without augmentation')
    .option('--epoch-images <n>', 'train images drawn per epoch, weighted by --source-weights (default: one pass over the train split)')
    .option('--source-weights <list>', "share of each labels.csv 'source' in a drawn epoch, e.g. nih=1,kermany=2 (default: 1 each)")
    .option('--skip-bad', 'train without the rows the dataset check finds unusable (listed, and saved as skipped.csv in the run folder) instead of stopping')
    .option('--no-validate', 'skip decoding every image before training (the check `cxr-triage validate-dataset` runs)')
    .option('--version <name>', 'version folder name (default v<date>-<time>)')
    .option('--float32', 'store the version weights as float32 (default float16)')
    .option('--no-onnx', 'skip exporting model.onnx (and the served-pipeline calibration) at the end')
    .option(
      '--calibrate-views <n>',
      `classifier with --segmenter: TTA views of the served-pipeline threshold calibration on validation (default ${DEFAULT_TTA}; 0 keeps the single-view threshold)`,
    )
    .option('--base <n>', 'segmenter: filters at the first level (default 16)')
    .option('--depth <n>', 'segmenter: down levels (default 4)')
    .option('--blocks <list>', 'classifier: dense layers per block (default 6,12,24,16)')
    .option('--growth <n>', 'classifier: growth rate (default 32)')
    .option('--dropout <p>', 'classifier: dropout before the head (default 0.5)')
    .option('--freeze-blocks <n>', 'classifier fine-tuning: keep the stem and the first N dense blocks as --init gave them (cheaper steps; default 0)')
    .addHelpText(
      'after',
      `
Environment:
  CXR_BACKEND=tensorflow|wasm|cpu   force a tfjs backend (default: the first that loads)
  CXR_NATIVE_KERNELS=0              keep convolutions on tfjs-wasm instead of onnxruntime's native kernels
  CXR_ORT_THREADS, CXR_WASM_THREADS threads of those kernels (default: all cores / 1)
  CXR_SHARED_DIR                    the 'shared' data root manifests record paths against (default ../shared)
  CXR_DATA_ROOTS=name=/path,...     more named data roots (a site's image store), so manifests never hold absolute paths

Ctrl-C stops a run (exit 130) and prints the --resume command; checkpoints are written after every epoch.`,
    )
    .action(
      action(async (model: string, cliOptions: TrainCliOptions, cmd: Command) => {
        const fileConfig = cliOptions.config ? await loadTrainConfig(cliOptions.config, cmd) : null;
        const o = fileConfig ? applyConfig(cliOptions, fileConfig, cmd) : cliOptions;
        if (!o.out) throw new CxrError('E_BAD_ARGUMENT', '--out is required (the model folder the version goes to, e.g. models/classifier)');
        if (model !== 'segmenter' && model !== 'classifier') {
          throw new CxrError('E_BAD_ARGUMENT', `model must be 'segmenter' or 'classifier', got '${model}'`);
        }
        const task: Task = model;
        const out = resolve(o.out);
        const runsDir = resolve(o.runs ?? join(out, 'runs'));
        const workers = workerCount(o);
        const version = o.version ?? versionFromDate(new Date());
        // refused now, not after hours of training
        if (existsSync(join(out, version))) throw new CxrError('E_CONFLICT', `model version ${join(out, version)} already exists: give another --version`);
        const backend = await initBackend();

        let runDir: string;
        let config: TrainConfig;
        let dataOptions: DataOptions;
        if (o.resume) {
          runDir = typeof o.resume === 'string' ? (existsSync(o.resume) ? resolve(o.resume) : join(runsDir, o.resume)) : await latestRun(runsDir);
          const saved = JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8')) as { config: TrainConfig; data: DataOptions };
          if (saved.config.task !== task) throw new CxrError('E_BAD_ARGUMENT', `${runDir} is a ${saved.config.task} run, not ${task}`);
          config = { ...saved.config, ...(o.epochs ? { epochs: parseInteger('--epochs', o.epochs, 1) } : {}) };
          dataOptions = saved.data;
        } else {
          // --config gives one folder as a string (flags give a list)
          const dataArgs: string[] = Array.isArray(o.data) ? o.data : o.data ? [String(o.data)] : [];
          if (dataArgs.length === 0) throw new CxrError('E_BAD_ARGUMENT', '--data is required (unless --resume)');
          const specs = dataArgs.map(parseDatasetSpec).map((s) => ({ ...s, dir: resolve(s.dir) }));
          runDir = join(runsDir, o.runId ?? newRunId(task));
          config = configFromOptions(task, o, workers);
          dataOptions = {
            dataDir: specs[0].dir,
            ...(specs.length > 1 ? { datasets: specs } : {}),
            maxImages: o.maxImages ? parseInteger('--max-images', o.maxImages, 1) : undefined,
            split: o.split ? parseSplit(o.split) : undefined,
            splitFile: o.splitFile ? resolve(o.splitFile) : undefined,
            segmenterDir: o.segmenter ? resolve(o.segmenter) : undefined,
            window: o.window,
            augment: o.augment,
            ...(o.epochImages ? { epochImages: parseInteger('--epoch-images', o.epochImages, 1) } : {}),
            ...(o.sourceWeights ? { sourceWeights: parseSourceWeights(o.sourceWeights) } : {}),
          };
        }

        // before the data check, which decodes every image: the refusal needs none of them
        if (o.init && !o.resume) await refuseIntensityMatched(o.init);
        // every image is decoded before anything is written: a corrupt file stops the run now, not after an epoch
        const skipped = o.resume || o.validate === false ? [] : await checkDataset(task, dataOptions, o);
        if (skipped.length > 0) dataOptions = { ...dataOptions, exclude: skipped.map((p) => p.file) };
        process.stderr.write(`${o.resume ? 'resuming' : 'training'} ${task} in ${runDir}\n`);
        // a run that fails before its first checkpoint leaves no folder behind
        const fresh = !o.resume && !existsSync(runDir);
        // Ctrl-C: checkpoints are written atomically, so stopping now loses at most the running
        // epoch; say how to continue instead of exiting silently
        const onSigint = () => {
          if (hasCheckpoint(runDir)) {
            process.stderr.write(
              `\ninterrupted: ${runDir} keeps its checkpoint after the last finished epoch. Resume with:\n` +
                `  cxr-triage train ${task} --out ${out} --runs ${runsDir} --resume ${basename(runDir)}\n`,
            );
          } else {
            if (fresh) rmSync(runDir, { recursive: true, force: true });
            process.stderr.write('\ninterrupted before the first epoch finished: nothing to resume (the run folder was removed)\n');
          }
          process.exit(130);
        };
        process.once('SIGINT', onSigint);
        try {
          await runTraining();
        } catch (e) {
          if (fresh && !hasCheckpoint(runDir)) await rm(runDir, { recursive: true, force: true });
          throw e;
        } finally {
          process.off('SIGINT', onSigint);
        }

        async function runTraining(): Promise<void> {
          const prepared = await prepareTrainData(task, config, dataOptions, runDir, process.stderr);
          if (fileConfig) await writeFile(join(runDir, 'train-config.yaml'), fileConfig.text);
          if (skipped.length > 0) {
            await writeFile(
              join(runDir, 'skipped.csv'),
              `${[csvLine(['line', 'file', 'problem']), ...skipped.map((p) => csvLine([String(p.line), p.file, p.message]))].join('\n')}\n`,
            );
          }
          if (o.init && o.resume) process.stderr.write('--init is ignored with --resume: the run continues from its checkpoint\n');
          const initFrom = o.init && !o.resume ? await loadInitModel(o.init) : undefined;
          if (initFrom) process.stderr.write(`starting from the weights of ${resolve(o.init!)}\n`);
          // a resumed run keeps the provenance its start recorded
          const initRecord = o.resume ? await savedInitFrom(runDir) : o.init ? await describeInit(o.init, runDir) : undefined;
          process.stderr.write(
            `batch ${config.batchSize} x ${config.accumulate} accumulated; ${workers > 0 ? `${workers + 1} threads (${workers} gradient worker${workers > 1 ? 's' : ''})` : 'one thread'}\n`,
          );
          const result = await train({
            workers,
            initFrom,
            config,
            data: prepared.data,
            runDir,
            resume: Boolean(o.resume),
            log: process.stderr,
            runInfo: {
              data: dataOptions,
              dataHash: prepared.info.dataHash,
              dataSize: prepared.info.dataSize,
              split: prepared.info.split,
              backend,
              workers,
              ...(initRecord ? { initFrom: initRecord } : {}),
            },
          });
          initFrom?.dispose();
          const { dataDir, ...info } = prepared.info;
          const training: Omit<TrainingInfo, 'config' | 'epochs' | 'bestEpoch'> = {
            ...info,
            data: portablePath(dataDir),
            backend,
            runId: runDir.split(/[\\/]/).pop(),
            workers,
            ...(initRecord ? { initFrom: initRecord } : {}),
            ...(skipped.length > 0 ? { skippedRows: skipped.length } : {}),
            environment: runEnvironment(invocation(cmd)),
          };
          const finalized = await finalizeVersion({
            result,
            data: prepared.data,
            outDir: out,
            version,
            training,
            // in the staging folder: a failure here publishes no version
            build: async (stage) => {
              // the split travels with the version, so `calibrate` and a reader can find its images
              if (existsSync(join(runDir, 'split.csv'))) await copyFile(join(runDir, 'split.csv'), join(stage, 'split.csv'));
              if (o.onnx !== false) {
                // the export re-hashes the folder, split.csv included
                await exportModelVersion(stage, (line) => process.stderr.write(`${line}\n`));
                if (task === 'classifier') await servedCalibration(stage, config, dataOptions, o);
              } else {
                await refreshFileHashes(stage);
              }
            },
          });
          result.model.dispose();
          const dir = finalized.dir;
          const manifest = await readManifest(dir);
          const m = manifest.metrics.test;
          const summary =
            task === 'classifier'
              ? `threshold ${fmt(manifest.threshold?.value)} (validation sensitivity ${fmt(manifest.threshold?.validationSensitivity)}, specificity ${fmt(manifest.threshold?.validationSpecificity)}); ` +
                `test split, single view at the training threshold ${fmt(m.threshold)}: AUC ${fmt(m.auc)}, recall ${fmt(m.recall)}, specificity ${fmt(m.specificity)} ` +
                '(`cxr-triage evaluate` scores it the served way)'
              : `test Dice ${fmt(m.dice)}, IoU ${fmt(m.iou)}`;
          process.stderr.write(`best epoch ${result.state.bestEpoch} of ${result.state.epochsDone}; ${summary}\n`);
          process.stdout.write(`${dir}\n`);
        }
      }),
    );
}

/** Decodes the whole dataset first; problems stop the run (E_BAD_DATASET) unless --skip-bad, which returns them. */
async function checkDataset(task: Task, data: DataOptions, o: TrainCliOptions): Promise<RowProblem[]> {
  let bar: ProgressBar | null = null;
  const report = await validateDataset(data.dataDir, {
    requireMasks: task === 'segmenter',
    window: parseWindowPolicy(data.window),
    onImage: (done, total) => {
      bar ??= new ProgressBar(process.stderr, 'checking images', total);
      bar.tick(1);
      if (done === total) bar.finish();
    },
  });
  for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
  if (report.problems.length === 0) return [];
  const listed = formatProblems(report, 20).join('\n  ');
  if (!o.skipBad) {
    throw new CxrError(
      'E_BAD_DATASET',
      `${report.problems.length} of ${report.rows} rows of ${data.dataDir}/labels.csv cannot be used; nothing was trained or written:\n  ${listed}\n` +
        'fix them, or give --skip-bad to train without them',
    );
  }
  process.stderr.write(`--skip-bad: training without ${report.problems.length} of ${report.rows} rows:\n  ${listed}\n`);
  return report.problems;
}

function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, 'checkpoint', 'state.json')) || existsSync(join(runDir, 'checkpoint.old', 'state.json'));
}

/**
 * Training feeds the network crops as cut (augmentation works on them), so a version whose
 * crops are quantile-matched (`intensity`, from refit-head --match-intensity) would be
 * fine-tuned on inputs unlike the ones it serves: refused rather than silently mismatched.
 */
async function refuseIntensityMatched(dir: string): Promise<void> {
  const d = resolve(dir);
  const m = existsSync(join(d, 'manifest.json')) ? await readManifest(d).catch(() => null) : null;
  if (m?.intensity)
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `--init ${m.version} quantile-matches its crops to an intensity reference, which training does not apply: fine-tune the version it was refitted from (${m.training.initFrom?.version ?? 'its base'}) and refit again with --match-intensity`,
    );
}

/** The --init version as the manifest records it: name and version from its manifest, where it was relative to a named root. */
async function describeInit(dir: string, runDir: string): Promise<InitFrom> {
  const d = resolve(dir);
  const m = existsSync(join(d, 'manifest.json')) ? await readManifest(d).catch(() => null) : null;
  const record: InitFrom = { ...(m ? { name: m.name, version: m.version } : {}), location: portablePath(d) };
  // fine-tuning on the folder the initial model trained on: its patients must not be in our test split
  if (existsSync(join(d, 'split.csv')) && existsSync(join(runDir, 'split.csv'))) {
    const overlap = splitOverlap(await readSplit(runDir), await readSplitFile(join(d, 'split.csv')));
    record.testOverlap = overlap;
    if (overlap.images > 0) {
      process.stderr.write(
        `warning: ${overlap.images} of ${overlap.of} test images (${overlap.patients} patients) trained or validated the initial model ${m?.version ?? d}: ` +
          `the test metrics will be optimistic. Reuse its split with --split-file ${join(d, 'split.csv')}\n`,
      );
    }
  } else {
    process.stderr.write(`note: ${d} has no split.csv, so whether its training images are in this run's test split is unknown\n`);
  }
  return record;
}

/** The initFrom a run's start saved in its config.json (so a resumed run does not lose it). */
async function savedInitFrom(runDir: string): Promise<InitFrom | undefined> {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) return undefined;
  const saved = JSON.parse(await readFile(path, 'utf8')) as { initFrom?: InitFrom };
  return saved.initFrom;
}

async function loadInitModel(dir: string): Promise<LayersModel> {
  const d = resolve(dir);
  if (!existsSync(join(d, 'model.json'))) throw new CxrError('E_NOT_FOUND', `--init: no model.json in ${d} (give a model version folder)`);
  return loadModel(d);
}

/**
 * Training calibrated the threshold on single views of the tfjs model; the service averages
 * TTA views of the ONNX model on the segmenter's crops. When training had a segmenter, the
 * validation split is scored the served way and the threshold re-picked on that.
 */
async function servedCalibration(dir: string, config: TrainConfig, data: DataOptions, o: TrainCliOptions): Promise<void> {
  const views = o.calibrateViews === undefined ? DEFAULT_TTA : parseInteger('--calibrate-views', o.calibrateViews, 0);
  if (views === 0) return;
  const seg = data.segmenterDir;
  if (!seg || !existsSync(join(seg, 'model.onnx'))) {
    process.stderr.write(
      `threshold calibrated on single views: ${seg ? `${seg} has no model.onnx` : 'no --segmenter (the crops came from the dataset masks)'}; ` +
        'run `cxr-triage calibrate` to calibrate it on the served pipeline\n',
    );
    return;
  }
  const r = await recalibrate({
    dataDir: data.datasets ? data.datasets.map((d) => d.dir) : data.dataDir,
    splitPath: join(dir, 'split.csv'),
    subset: 'validation',
    classifierDir: dir,
    engine: { segmenterDir: seg },
    targetRecall: config.targetRecall,
    views,
    window: data.window,
    // the version is still in its staging folder: part of building it
    write: 'in-place',
  });
  for (const w of r.threshold.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
  process.stderr.write(
    `threshold re-calibrated on the served pipeline (${views} TTA views, validation): ${fmt(r.previous?.value)} -> ${fmt(r.calibration.threshold)}, ` +
      `sensitivity ${fmt(r.calibration.sensitivity)}, specificity ${fmt(r.calibration.specificity)}\n`,
  );
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? v.toFixed(3) : 'n/a';
}
