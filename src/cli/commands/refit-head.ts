/**
 * `refit-head`: a classifier fitted to new sets on a CPU that cannot afford backpropagation.
 * The network up to global average pooling stays as the base version has it; each image goes
 * once through the served pipeline (ONNX Runtime, the segmenter's crop) and its pooled
 * features are kept: --train-views views for train rows (one by default), every TTA view for
 * validation and test rows.
 * The head (Dense 1, sigmoid) is refitted on the train rows (ml/train/head.ts), and because
 * the served probability is the mean over views of sigmoid(w . f_v + b), the validation and
 * test rows give exactly what the served pipeline will say with the new head (with its
 * float16-rounded weights) without scoring them again: the L2 strength, the Platt
 * calibration and the threshold are chosen on validation from those, and test figures (per
 * set, with bootstrap intervals) are reported from them. With --cross-fit the train films are
 * also scored out of fold (ml/cross-fit.ts) and join validation for choosing the L2 strength
 * only.
 */
import type { Command } from 'commander';
import { appendFile, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { csvLine } from '../../data/csv.js';
import type { DatasetItem } from '../../data/dataset.js';
import { datasetName, parseDatasetSpec } from '../../data/multi-dataset.js';
import { readSplitFile, SPLIT_NAMES } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { loadEngine } from '../../inference/engine.js';
import { initBackend } from '../../ml/backend.js';
import { setFigures, type EvalItem } from '../../ml/evaluate.js';
import { loadSplitItems, splitItemSet } from '../../ml/calibrate.js';
import {
  intensityMatchOf,
  MODEL_CARD_FILE,
  portablePath,
  readManifest,
  stageVersion,
  versionFromDate,
  writeManifest,
  type MetricValues,
} from '../../ml/model-store/index.js';
import { calibrateThreshold } from '../../ml/metrics.js';
import { uncertaintyBound } from '../../ml/uncertainty-bound.js';
import { HEAD_SELECTIONS, parseHeadSelection, ranksAbove, selectionScore, type SelectionScore, type SetScores } from '../../ml/head-selection.js';
import { outOfFold, patientFolds } from '../../ml/cross-fit.js';
import { meanAndSpread } from '../../inference/decision.js';
import { loadModel, saveModel } from '../../ml/model-io.js';
import { DEFAULT_HEAD_TAPS, withHeadTaps } from '../../ml/densenet.js';
import { exportModelVersion } from '../../ml/onnx/model-version.js';
import { applyCalibration, calibrationReport, fitCalibration } from '../../ml/probability-calibration.js';
import { capItems } from '../../ml/train/dataset-source.js';
import type { HeadFit } from '../../ml/train/head.js';
import { fitHeadOnRows, meanViewProbability, viewProbabilities } from '../../ml/train/head-rows.js';
import { ProgressBar } from '../../ml/train/progress.js';
import { featureCacheLine, readFeatureCache, type FeatureRow } from '../../ml/train/feature-cache.js';
import { action, collect, parseInteger, parseNumber } from '../run.js';
import { fitIntensityReference, intensityTag, referenceFilms } from '../intensity-reference.js';
import { writeModelCard } from '../model-card.js';

interface RefitCliOptions {
  data: string[];
  split: string;
  classifier: string;
  segmenter: string;
  out?: string;
  cache: string[];
  shard?: string;
  extractOnly?: boolean;
  maxTrainPerSet?: string;
  maxTestPerSet?: string;
  views: string;
  trainViews: string;
  l2: string;
  select: string;
  version?: string;
  threads?: string;
  targetRecall: string;
  report?: string;
  partialTest?: boolean;
  headTaps?: string | boolean;
  crossFit?: string;
  matchIntensity?: string;
  matchScope: string;
  matchFrom?: string;
}

/** The served (uncalibrated) probability: the mean over the views. */
const served = meanViewProbability;

function bySet<T>(rows: readonly FeatureRow[], fn: (mine: FeatureRow[]) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const s of [...new Set(rows.map((r) => r.source))].sort()) out[s] = fn(rows.filter((r) => r.source === s));
  return out;
}

/** Figures at the threshold with 95% bootstrap intervals (AUC, accuracy, recall, specificity). */
function figures(p: number[], y: number[], threshold: number): MetricValues {
  const r = setFigures(p, y, threshold);
  return {
    ...r,
    confusion: { ...r.confusion },
    flaggedPer100: (100 * (r.confusion.tp + r.confusion.fp)) / r.n,
  };
}

