import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { csvLine, parseCsv } from '../../data/csv.js';
import { filesTrainedOn } from '../../data/leakage.js';
import { parseSplitName, readSplitFile, SPLIT_NAMES, type SplitName } from '../../data/split.js';
import {
  EVALUATIONS_DIR,
  isPopulation,
  locateModelVersion,
  POPULATIONS,
  portablePath,
  readManifest,
  sha256File,
  type Population,
} from '../../ml/model-store/index.js';
import { datasetName } from '../../data/multi-dataset.js';
import { loadSplitItems } from '../../ml/calibrate.js';
import { CxrError } from '../../errors.js';
import { parseProviders } from '../../inference/session.js';
import { loadEvalItems } from '../../ml/train/dataset-source.js';
import { action, collect, parseInteger } from '../run.js';
import { scoreItems } from '../score-items.js';
import type { EvaluationResult } from '../../ml/evaluate.js';
import { perImageCsv, writeCurvePlots } from '../../ml/evaluation-files.js';
import { checkOutputFile, checkOutputFolder } from '../output-paths.js';

interface EvaluateCliOptions {
  data: string[];
  models: string;
  segmenter?: string;
  classifier?: string;
  json?: boolean;
  plots?: string;
  maxImages?: string;
  window?: string;
  perImage?: string;
  tta?: string;
  threads?: string;
  providers?: string;
  split?: string;
  subset?: string;
  save?: boolean;
  population?: string;
}

function parsePopulation(v: string): Population {
  if (!isPopulation(v)) throw new CxrError('E_BAD_ARGUMENT', `--population must be one of ${POPULATIONS.join(', ')}, got '${v}'`);
  return v;
}

/** The keys `evaluate --json` prints, in this order. */
export function jsonSummary(r: EvaluationResult): Record<string, unknown> {
  return {
    auc: r.auc,
    accuracy: r.accuracy,
    precision: r.precision,
    recall: r.recall,
    specificity: r.specificity,
    f1: r.f1,
    threshold: r.threshold,
    ...(r.population ? { population: r.population.name } : {}),
    ...(r.unusedPopulations ? { unusedPopulations: r.unusedPopulations } : {}),
    confusion: r.confusion,
    n: r.n,
    ece: r.calibration.ece,
    ci95: r.ci95,
    ...(r.sets ? { sets: r.sets } : {}),
    ...('dice' in r ? { dice: r.dice, iou: r.iou } : {}),
  };
}

const f3 = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(3));

/** A figure with its 95% bootstrap interval when it has one: `0.874 (95% CI 0.806-0.935)`. */
export function withInterval(value: number | null | undefined, ci: Record<string, number>, key: string): string {
  const lo = ci[`${key}Lo`];
  const hi = ci[`${key}Hi`];
  return value == null || lo === undefined || hi === undefined ? f3(value) : `${f3(value)} (95% CI ${f3(lo)}-${f3(hi)})`;
}

/** Why a version with population thresholds decided at its pooled one, and how to choose. */
function unusedPopulationsNote(names: readonly string[]): string {
  return `the version's pooled threshold: it also has ${names.join(' and ')} thresholds, and no --population was given nor does every --data folder name one's validation sets`;
}

