import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { datasetName } from '../../data/multi-dataset.js';
import { parseDatasetSpec } from '../../data/multi-dataset.js';
import { readSplitFile, SPLIT_NAMES, type SplitName } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { loadEngine } from '../../inference/engine.js';
import { initBackend } from '../../ml/backend.js';
import { loadSplitItems } from '../../ml/calibrate.js';
import { readManifest, versionFromDate, writeManifest, type MetricValues } from '../../ml/manifest.js';
import { calibrateThreshold, classificationReport, rocAuc } from '../../ml/metrics.js';
import { loadModel, saveModel } from '../../ml/model-io.js';
import { exportModelVersion } from '../../ml/onnx/model-version.js';
import { fitHead, headProbability, type HeadFit } from '../../ml/train/head.js';
import { ProgressBar } from '../../ml/train/progress.js';
import { recalibrate } from '../recalibrate.js';
import { action, collect, parseInteger, parseNumber } from '../run.js';
import type { DatasetItem } from '../../data/dataset.js';
import { capItems } from '../../ml/train/dataset-source.js';

interface RefitCliOptions {
  data: string[];
  split: string;
  classifier: string;
  segmenter: string;
  out: string;
  cache: string[];
  shard?: string;
  extractOnly?: boolean;
  maxTrainPerSet?: string;
  test: boolean;
  l2: string;
  version?: string;
  threads?: string;
  targetRecall: string;
}

interface FeatureRow {
  id: string;
  label: number;
  source: string;
  split: SplitName;
  f: Float32Array;
}

/** Features already extracted (one JSON line per image), so an interrupted or repeated refit reads instead of recomputing. */
async function readCache(path: string): Promise<Map<string, FeatureRow>> {
  const out = new Map<string, FeatureRow>();
  if (!existsSync(path)) return out;
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Omit<FeatureRow, 'f'> & { f: string };
      const b = Buffer.from(r.f, 'base64');
      out.set(r.id, { ...r, f: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) });
    } catch {
      // a line cut short by an interrupted run: recomputed
    }
  }
  return out;
}

function setWeights(rows: readonly FeatureRow[], weights: Record<string, number>): number[] {
  const count = new Map<string, number>();
  for (const r of rows) count.set(r.source, (count.get(r.source) ?? 0) + 1);
  // each set's rows together weigh its share, scaled so the mean weight is 1
  const total = [...count.keys()].reduce((s, k) => s + (weights[k] ?? 1), 0);
  return rows.map((r) => ((weights[r.source] ?? 1) / total) * (rows.length / count.get(r.source)!));
}

function meanSetAuc(rows: readonly FeatureRow[], fit: HeadFit): { mean: number; bySet: Record<string, number | null> } {
  const bySet: Record<string, number | null> = {};
  for (const s of [...new Set(rows.map((r) => r.source))].sort()) {
    const mine = rows.filter((r) => r.source === s);
    bySet[s] = rocAuc(
      mine.map((r) => headProbability(fit, r.f)),
      mine.map((r) => r.label),
    );
  }
  const v = Object.values(bySet).filter((x): x is number => x != null);
  return { mean: v.reduce((a, b) => a + b, 0) / Math.max(1, v.length), bySet };
}

function metricsOf(rows: readonly FeatureRow[], fit: HeadFit, threshold: number): MetricValues {
  const r = classificationReport(
    rows.map((x) => headProbability(fit, x.f)),
    rows.map((x) => x.label),
    threshold,
  );
  return { ...r, confusion: { ...r.confusion } };
}

