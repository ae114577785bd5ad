/**
 * import-weights: a classifier version from weights trained elsewhere for an existing version's
 * graph (scripts/gpu/finetune.py fine-tunes the whole network on a GPU machine and writes a
 * weights.bin in the same layout). The new version keeps the graph, split and data provenance
 * of the version it started from, records where its weights came from, exports model.onnx
 * (checked against tfjs), picks its threshold and probability calibration on the served
 * pipeline over the split's validation films, as `train` does, and records the validation and
 * test figures at that threshold. All of it in a staging folder: a failure publishes nothing.
 */
import type { Command } from 'commander';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { CxrError } from '../../errors.js';
import { DEFAULT_TTA } from '../../inference/engine.js';
import { initBackend } from '../../ml/backend.js';
import { checkImportedWeights, graphAtInputSize, type WeightSpec } from '../../ml/imported-weights.js';
import { densenetStride } from '../../ml/densenet.js';
import {
  portablePath,
  readManifest,
  runEnvironment,
  stageVersion,
  THRESHOLD_NOTES,
  versionFromDate,
  writeManifest,
  type ModelManifest,
} from '../../ml/model-store/index.js';
import { exportModelVersion } from '../../ml/onnx/model-version.js';
import { MODEL_JSON, WEIGHTS_BIN } from '../../ml/model-io.js';
import { recalibrate } from '../recalibrate.js';
import { scoreItems } from '../score-items.js';
import { loadSplitItems, splitItemSet } from '../../ml/calibrate.js';
import { setFigures } from '../../ml/evaluate.js';
import { action, collect, invocation, parseInteger, parseNumber } from '../run.js';

interface ImportCliOptions {
  from: string;
  out?: string;
  version?: string;
  method: string;
  data: string[];
  split?: string;
  segmenter?: string;
  epochs?: string;
  bestEpoch?: string;
  log: string[];
  targetRecall: string;
  tta?: string;
  inputSize?: string;
}

/** The single weights group of a tfjs model.json (what saveModel writes). */
async function weightSpecs(modelJson: string): Promise<WeightSpec[]> {
  const m = JSON.parse(await readFile(modelJson, 'utf8')) as { weightsManifest?: { paths: string[]; weights: WeightSpec[] }[] };
  const groups = m.weightsManifest ?? [];
  if (groups.length !== 1 || groups[0].paths.length !== 1 || groups[0].paths[0] !== WEIGHTS_BIN) {
    throw new CxrError('E_MODEL_INVALID', `${modelJson}: weights can be imported only for a graph whose weights are one ${WEIGHTS_BIN}`);
  }
  return groups[0].weights;
}

interface ScoredRow {
  dataset: string;
  label: number;
  probability: number;
}

/** Validation and test figures at the pooled threshold, and each set's on its own rows (as refit-head and train record them). */
function importedMetrics(validation: readonly ScoredRow[], test: readonly ScoredRow[], threshold: number): ModelManifest['metrics'] {
  const figures = (rs: readonly ScoredRow[]) =>
    rs.length
      ? setFigures(
          rs.map((r) => r.probability),
          rs.map((r) => r.label),
          threshold,
        )
      : {};
  const names = [...new Set(validation.map((r) => r.dataset))].sort();
  const sets =
    names.length > 1
      ? Object.fromEntries(
          names.map((s) => [s, { validation: figures(validation.filter((r) => r.dataset === s)), test: figures(test.filter((r) => r.dataset === s)) }]),
        )
      : undefined;
  return { validation: figures(validation), test: figures(test), ...(sets ? { sets } : {}) };
}