export function formatTable(r: EvaluationResult): string {
  const c = r.confusion;
  const rows: [string, string][] = [
    ['images', String(r.n)],
    [
      'threshold',
      `${r.threshold.toFixed(4)}${r.population ? ` (the ${r.population.name} threshold: ${r.population.why})` : r.targetRecall != null ? ` (calibrated for recall ${r.targetRecall})` : ''}${r.unusedPopulations ? `; ${unusedPopulationsNote(r.unusedPopulations)}` : ''}`,
    ],
    ['AUC', withInterval(r.auc, r.ci95, 'auc')],
    ['accuracy', withInterval(r.accuracy, r.ci95, 'accuracy')],
    ['recall (sensitivity)', withInterval(r.recall, r.ci95, 'recall')],
    ['specificity', withInterval(r.specificity, r.ci95, 'specificity')],
    ['precision', f3(r.precision)],
    ['F1', f3(r.f1)],
    ['confusion', `TP ${c.tp}  FP ${c.fp}  TN ${c.tn}  FN ${c.fn}`],
  ];
  rows.push(['calibration error (ECE)', `${f3(r.calibration.ece)} (10 bins; max ${f3(r.calibration.mce)})`]);
  rows.push(['intervals', '95% percentile bootstrap over the images (1000 resamples, seed 7)']);
  for (const [name, s] of Object.entries(r.sets ?? {}))
    rows.push([
      `set ${name}`,
      `n ${s.n}, AUC ${withInterval(s.auc, s.ci95, 'auc')}, recall ${withInterval(s.recall, s.ci95, 'recall')}, specificity ${withInterval(s.specificity, s.ci95, 'specificity')}, ECE ${f3(s.ece)}`,
    ]);
  if ('dice' in r) rows.push(['lung Dice', f3(r.dice)], ['lung IoU', f3(r.iou)]);
  if (r.calibratedHere != null) rows.push([`threshold for recall ${r.targetRecall} here`, r.calibratedHere.toFixed(4)]);
  rows.push(['models', `segmenter ${r.models.segmenter.version}, classifier ${r.models.classifier.version} (${r.scorer})`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`;
}

/** The per-image CSV of an evaluation (src/ml/evaluation-files.ts). */
function imagesCsv(r: EvaluationResult): string {
  return perImageCsv(r.images, r.threshold);
}

function writePlots(dir: string, r: EvaluationResult): Promise<string[]> {
  return writeCurvePlots(dir, {
    scores: r.images.map((i) => i.probability),
    labels: r.images.map((i) => i.label),
    threshold: r.threshold,
    version: r.models.classifier.version,
    calibration: r.calibration,
  });
}

/**
 * Says when the images evaluated trained the classifier (its own split.csv) or, for a version's
 * test split, the model it was fine-tuned from (training.initFrom.testOverlap): the figures are
 * optimistic then.
 */
/** The classifier version folder evaluate scores with (as the engine resolves it), or null. */
async function classifierDirOf(o: EvaluateCliOptions): Promise<string | null> {
  return o.classifier ? resolve(o.classifier) : await locateModelVersion(o.models, 'classifier').catch(() => null);
}

/**
 * `--save`: the plots, the per-image CSV and the summary go into the classifier version's
 * evaluations/<time>-<subset>/ folder, which its manifest's hashes leave out (the version
 * itself is not changed by being evaluated).
 */
async function saveEvaluation(o: EvaluateCliOptions, result: EvaluationResult, subset: SplitName | null): Promise<string> {
  const dir = await classifierDirOf(o);
  if (!dir) throw new CxrError('E_MODEL_MISSING', '--save: no classifier version folder to save into');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = join(dir, EVALUATIONS_DIR, `${stamp}-${subset ?? 'all'}`);
  await mkdir(out, { recursive: true });
  await writePlots(out, result);
  await writeFile(join(out, 'per-image.csv'), imagesCsv(result));
  // the split's rows of the images evaluated kept beside the figures (a pool's split may
  // exist nowhere else; all of it would weigh more than the figures), with the whole file's
  // sha256, and paths relative to a named data root: the folder is committed with the version
  const split = o.split ? await keepSplitRows(resolve(o.split), new Set(result.images.map((i) => i.id)), join(out, 'split.csv')) : null;
  const summary = {
    ...jsonSummary(result),
    data: o.data.map((d) => portablePath(resolve(d))),
    datasets: o.data.map((d) => datasetName(d)),
    split: split ? 'split.csv' : null,
    ...(split ? { splitSha256: split.sha256, splitRows: `the ${split.kept} of its ${split.rows} rows naming the images evaluated` } : {}),
    subset,
    models: result.models,
    scorer: result.scorer,
    at: new Date().toISOString(),
  };
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return out;
}

/** Writes the rows of a split CSV naming `ids` (header kept) to `out`; the whole file's sha256 and row counts. */
async function keepSplitRows(path: string, ids: ReadonlySet<string>, out: string): Promise<{ sha256: string; rows: number; kept: number }> {
  const t = parseCsv(await readFile(path, 'utf8'), 'split.csv');
  const file = t.header.indexOf('file');
  const kept = t.rows.filter((r) => ids.has(r.fields[file]));
  await writeFile(out, `${[csvLine(t.header), ...kept.map((r) => csvLine(r.fields))].join('\n')}\n`);
  return { sha256: await sha256File(path), rows: t.rows.length, kept: kept.length };
}

async function leakageWarnings(o: EvaluateCliOptions, files: string[], subset: SplitName | null): Promise<string[]> {
  const dir = await classifierDirOf(o);
  if (!dir || !existsSync(join(dir, 'manifest.json'))) return [];
  const out: string[] = [];
  const m = await readManifest(dir);
  if (subset !== 'train' && subset !== 'validation' && existsSync(join(dir, 'split.csv'))) {
    const split = await readSplitFile(join(dir, 'split.csv'));
    // a pooled version's split names files by set (nih-cxr8-pneumonia/images/x.png); one folder
    // scored without --split names them as the folder does (images/x.png): compare like with like
    const prefix = split.assignments.some((a) => a.dataset) && o.data.length === 1 ? `${datasetName(o.data[0])}/` : '';
    const seen = filesTrainedOn(
      files.map((f) => (prefix && !f.startsWith(prefix) ? `${prefix}${f}` : f)),
      split,
    );
    if (seen.length > 0)
      out.push(
        `${seen.length} of the ${files.length} images evaluated trained or validated classifier ${m.version} (its split.csv): these figures are optimistic`,
      );
  }
  const overlap = m.training?.initFrom?.testOverlap;
  if (subset === 'test' && overlap && overlap.images > 0) {
    out.push(
      `${overlap.images} of ${overlap.of} test images of ${m.version} (${overlap.patients} patients) trained the model it was fine-tuned from (${m.training.initFrom?.version ?? 'initFrom'}): these figures are optimistic`,
    );
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('run the full pipeline (segment, crop, classify) over a dataset folder and report classification and mask metrics')
    .requiredOption('--data <dir>', 'dataset folder: images/, labels.csv, optional masks/ (repeatable: several folders are scored as one pool)', collect, [])
    .option('--models <dir>', 'models folder holding segmenter/ and classifier/ versions', 'models')
    .option('--segmenter <dir>', 'a segmenter version folder (overrides --models)')
    .option('--classifier <dir>', 'a classifier version folder (overrides --models)')
    .option('--json', 'print one JSON object instead of a table')
    .option('--plots <dir>', 'write ROC and precision-recall curves and the reliability diagram (roc.png, pr.png, reliability.png) into this folder')
    .option('--max-images <n>', 'evaluate at most this many images')
    .option('--split <csv>', "only the images a training split assigns to --subset (the split.csv in a model version's folder)")
    .option('--subset <name>', `with --split: ${SPLIT_NAMES.join('|')}`, 'test')
    .option('--window <policy>', 'DICOM window policy: auto|lung|header|minmax (default auto)')
    .option('--save', "also store the plots, per-image results and summary in the classifier version's evaluations/<time>-<subset>/ folder")
    .option('--per-image <csv>', 'write file, label (normal|pneumonia), probability and decision of every image to this CSV file')
    .option('--tta <n>', 'test-time-augmented views (default 4, as analyze)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--providers <list>', 'execution providers in order, e.g. cuda,cpu (default cpu)')
    .option(
      '--population <name>',
      `decide at this population's threshold (${POPULATIONS.join('|')}): image folders carry no ages; by default a version with per-population thresholds uses the population whose validation sets name every --data folder`,
    )
    .action(
      action(async (o: EvaluateCliOptions) => {
        const population = o.population === undefined ? undefined : parsePopulation(o.population);
        const tta = o.tta === undefined ? undefined : parseInteger('--tta', o.tta, 1);
        const threads = o.threads === undefined ? undefined : parseInteger('--threads', o.threads, 1);
        const providers = o.providers === undefined ? undefined : parseProviders(o.providers);
        const subset = o.split ? parseSplitName(o.subset ?? 'test') : null;
        if (o.perImage) await checkOutputFile('--per-image', o.perImage);
        if (o.plots) await checkOutputFolder('--plots', o.plots);
        const dirs = o.data.map((d) => resolve(d));
        let items =
          o.split && subset
            ? await loadSplitItems(dirs, resolve(o.split), subset, { window: o.window })
            : await loadEvalItems(dirs, {
                // a split names whole patients: cap after selecting them, not before
                maxImages: o.maxImages ? parseInteger('--max-images', o.maxImages, 1) : undefined,
                window: o.window,
              });
        if (o.split && o.maxImages) items = items.slice(0, parseInteger('--max-images', o.maxImages, 1));
        if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${o.data.join(', ')} has no images`);
        // the serving engine, so the decisions reported here are the ones `analyze` and the service make
        const result = await scoreItems(
          items,
          {
            modelsDir: o.models,
            segmenterDir: o.segmenter,
            classifierDir: o.classifier,
            tta,
            threads,
            providers,
            population,
            datasets: o.data.map((d) => datasetName(d)),
          },
          { task: 'evaluate', verb: 'evaluating', what: 'images' },
        );
        // image folders carry no ages: say so where a population's own threshold would decide otherwise
        if (result.unusedPopulations)
          process.stderr.write(
            `warning: decided at ${unusedPopulationsNote(result.unusedPopulations)}; pass --population ${result.unusedPopulations.join('|')} to decide at one of those\n`,
          );
        if (o.perImage) {
          const path = resolve(o.perImage);
          try {
            await writeFile(path, imagesCsv(result));
          } catch (e) {
            throw new CxrError('E_BAD_ARGUMENT', `cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
          }
          process.stderr.write(`per-image results: ${path}\n`);
        }
        if (o.plots) {
          const files = await writePlots(resolve(o.plots), result);
          process.stderr.write(`plots: ${files.join(', ')}\n`);
        }
        if (o.save) process.stderr.write(`saved: ${await saveEvaluation(o, result, subset)}\n`);
        for (const w of await leakageWarnings(
          o,
          items.map((i) => i.id),
          subset,
        ))
          process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(o.json ? `${JSON.stringify(jsonSummary(result))}\n` : formatTable(result));
      }),
    );
}