export function register(program: Command): void {
  program
    .command('refit-head')
    .description(
      "refit a classifier version's final layer on frozen features of one or several dataset folders (one forward pass per image through the served " +
        'pipeline), choose the L2 strength on validation, and write a new version with model.onnx, a Platt calibration and a served-pipeline threshold',
    )
    .requiredOption('--data <dir[:weight]>', 'dataset folder, repeatable; the weight is the set’s share of the fit (default 1)', collect, [])
    .requiredOption('--split <csv>', 'split CSV of the pool (train rows fit, validation rows choose and calibrate, test rows are reported)')
    .requiredOption('--classifier <dir>', 'the classifier version whose features are used')
    .requiredOption('--segmenter <dir>', 'the segmenter version giving the lung crops')
    .requiredOption('--out <dir>', 'where the new version goes, e.g. models/classifier')
    .option('--cache <file>', 'feature cache (JSON lines), reused when it exists; repeatable (all are read, the first is written)', collect, [])
    .option('--shard <k/n>', 'extract only every n-th image starting at k (run n processes side by side, each with its own --cache)')
    .option('--extract-only', 'stop after extracting features')
    .option('--max-train-per-set <n>', 'fit on at most this many train images of each set (whole patients, seeded)')
    .option('--no-test', 'skip the test rows (report them with `evaluate` instead)')
    .option('--l2 <list>', 'L2 strengths to try on standardised features', '0.001,0.003,0.01,0.03,0.1')
    .option('--version <name>', 'version folder name (default v<date>-<time>)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--target-recall <r>', 'recall the threshold is calibrated for on validation', '0.95')
    .action(
      action(async (o: RefitCliOptions) => {
        const specs = o.data.map(parseDatasetSpec);
        const dirs = specs.map((s) => resolve(s.dir));
        const weights = Object.fromEntries(specs.map((s) => [datasetName(s.dir), s.weight ?? 1]));
        const splitPath = resolve(o.split);
        const split = await readSplitFile(splitPath);
        const where = new Map(split.assignments.map((a) => [a.file, a.split]));
        const subsets = SPLIT_NAMES.filter((s) => o.test || s !== 'test');
        let items = (await Promise.all(subsets.map((s) => loadSplitItems(dirs, splitPath, s)))).flat();
        if (o.maxTrainPerSet) {
          const cap = parseInteger('--max-train-per-set', o.maxTrainPerSet, 1);
          const byId = new Map(split.assignments.map((a) => [a.file, a.patientId]));
          const keep = new Set<string>();
          for (const s of new Set(items.map((i) => i.source ?? ''))) {
            const mine = items.filter((i) => (i.source ?? '') === s && where.get(i.id) === 'train');
            const capped = capItems(
              mine.map((i) => ({ file: i.id, patientId: byId.get(i.id)! }) as DatasetItem),
              cap,
              1,
            );
            for (const c of capped) keep.add(c.file);
          }
          items = items.filter((i) => where.get(i.id) !== 'train' || keep.has(i.id));
        }
        const cachePath = o.cache.length > 0 ? resolve(o.cache[0]) : null;
        const cached = new Map<string, FeatureRow>();
        for (const c of o.cache) for (const [k, v] of await readCache(resolve(c))) cached.set(k, v);
        let todo = items.filter((i) => !cached.has(i.id));
        if (o.shard) {
          const m = /^(\d+)\/(\d+)$/.exec(o.shard);
          if (!m || Number(m[1]) >= Number(m[2])) throw new CxrError('E_BAD_ARGUMENT', `--shard must be K/N with K < N, got '${o.shard}'`);
          const [k, n] = [Number(m[1]), Number(m[2])];
          todo = todo.filter((_, i) => i % n === k);
        }
        process.stderr.write(`${items.length} images (${cached.size} features cached, ${todo.length} to extract)\n`);
        if (todo.length > 0) {
          const engine = await loadEngine({
            classifierDir: resolve(o.classifier),
            segmenterDir: resolve(o.segmenter),
            tta: 1,
            threads: o.threads ? Number(o.threads) : undefined,
          });
          const bar = new ProgressBar(process.stderr, 'features', todo.length);
          try {
            for (const item of todo) {
              const s = await engine.scoreImage(await item.image(), { tta: 1, features: true });
              const row: FeatureRow = { id: item.id, label: item.label, source: item.source ?? '', split: where.get(item.id)!, f: s.features! };
              cached.set(item.id, row);
              if (cachePath) {
                await mkdir(resolve(cachePath, '..'), { recursive: true });
                const f = Buffer.from(row.f.buffer, row.f.byteOffset, row.f.byteLength).toString('base64');
                await appendFile(cachePath, `${JSON.stringify({ ...row, f })}\n`);
              }
              bar.tick(1);
            }
          } finally {
            await engine.close();
          }
          bar.finish();
        }
        if (o.extractOnly) return;
        const missing = items.filter((i) => !cached.has(i.id)).length;
        if (missing > 0) throw new CxrError('E_BAD_ARGUMENT', `${missing} images have no features yet (run the other shards, or without --shard)`);
        const rows = items.map((i) => cached.get(i.id)!);
        const train = rows.filter((r) => r.split === 'train');
        const validation = rows.filter((r) => r.split === 'validation');
        const test = rows.filter((r) => r.split === 'test');
        const sampleWeights = setWeights(train, weights);
        let best: { fit: HeadFit; score: number; bySet: Record<string, number | null> } | null = null;
        for (const l2 of o.l2.split(',').map((v) => parseNumber('--l2', v))) {
          const fit = fitHead(
            train.map((r) => r.f),
            train.map((r) => r.label),
            { l2, sampleWeights },
          );
          const v = meanSetAuc(validation, fit);
          process.stderr.write(
            `l2 ${l2}: validation AUC ${v.mean.toFixed(4)} (${Object.entries(v.bySet)
              .map(([k, a]) => `${k} ${a?.toFixed(4)}`)
              .join(', ')}), ${fit.iterations} Newton steps\n`,
          );
          if (!best || v.mean > best.score) best = { fit, score: v.mean, bySet: v.bySet };
        }
        const fit = best!.fit;

        // the new version: the base model with the refitted head
        await initBackend();
        const base = await readManifest(resolve(o.classifier));
        const model = await loadModel(resolve(o.classifier));
        const head = model.getLayer('probability');
        const [kernel, bias] = head.getWeights();
        if (kernel.shape[0] !== fit.weights.length)
          throw new CxrError('E_MODEL_INVALID', `head has ${kernel.shape[0]} inputs, features have ${fit.weights.length}`);
        head.setWeights([tf.tensor2d(Float32Array.from(fit.weights), [fit.weights.length, 1]), tf.tensor1d([fit.bias])]);
        tf.dispose([kernel, bias]);
        const version = o.version ?? versionFromDate(new Date());
        const dir = join(resolve(o.out), version);
        if (existsSync(join(dir, 'manifest.json'))) throw new CxrError('E_CONFLICT', `model version ${dir} already exists`);
        await saveModel(model, dir, { float16: true, metadata: { name: 'classifier', version, task: 'classifier' } });
        model.dispose();
        await copyFile(splitPath, join(dir, 'split.csv'));
        const targetRecall = parseNumber('--target-recall', o.targetRecall);
        const valScores = validation.map((r) => headProbability(fit, r.f));
        const cal = calibrateThreshold(
          valScores,
          validation.map((r) => r.label),
          targetRecall,
        );
        const count = (rs: FeatureRow[], s: string) => rs.filter((r) => r.source === s).length;
        const sets: Record<string, { validation: MetricValues; test: MetricValues }> = {};
        for (const s of Object.keys(best!.bySet)) {
          sets[s] = {
            validation: metricsOf(
              validation.filter((r) => r.source === s),
              fit,
              cal.threshold,
            ),
            test: count(test, s)
              ? metricsOf(
                  test.filter((r) => r.source === s),
                  fit,
                  cal.threshold,
                )
              : {},
          };
        }
        await writeManifest(dir, {
          name: 'classifier',
          version,
          architecture: base.architecture,
          architectureConfig: base.architectureConfig,
          inputSize: base.inputSize,
          createdAt: new Date().toISOString(),
          training: {
            dataDir: dirs.map(datasetName).join('+'),
            dataHash: base.training.dataHash,
            dataSize: rows.length,
            config: {
              method: 'head refit on frozen features (L2 logistic regression, Newton)',
              l2: fit.l2,
              l2Tried: o.l2,
              setWeights: weights,
              views: 1,
              validationMeanSetAuc: best!.score,
            },
            epochs: 0,
            split: { train: train.length, validation: validation.length, test: test.length, seed: split.seed, file: 'split.csv' },
            maskSource: `segmenter ${(await readManifest(resolve(o.segmenter))).version}`,
            initFrom: `classifier ${base.version}`,
            datasets: Object.keys(weights).map((name) => ({
              name,
              images: count(rows, name),
              weight: weights[name],
              train: count(train, name),
              validation: count(validation, name),
              test: count(test, name),
            })),
          },
          metrics: { validation: metricsOf(validation, fit, cal.threshold), test: test.length ? metricsOf(test, fit, cal.threshold) : {}, sets },
          threshold: { value: cal.threshold, targetRecall, validationSensitivity: cal.sensitivity, validationSpecificity: cal.specificity },
        });
        await exportModelVersion(dir, (line) => process.stderr.write(`${line}\n`));
        const r = await recalibrate({
          dataDir: dirs,
          splitPath: join(dir, 'split.csv'),
          subset: 'validation',
          classifierDir: dir,
          engine: { segmenterDir: resolve(o.segmenter) },
          targetRecall,
          views: 4,
        });
        process.stderr.write(
          `served-pipeline calibration (4 views, validation): threshold ${r.calibration.threshold.toFixed(4)}, sensitivity ${r.calibration.sensitivity.toFixed(3)}, ` +
            `specificity ${r.calibration.specificity?.toFixed(3)}; ECE ${r.probabilityCalibration?.eceBefore.toFixed(3)} -> ${r.probabilityCalibration?.eceAfter.toFixed(3)}\n`,
        );
        process.stdout.write(`${dir}\n`);
      }),
    );
}