/** --head-taps: absent means none, given bare means the default taps. */
function parseHeadTaps(v: string | boolean | undefined): string[] {
  if (v === undefined || v === false) return [];
  if (v === true) return [...DEFAULT_HEAD_TAPS];
  const taps = v
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (taps.length === 0) throw new CxrError('E_BAD_ARGUMENT', '--head-taps names no layer');
  return taps;
}

export function register(program: Command): void {
  program
    .command('refit-head')
    .description(
      "refit a classifier version's final layer on frozen served-pipeline features of one or several dataset folders (one pass per image), choose L2, " +
        'Platt calibration and threshold on validation from the exact served probabilities, and write a new version with model.onnx and per-set figures',
    )
    .requiredOption('--data <dir[:weight]>', 'dataset folder, repeatable; the weight is the set’s share of the fit (default 1)', collect, [])
    .requiredOption('--split <csv>', 'split CSV of the pool (train rows fit, validation rows choose and calibrate, test rows are reported)')
    .requiredOption('--classifier <dir>', 'the classifier version whose features are used')
    .requiredOption('--segmenter <dir>', 'the segmenter version giving the lung crops')
    .option('--out <dir>', 'where the new version goes, e.g. models/classifier (required unless --extract-only)')
    .option('--cache <file>', 'feature cache (JSON lines), reused when it exists; repeatable (all are read, the first is written)', collect, [])
    .option('--shard <k/n>', 'extract only every n-th image starting at k (run n processes side by side, each with its own first --cache)')
    .option('--extract-only', 'stop after extracting features into --cache (no version is written, so no --out)')
    .option('--max-train-per-set <n>', 'fit on at most this many train images of each set (whole patients, seeded)')
    .option('--max-test-per-set <n>', 'report on at most this many test images of each set (whole patients, seeded)')
    .option('--views <n>', 'TTA views of the validation and test rows: what the service averages', '4')
    .option(
      '--train-views <n>',
      'TTA views of each train row, every one a sample of the fit (weighted 1/n): the head sees the views it will be averaged over (at most --views)',
      '1',
    )
    .option('--l2 <list>', 'L2 strengths to try on standardised features', '0.003,0.01,0.03')
    .option(
      '--select <by>',
      `how the L2 strength is chosen on validation: ${HEAD_SELECTIONS.join('|')} (specificity: the mean over sets of the specificity at each set's own threshold for --target-recall, mean AUC breaking ties; auc: the mean per-set AUC)`,
      'specificity',
    )
    .option('--version <name>', 'version folder name (default v<date>-<time>)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--target-recall <r>', 'recall the threshold is calibrated for on validation', '0.95')
    .option('--report <dir>', 'write per-image validation and test probabilities (CSV) here')
    .option(
      '--head-taps [layers]',
      `a multi-scale head: also pool these layers (comma-separated tfjs names; default ${DEFAULT_HEAD_TAPS.join(',')}) before the final features and fit the head on all of them (a --cache belongs to one choice of taps)`,
    )
    .option('--partial-test', 'report on the test films whose features exist (extracting none) and leave the rest out, saying how many')
    .option(
      '--match-intensity <films>',
      "quantile-match the lung crops to the mean intensity distribution of this many train films of each set (fitted first, kept in the new version's manifest), so that a site's look-up curve, contrast and brightness do not reach the network; features are extracted matched (a --cache belongs to one reference)",
    )
    .option(
      '--match-scope <scope>',
      "with --match-intensity: whose ranks match a crop pixel: crop (its own crop's; every matched crop gets the reference's histogram) or film (its whole film's; lungs denser than the rest of their film stay so)",
      'crop',
    )
    .option(
      '--match-from <sets>',
      'with --match-intensity: fit the reference on the train films of these sets only (comma-separated folder names; default every set), e.g. the set whose films the frozen network should keep seeing as they are',
    )
    .option(
      '--cross-fit <k>',
      'also score every train film out of fold (k folds of whole patients, each set dealt evenly) and choose the L2 strength on those scores and the validation ones together; the threshold and calibration stay on validation',
    )
    .action(
      action(async (o: RefitCliOptions) => {
        const specs = o.data.map(parseDatasetSpec);
        const dirs = specs.map((s) => resolve(s.dir));
        const weights = Object.fromEntries(specs.map((s) => [datasetName(s.dir), s.weight ?? 1]));
        const splitPath = resolve(o.split);
        const split = await readSplitFile(splitPath);
        const where = new Map(split.assignments.map((a) => [a.file, a.split]));
        const patient = new Map(split.assignments.map((a) => [a.file, a.patientId]));
        const evalViews = parseInteger('--views', o.views, 1);
        const headTaps = parseHeadTaps(o.headTaps);
        const trainViews = parseInteger('--train-views', o.trainViews, 1);
        const selectBy = parseHeadSelection(o.select);
        const targetRecall = parseNumber('--target-recall', o.targetRecall);
        const crossFit = o.crossFit === undefined ? 0 : parseInteger('--cross-fit', o.crossFit, 2);
        // refused before any extraction: a run that writes nothing useful should cost nothing
        if (o.extractOnly && o.cache.length === 0)
          throw new CxrError('E_BAD_ARGUMENT', '--extract-only keeps nothing without --cache <file>: name the feature cache to fill');
        if (!o.extractOnly && !o.out) throw new CxrError('E_BAD_ARGUMENT', '--out <dir> is required unless --extract-only');
        const outRoot = o.out ? resolve(o.out) : '';
        if (!(targetRecall > 0 && targetRecall <= 1)) throw new CxrError('E_BAD_ARGUMENT', `--target-recall must be in (0,1], got ${o.targetRecall}`);
        if (trainViews > evalViews) throw new CxrError('E_BAD_ARGUMENT', `--train-views (${trainViews}) must not exceed --views (${evalViews})`);
        let items = (await Promise.all(SPLIT_NAMES.map((s) => loadSplitItems(dirs, splitPath, s)))).flat();
        // caps keep whole patients of each set (seeded), so a cap never splits a patient
        for (const [subset, cap] of [
          ['train', o.maxTrainPerSet],
          ['test', o.maxTestPerSet],
        ] as const) {
          if (!cap) continue;
          const n = parseInteger(`--max-${subset}-per-set`, cap, 1);
          const keep = new Set<string>();
          for (const s of new Set(items.map((i) => i.source ?? ''))) {
            const mine = items.filter((i) => (i.source ?? '') === s && where.get(i.id) === subset);
            for (const c of capItems(
              mine.map((i) => ({ file: i.id, patientId: patient.get(i.id)! }) as DatasetItem),
              n,
              1,
            ))
              keep.add(c.file);
          }
          items = items.filter((i) => where.get(i.id) !== subset || keep.has(i.id));
        }
        const viewsFor = (id: string): number => (where.get(id) === 'train' ? trainViews : evalViews);
        // the crops' intensity reference: the base's own, or one fitted here on train films first
        const baseManifest = await readManifest(resolve(o.classifier));
        if (o.matchScope !== 'crop' && o.matchScope !== 'film')
          throw new CxrError('E_BAD_ARGUMENT', `--match-scope must be crop or film, got '${o.matchScope}'`);
        if (o.matchScope !== 'crop' && o.matchIntensity === undefined) throw new CxrError('E_BAD_ARGUMENT', '--match-scope needs --match-intensity');
        const matchFrom =
          o.matchFrom === undefined
            ? null
            : new Set(
                o.matchFrom
                  .split(',')
                  .map((x) => x.trim())
                  .filter(Boolean),
              );
        if (matchFrom && o.matchIntensity === undefined) throw new CxrError('E_BAD_ARGUMENT', '--match-from needs --match-intensity');
        const setNames = dirs.map((d) => datasetName(d));
        const unknownSet = matchFrom ? [...matchFrom].find((x) => !setNames.includes(x)) : undefined;
        if (matchFrom && (matchFrom.size === 0 || unknownSet !== undefined))
          throw new CxrError('E_BAD_ARGUMENT', `--match-from: ${unknownSet ?? '(none)'} is not one of the --data sets (${setNames.join(', ')})`);
        const cachePath = o.cache.length > 0 ? resolve(o.cache[0]) : null;
        const cached = new Map<string, FeatureRow>();
        for (const c of o.cache) await readFeatureCache(resolve(c), cached);
        // rows of unmatched crops can never serve a matched run: say so before fitting the reference
        if (o.matchIntensity !== undefined && [...cached.values()].some((r) => (r.intensity ?? 'none') === 'none'))
          throw new CxrError('E_BAD_ARGUMENT', '--match-intensity: the --cache holds features of unmatched crops: use another --cache');
        if (o.matchIntensity !== undefined && baseManifest.intensity)
          throw new CxrError(
            'E_BAD_ARGUMENT',
            `--match-intensity: ${baseManifest.version} already matches its crops to a reference, which the new version keeps`,
          );
        // the films the reference is fitted on, each under its set's name (a one-folder run's is its folder's)
        const setOf = (i: EvalItem): string => splitItemSet(i, dirs);
        const referenceItems = (perSet: number): EvalItem[] => {
          const films = referenceFilms(matchFrom ? items.filter((i) => matchFrom.has(setOf(i))) : items, (id) => where.get(id) === 'train', perSet, setOf);
          if (films.length === 0)
            throw new CxrError(
              'E_BAD_ARGUMENT',
              `--match-intensity: the split has no train films${matchFrom ? ` of ${[...matchFrom].join(', ')}` : ''} to fit the reference on`,
            );
          return films;
        };
        const intensity =
          baseManifest.intensity ??
          (o.matchIntensity !== undefined
            ? await fitIntensityReference(referenceItems(parseInteger('--match-intensity', o.matchIntensity, 1)), {
                classifierDir: resolve(o.classifier),
                segmenterDir: resolve(o.segmenter),
                segmenterVersion: (await readManifest(resolve(o.segmenter))).version,
                inputSize: baseManifest.inputSize,
                scope: o.matchScope,
                threads: o.threads ? parseInteger('--threads', o.threads, 1) : undefined,
                setOf,
              })
            : null);
        if (intensity && !baseManifest.intensity)
          process.stderr.write(
            `intensity reference ${intensityTag(intensity)} (${intensity.method}) fitted on ${intensity.fittedOn.films} train films (${JSON.stringify(intensity.fittedOn.sets)})\n`,
          );
        // --partial-test reports on the test films already extracted and extracts none
        let todo = items.filter((i) => (cached.get(i.id)?.views.length ?? 0) < viewsFor(i.id) && !(o.partialTest && where.get(i.id) === 'test'));
        if (o.shard) {
          const m = /^(\d+)\/(\d+)$/.exec(o.shard);
          if (!m || Number(m[1]) >= Number(m[2])) throw new CxrError('E_BAD_ARGUMENT', `--shard must be K/N with K < N, got '${o.shard}'`);
          const [k, n] = [Number(m[1]), Number(m[2])];
          todo = todo.filter((_, i) => i % n === k);
        }
        process.stderr.write(`${items.length} images (${items.length - todo.length} with features, ${todo.length} to extract)\n`);
        const tag = intensityTag(intensity);
        const foreign = [...cached.values()].filter((r) => (r.intensity ?? 'none') !== tag).length;
        if (foreign > 0)
          throw new CxrError(
            'E_BAD_ARGUMENT',
            `${foreign} cached feature rows were extracted with ${tag === 'none' ? 'an intensity reference' : 'another intensity reference or none'}; this run's crops are ${tag === 'none' ? 'not matched' : `matched to reference ${tag}`}: use another --cache`,
          );
        if (todo.length > 0) {
          const engine = await loadEngine({
            classifierDir: resolve(o.classifier),
            segmenterDir: resolve(o.segmenter),
            tta: evalViews,
            threads: o.threads ? parseInteger('--threads', o.threads, 1) : undefined,
            ...(headTaps.length ? { featureTaps: headTaps } : {}),
            intensity: intensityMatchOf(intensity),
          });
          if (cachePath) await mkdir(resolve(cachePath, '..'), { recursive: true });
          const bar = new ProgressBar(process.stderr, 'features', todo.length);
          try {
            for (const item of todo) {
              const s = await engine.scoreImage(await item.image(), { tta: viewsFor(item.id), features: true });
              const row: FeatureRow = {
                id: item.id,
                label: item.label,
                source: item.source ?? '',
                split: where.get(item.id)!,
                views: s.features!,
                ...(tag !== 'none' ? { intensity: tag } : {}),
              };
              cached.set(item.id, row);
              if (cachePath) await appendFile(cachePath, `${featureCacheLine(row)}\n`);
              bar.tick(1);
            }
          } finally {
            await engine.close();
          }
          bar.finish();
        }
        if (o.extractOnly) return;
        const ready = (id: string): boolean => (cached.get(id)?.views.length ?? 0) >= viewsFor(id);
        const unscoredTest = o.partialTest ? items.filter((i) => where.get(i.id) === 'test' && !ready(i.id)) : [];
        if (unscoredTest.length > 0) {
          for (const s of new Set(unscoredTest.map((i) => i.source ?? ''))) {
            const left = unscoredTest.filter((i) => (i.source ?? '') === s).length;
            const all = items.filter((i) => (i.source ?? '') === s && where.get(i.id) === 'test').length;
            process.stderr.write(`warning: ${left} of ${all} ${s} test films have no features and are left out of the test figures\n`);
          }
          const left = new Set(unscoredTest.map((i) => i.id));
          items = items.filter((i) => !left.has(i.id));
        }
        const missing = items.filter((i) => !ready(i.id)).length;
        if (missing > 0) throw new CxrError('E_BAD_ARGUMENT', `${missing} images have no features yet (run the other shards, or without --shard)`);
        // a cache may hold more views than this run asks for: each row keeps the ones the engine would serve
        // subset and label come from --split and the dataset, never from the cache: a cache
        // extracted under another split would otherwise fit on films this version calls test
        const moved = items.filter((i) => cached.get(i.id)!.split !== where.get(i.id)).length;
        if (moved > 0)
          process.stderr.write(`note: ${moved} cached films belong to another subset in ${splitPath} than when they were extracted; ${splitPath} decides\n`);
        const rows = items.map((i) => {
          const r = cached.get(i.id)!;
          return { ...r, split: where.get(i.id)!, label: i.label, views: r.views.slice(0, viewsFor(i.id)) };
        });
        const train = rows.filter((r) => r.split === 'train');
        const validation = rows.filter((r) => r.split === 'validation');
        const test = rows.filter((r) => r.split === 'test');
        // each train row's first trainViews views (identity first), sharing the row's weight
        const fitOn = (rs: FeatureRow[], l2: number): Promise<HeadFit> => fitHeadOnRows(rs, weights, l2, trainViews);
        const folds = crossFit
          ? patientFolds(
              train.map((r) => ({ patient: patient.get(r.id)!, group: r.source })),
              crossFit,
              split.seed,
            )
          : null;
        const scoresBySet = (scored: ReadonlyMap<FeatureRow, number>): Record<string, SetScores> =>
          bySet([...scored.keys()], (mine) => ({ probabilities: mine.map((r) => scored.get(r)!), labels: mine.map((r) => r.label) }));
        const describe = (v: SelectionScore): string =>
          `AUC ${v.meanAuc.toFixed(4)}, specificity at recall ${targetRecall} ${v.meanSpecificity.toFixed(4)} (means over sets; ${Object.entries(v.perSet)
            .map(([k, a]) => `${k} AUC ${a.auc?.toFixed(4)}, specificity ${a.specificity?.toFixed(3)}`)
            .join('; ')})`;
        interface Candidate {
          fit: HeadFit;
          /** validation only */
          validation: SelectionScore;
          /** with --cross-fit: the train films out of fold and the validation films together */
          pooled: SelectionScore | null;
          outOfFoldAuc: Record<string, number | null> | null;
        }
        const chosenBy = (c: Candidate): SelectionScore => c.pooled ?? c.validation;
        let best: Candidate | null = null;
        for (const l2 of o.l2.split(',').map((v) => parseNumber('--l2', v))) {
          const fit = await fitOn(train, l2);
          const validationScored = new Map(validation.map((row) => [row, served(fit, row)] as const));
          const candidate: Candidate = {
            fit,
            validation: selectionScore(scoresBySet(validationScored), selectBy, targetRecall),
            pooled: null,
            outOfFoldAuc: null,
          };
          process.stderr.write(`l2 ${l2}: served validation ${describe(candidate.validation)}, ${fit.iterations} Newton steps\n`);
          if (folds) {
            // each fold is a whole fit (minutes on two cores with a wide head): say where it is
            const oof = await outOfFold(
              train,
              folds,
              (rs) => fitOn(rs, l2),
              served,
              (done, total) => process.stderr.write(`  l2 ${l2}: fold ${done}/${total} fitted and scored\n`),
            );
            const oofScored = new Map(train.map((row, i) => [row, oof[i]] as const));
            const alone = selectionScore(scoresBySet(oofScored), selectBy, targetRecall);
            candidate.outOfFoldAuc = Object.fromEntries(Object.entries(alone.perSet).map(([k, a]) => [k, a.auc]));
            candidate.pooled = selectionScore(scoresBySet(new Map([...oofScored, ...validationScored])), selectBy, targetRecall);
            process.stderr.write(
              `  ${crossFit}-fold out-of-fold train ${describe(alone)}\n  train out of fold and validation together: ${describe(candidate.pooled)}\n`,
            );
          }
          if (!best || ranksAbove(chosenBy(candidate), chosenBy(best))) best = candidate;
        }
        process.stderr.write(`chose l2 ${best!.fit.l2} by ${selectBy}${folds ? ' on the train films out of fold and the validation films' : ''}\n`);
        const fit = best!.fit;

        // the new version: the base model with the refitted head, saved as float16
        await initBackend();
        const base = await readManifest(resolve(o.classifier));
        // the features are those of the model the base serves: an int8-served base gives int8
        // features, which the float model.onnx written below does not reproduce
        const featurePrecision = base.quantization?.served ? 'int8' : 'float';
        if (featurePrecision === 'int8')
          process.stderr.write(
            `warning: ${base.version} serves int8, so the head was fitted to int8 features; the figures below are not what the new version's float model serves: quantize it and serve int8, or refit on a float base\n`,
          );
        const loaded = await loadModel(resolve(o.classifier));
        const model = headTaps.length ? withHeadTaps(loaded, headTaps) : loaded;
        const head = model.getLayer('probability');
        const [kernel] = head.getWeights();
        if (kernel.shape[0] !== fit.weights.length)
          throw new CxrError('E_MODEL_INVALID', `head has ${kernel.shape[0]} inputs, features have ${fit.weights.length}`);
        head.setWeights([tf.tensor2d(Float32Array.from(fit.weights), [fit.weights.length, 1]), tf.tensor1d([fit.bias])]);
        const version = o.version ?? versionFromDate(new Date());
        // built in a staging folder, renamed into place when complete (an existing version is refused)
        const staged = await stageVersion(outRoot, version);
        const dir = staged.dir;
        try {
          await saveModel(model, dir, { float16: true, metadata: { name: 'classifier', version, task: 'classifier' } });
          model.dispose();
          // the head as it ships (float16-rounded), so the figures below are the served ones
          const saved = await loadModel(dir);
          const [k16, b16] = saved.getLayer('probability').getWeights();
          const shipped = { weights: k16.dataSync() as Float32Array, bias: (b16.dataSync() as Float32Array)[0] };
          saved.dispose();
          await copyFile(splitPath, join(dir, 'split.csv'));

          const vRaw = validation.map((r) => served(shipped, r));
          const vLabels = validation.map((r) => r.label);
          const platt = fitCalibration(vRaw, vLabels, 'platt');
          const cal = (rs: FeatureRow[]) => rs.map((r) => applyCalibration(platt, served(shipped, r)));
          const vCal = cal(validation);
          const threshold = calibrateThreshold(vCal, vLabels, targetRecall);
          // the spread stays on the raw views, as the engine computes it
          const uncertainty = uncertaintyBound(validation.map((r) => meanAndSpread(viewProbabilities(shipped, r)).spread));
          const at = new Date().toISOString();
          const setFigures = (rs: FeatureRow[]) =>
            figures(
              cal(rs),
              rs.map((r) => r.label),
              threshold.threshold,
            );
          const sets: Record<string, { validation: MetricValues; test: MetricValues }> = {};
          for (const s of [...new Set(rows.map((r) => r.source))].sort()) {
            const t = test.filter((r) => r.source === s);
            sets[s] = { validation: setFigures(validation.filter((r) => r.source === s)), test: t.length ? setFigures(t) : {} };
          }
          const count = (rs: FeatureRow[], s: string) => rs.filter((r) => r.source === s).length;
          const scorer = `onnxruntime features of ${base.version} (${evalViews} TTA views) with the refitted head applied`;
          await writeManifest(dir, {
            name: 'classifier',
            version,
            architecture: base.architecture,
            architectureConfig: headTaps.length ? { ...base.architectureConfig, headTaps } : base.architectureConfig,
            inputSize: base.inputSize,
            ...(intensity ? { intensity } : {}),
            createdAt: at,
            training: {
              data: portablePath(dirs[0]),
              dataHash: base.training.dataHash,
              dataSize: rows.length,
              config: {
                method: 'head refit on frozen features (weighted L2 logistic regression, Newton), base network unchanged',
                featurePrecision,
                ...(headTaps.length ? { headTaps } : {}),
                l2: fit.l2,
                l2Tried: o.l2,
                setWeights: weights,
                trainViews,
                evalViews,
                select: selectBy,
                validationMeanSetAuc: best!.validation.meanAuc,
                validationMeanSetSpecificity: best!.validation.meanSpecificity,
                ...(best!.pooled
                  ? {
                      crossFit: {
                        folds: crossFit,
                        seed: split.seed,
                        chosenOn: 'train films out of fold and validation films',
                        meanSetAuc: best!.pooled.meanAuc,
                        meanSetSpecificity: best!.pooled.meanSpecificity,
                        perSet: Object.fromEntries(
                          Object.entries(best!.pooled.perSet).map(([k, a]) => [
                            k,
                            { outOfFoldAuc: best!.outOfFoldAuc?.[k] ?? null, pooledAuc: a.auc, pooledSpecificity: a.specificity },
                          ]),
                        ),
                      },
                    }
                  : {}),
                ...(o.maxTrainPerSet ? { maxTrainPerSet: Number(o.maxTrainPerSet) } : {}),
                ...(o.maxTestPerSet ? { maxTestPerSet: Number(o.maxTestPerSet) } : {}),
              },
              epochs: 0,
              split: { train: train.length, validation: validation.length, test: test.length, seed: split.seed, file: 'split.csv' },
              maskSource: `segmenter ${(await readManifest(resolve(o.segmenter))).version}`,
              initFrom: { name: 'classifier', version: base.version, location: portablePath(resolve(o.classifier)) },
              datasets: Object.keys(weights).map((name, k) => ({
                name,
                data: portablePath(dirs[k]),
                images: count(rows, name),
                weight: weights[name],
                train: count(train, name),
                validation: count(validation, name),
                test: count(test, name),
              })),
            },
            metrics: { validation: setFigures(validation), test: test.length ? setFigures(test) : {}, sets },
            threshold: {
              value: threshold.threshold,
              targetRecall,
              validationSensitivity: threshold.sensitivity,
              validationSpecificity: threshold.specificity,
              calibratedOn: { views: evalViews, scorer, subset: 'validation', n: validation.length, split: 'split.csv', at },
              ...(uncertainty ? { uncertainty } : {}),
            },
            calibration: {
              ...platt,
              fittedOn: { views: evalViews, subset: 'validation', n: validation.length, split: 'split.csv', at },
              eceBefore: calibrationReport(vRaw, vLabels).ece,
              eceAfter: calibrationReport(vCal, vLabels).ece,
            },
          });
          await exportModelVersion(dir, (line) => process.stderr.write(`${line}\n`));
          // the card documents the figures above (it is outside the manifest's hashes)
          await writeModelCard(dir, { dataDirs: dirs });
          const published = await staged.publish();
          process.stderr.write(`model card: ${join(published, MODEL_CARD_FILE)}\n`);
          if (o.report) {
            await mkdir(resolve(o.report), { recursive: true });
            const lines = [csvLine(['file', 'set', 'split', 'label', 'raw_probability', 'probability', 'decision'])];
            for (const r of [...validation, ...test]) {
              const raw = served(shipped, r);
              const p = applyCalibration(platt, raw);
              lines.push(csvLine([r.id, r.source, r.split, String(r.label), String(raw), String(p), p >= threshold.threshold ? 'positive' : 'negative']));
            }
            await writeFile(join(resolve(o.report), `${version}-per-image.csv`), `${lines.join('\n')}\n`);
          }
          for (const [s, m] of Object.entries(sets)) {
            const t = m.test as Record<string, unknown>;
            process.stderr.write(
              `${s}: test ${JSON.stringify({ auc: t.auc, accuracy: t.accuracy, recall: t.recall, specificity: t.specificity, ci95: t.ci95 })}\n`,
            );
          }
          process.stdout.write(`${published}\n`);
        } finally {
          await staged.discard();
        }
      }),
    );
}