export function register(program: Command): void {
  program
    .command('import-weights')
    .description(
      'make a NEW classifier version from a weights.bin trained elsewhere (e.g. scripts/gpu/finetune.py on a GPU) for the graph of --from: ' +
        'same model.json, split and data provenance; model.onnx exported and checked; threshold and calibration picked on the served pipeline (validation films), validation and test figures recorded',
    )
    .argument('<weights>', 'the weights.bin to import (the layout of --from/model.json)')
    .requiredOption('--from <dir>', 'the version whose graph the weights are for (and whose split and data they were trained on)')
    .option('--out <dir>', 'models folder of that kind, e.g. models/classifier (default: the folder holding --from)')
    .option('--version <name>', 'version folder name (default v<date>-<time>)')
    .option('--method <text>', 'how the weights were trained, for the manifest and model card', 'whole-network fine-tune outside this project')
    .option('--data <dir>', 'the dataset folders of the split (repeat for a pool), to calibrate on its validation films', collect, [])
    .option('--split <csv>', 'the split the weights were trained on (default: --from/split.csv); travels with the version')
    .option('--segmenter <dir>', 'the segmenter version giving the lung crops (with model.onnx)')
    .option('--epochs <n>', 'epochs the outside run trained')
    .option('--best-epoch <n>', 'the epoch whose weights these are')
    .option('--log <file>', 'a file of the outside run to keep in the version under training/ (its log, results); repeatable', collect, [])
    .option('--target-recall <r>', 'recall the threshold is calibrated for on validation', '0.95')
    .option('--tta <n>', `TTA views of the calibration (default ${DEFAULT_TTA}, as served)`)
    .option(
      '--input-size <n>',
      "the crop side the weights were trained at (finetune.py's inputSize), when not --from's: the graph is rewritten for it and the served crop follows",
    )
    .action(
      action(async (weightsPath: string, o: ImportCliOptions, cmd: Command) => {
        const from = resolve(o.from);
        const base = await readManifest(from);
        // finetune.py trains a classifier (a label per film); a segmenter's weights have no such path here
        if (base.name !== 'classifier') throw new CxrError('E_BAD_ARGUMENT', `${o.from} is a ${base.name} version: import-weights makes classifier versions`);
        // finetune.py trains on crops as they are: weights from it would be served behind a matching they never saw
        if (base.intensity)
          throw new CxrError(
            'E_BAD_ARGUMENT',
            `${base.version} quantile-matches its crops to an intensity reference, which weights trained elsewhere never saw: import them for a version without one`,
          );
        const targetRecall = parseNumber('--target-recall', o.targetRecall);
        const views = o.tta === undefined ? DEFAULT_TTA : parseInteger('--tta', o.tta, 1);
        if (o.data.length === 0 || !o.segmenter) {
          throw new CxrError('E_BAD_ARGUMENT', 'a classifier is calibrated on its split: give --data (each folder of the split) and --segmenter');
        }
        const splitPath = o.split ? resolve(o.split) : join(from, 'split.csv');
        if (o.split && !existsSync(splitPath)) throw new CxrError('E_BAD_ARGUMENT', `--split ${o.split}: no such file`);
        if (!existsSync(splitPath)) throw new CxrError('E_BAD_ARGUMENT', `${o.from} has no split.csv to calibrate on: give --split`);
        for (const f of o.log) if (!existsSync(f)) throw new CxrError('E_BAD_ARGUMENT', `--log ${f}: no such file`);
        const logNames = o.log.map((f) => basename(f));
        const clash = logNames.find((n, i) => logNames.indexOf(n) !== i);
        if (clash !== undefined)
          throw new CxrError('E_BAD_ARGUMENT', `two --log files are both named ${clash}: they would overwrite each other under training/`);
        const inputSize = o.inputSize === undefined ? base.inputSize : parseInteger('--input-size', o.inputSize, 1);
        const blocks = (base.architectureConfig as { blocks?: unknown }).blocks;
        if (inputSize !== base.inputSize && !(Array.isArray(blocks) && blocks.every((b) => Number.isInteger(b))))
          throw new CxrError('E_BAD_ARGUMENT', `--input-size: ${o.from} records no DenseNet blocks, so its stride is unknown`);
        const graph =
          inputSize === base.inputSize
            ? await readFile(join(from, MODEL_JSON), 'utf8')
            : graphAtInputSize(await readFile(join(from, MODEL_JSON), 'utf8'), inputSize, densenetStride(blocks as number[]));
        const bytes = new Uint8Array(await readFile(resolve(weightsPath)));
        const checked = checkImportedWeights(await weightSpecs(join(from, MODEL_JSON)), bytes);
        process.stderr.write(`weights: ${checked.values} values, ${checked.bytes} bytes, all finite, in the layout of ${base.version}\n`);

        await initBackend();
        const now = new Date();
        const version = o.version ?? versionFromDate(now);
        const outRoot = resolve(o.out ?? dirname(from));
        const staged = await stageVersion(outRoot, version);
        try {
          const dir = staged.dir;
          await writeFile(join(dir, MODEL_JSON), graph);
          await writeFile(join(dir, WEIGHTS_BIN), bytes);
          await copyFile(splitPath, join(dir, 'split.csv'));
          const logs: string[] = [];
          if (o.log.length > 0) await mkdir(join(dir, 'training'), { recursive: true });
          for (const f of o.log) {
            await copyFile(resolve(f), join(dir, 'training', basename(f)));
            logs.push(`training/${basename(f)}`);
          }
          const {
            files: _files,
            onnx: _onnx,
            quantization: _q,
            calibration: _c,
            drift: _d,
            derivedFrom: _df,
            populationEstimator: _pe,
            ...kept
          } = base as ModelManifest;
          const training: ModelManifest['training'] = {
            ...base.training,
            config: {
              method: o.method,
              weightsFile: basename(weightsPath),
              weightsSha256: createHash('sha256').update(bytes).digest('hex'),
              ...(logs.length > 0 ? { logs } : {}),
            },
            epochs: o.epochs === undefined ? 0 : parseInteger('--epochs', o.epochs, 0),
            ...(o.bestEpoch === undefined ? {} : { bestEpoch: parseInteger('--best-epoch', o.bestEpoch, 1) }),
            initFrom: { name: base.name, version: base.version, location: portablePath(from) },
            environment: runEnvironment(invocation(cmd)),
          };
          await writeManifest(dir, {
            ...kept,
            ...(inputSize === base.inputSize ? {} : { inputSize, architectureConfig: { ...base.architectureConfig, inputSize } }),
            version,
            createdAt: now.toISOString(),
            training,
            metrics: { validation: {}, test: {} },
            // replaced by the calibration below before anything is published
            threshold: { value: 0.5, targetRecall, validationSensitivity: 0, validationSpecificity: null },
            notes: THRESHOLD_NOTES,
          });
          await exportModelVersion(dir, (line) => process.stderr.write(`${line}\n`));
          const r = await recalibrate({
            dataDir: o.data,
            splitPath: join(dir, 'split.csv'),
            subset: 'validation',
            classifierDir: dir,
            engine: { segmenterDir: resolve(o.segmenter!) },
            targetRecall,
            views,
            write: 'in-place',
          });
          const c = r.calibration;
          // the test films through the version as it now serves (its calibration applied)
          const testItems = await loadSplitItems(
            o.data.map((d) => resolve(d)),
            join(dir, 'split.csv'),
            'test',
          );
          const test = testItems.length
            ? (
                await scoreItems(
                  testItems,
                  { segmenterDir: resolve(o.segmenter!), classifierDir: dir, tta: views, precision: { classifier: 'float' } },
                  {
                    task: 'test',
                    verb: 'scoring',
                    what: 'test images',
                  },
                )
              ).images.map((img, i) => ({
                dataset: splitItemSet(testItems[i], o.data),
                label: img.label,
                probability: img.probability,
              }))
            : [];
          const { files: _f, ...previous } = await readManifest(dir);
          const m = { ...previous, metrics: importedMetrics(r.rows, test, c.threshold) };
          await writeManifest(dir, m);
          const t = (m.metrics.test ?? {}) as Record<string, unknown>;
          const f3 = (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : 'n/a');
          process.stderr.write(
            `threshold on the served pipeline (${views} TTA views, ${r.n} validation films): ${c.threshold.toFixed(4)}, recall ${c.sensitivity.toFixed(3)}, specificity ${f3(c.specificity)}\n` +
              `test (${test.length} films, pooled, at that threshold): AUC ${f3(t.auc)}, recall ${f3(t.recall)}, specificity ${f3(t.specificity)}\n` +
              '`quantize`, `calibrate --population`, `refit-head` and `evaluate --save` work on it as on any version\n',
          );
          const published = await staged.publish();
          process.stdout.write(`${published}\n`);
        } finally {
          await staged.discard();
        }
      }),
    );
}
