import type { Command } from 'commander';
import { resolve } from 'node:path';
import { parseSplitName, SPLIT_NAMES } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { DEFAULT_TTA } from '../../inference/engine.js';
import { locateModelVersion } from '../../ml/model-store/index.js';
import { parseProviders } from '../../inference/session.js';
import { action, collect, parseInteger, parseNumber } from '../run.js';
import { populationsFromScores, recalibrate } from '../recalibrate.js';
import { parsePopulationMap } from '../../ml/calibrate.js';
import { readManifest, servedCalibration } from '../../ml/model-store/index.js';
import { chooseThreshold } from '../../inference/population.js';
import type { CalibrationInfo, ThresholdInfo } from '../../ml/model-store/index.js';

interface CalibrateCliOptions {
  data: string[];
  split: string;
  subset: string;
  models: string;
  segmenter?: string;
  classifier?: string;
  targetRecall: string;
  tta?: string;
  window?: string;
  threads?: string;
  providers?: string;
  dryRun?: boolean;
  fit?: string;
  version?: string;
  population: string[];
  scores: string[];
  precision?: string;
}

const FITS = ['platt', 'temperature', 'none'] as const;

const f4 = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(4));

export function register(program: Command): void {
  program
    .command('calibrate')
    .description(
      "re-pick the classifier's decision threshold on the probabilities the served pipeline (ONNX Runtime, TTA) gives for a split's images; " +
        'writes it as a NEW version <version>-rN beside the calibrated one (derivedFrom names it), which stays untouched and active until you activate the new one',
    )
    .option('--data <dir>', 'dataset folder: images/, labels.csv (repeat for the sets of a pooled split; required unless --scores)', collect, [])
    .option('--split <csv>', 'split CSV (file,patient_id,label,split) as train writes it (required unless --scores)')
    .option('--subset <name>', `rows of the split to calibrate on: ${SPLIT_NAMES.join('|')}`, 'validation')
    .option('--models <dir>', 'models folder holding segmenter/ and classifier/ versions', 'models')
    .option('--segmenter <dir>', 'a segmenter version folder (overrides --models)')
    .option('--classifier <dir>', 'the classifier version folder to calibrate (overrides --models)')
    .option('--target-recall <r>', 'recall the threshold must reach on the subset', '0.95')
    .option('--tta <n>', `test-time-augmented views (default ${DEFAULT_TTA}, as analyze and the service)`)
    .option('--window <policy>', 'DICOM window policy: auto|lung|header|minmax (default auto)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--providers <list>', 'execution providers in order, e.g. cuda,cpu (default cpu)')
    .option('--version <name>', 'name of the new version (default: the next <version>-rN)')
    .option('--dry-run', 'print the new threshold without writing a version')
    .option(
      '--population <set=pop>',
      "also pick one threshold per population (adult|pediatric) on that dataset folder's rows of a pooled split, e.g. nih-cxr8-pneumonia=adult (repeat); the engine applies it by the study's patient age, the lowest for an unknown age",
      collect,
      [],
    )
    .option(
      '--scores <csv>',
      "with --population: pick on the version's saved per-image CSVs (evaluate --save / --per-image on the subset) instead of scoring again; repeat per file",
      collect,
      [],
    )
    .option('--precision <p>', 'with --scores: float|int8, the precision the scores were served at (default: what the version serves)')
    .option(
      '--fit <method>',
      `probability calibration fitted on the same images before the threshold: ${FITS.join('|')} (none removes it; default platt when scoring; ` +
        "with --scores, fitted on the saved raw probabilities for the precision's own model, and without --fit the version's calibration is kept; " +
        'with --population, each population also gets its own, fitted on its rows alone)',
    )
    .action(
      action(async (o: CalibrateCliOptions) => {
        const subset = parseSplitName(o.subset);
        const targetRecall = parseNumber('--target-recall', o.targetRecall);
        if (!(targetRecall > 0 && targetRecall <= 1)) throw new CxrError('E_BAD_ARGUMENT', `--target-recall must be in (0,1], got ${o.targetRecall}`);
        const fit = o.fit === undefined ? undefined : FITS.find((f) => f === o.fit);
        if (o.fit !== undefined && !fit) throw new CxrError('E_BAD_ARGUMENT', `--fit must be one of ${FITS.join(', ')}, got '${o.fit}'`);
        const views = o.tta === undefined ? DEFAULT_TTA : parseInteger('--tta', o.tta, 1);
        const threads = o.threads === undefined ? undefined : parseInteger('--threads', o.threads, 1);
        const providers = o.providers === undefined ? undefined : parseProviders(o.providers);

        const populations = parsePopulationMap(o.population);
        // the folder scored is the folder written: resolve it once, as the engine would
        const classifierDir = o.classifier ? resolve(o.classifier) : await locateModelVersion(o.models, 'classifier');
        if (o.scores.length > 0) {
          if (populations.size === 0) throw new CxrError('E_BAD_ARGUMENT', '--scores needs --population SET=POP');
          const m = await readManifest(classifierDir);
          const precision = o.precision ?? (m.quantization?.served ? 'int8' : 'float');
          if (precision !== 'float' && precision !== 'int8') throw new CxrError('E_BAD_ARGUMENT', `--precision must be float or int8, got '${o.precision}'`);
          const r = await populationsFromScores({
            classifierDir,
            scores: o.scores,
            populations,
            targetRecall,
            precision,
            subset,
            write: o.dryRun ? 'none' : 'derive',
            version: o.version,
            fit,
          });
          const c = r.probabilityCalibration;
          const calibrationLine =
            c === undefined
              ? []
              : [
                  c
                    ? `calibration       ${precision} model, ${calibrationText(c)}`
                    : `calibration       none (${precision} model: thresholds on raw probabilities)`,
                ];
          process.stdout.write(
            `${[`classifier        ${r.version} (${classifierDir}; ${precision} threshold block)`, `images            ${r.n} (${subset}, saved scores)`, ...calibrationLine, ...populationLines(r.threshold, c === undefined ? servedCalibration(m, precision) : c), ...uncertaintyLines(r.threshold)].join('\n')}\n`,
          );
          warnPopulations(r.threshold);
          if (r.written) process.stdout.write(`new version       ${r.written.version} (${r.written.dir})\n`);
          process.stderr.write(r.written ? `wrote ${r.written.dir}; ${r.version} is unchanged\n` : 'dry run: no version written\n');
          return;
        }
        if (!o.data.length || !o.split) throw new CxrError('E_BAD_ARGUMENT', 'calibrate needs --data and --split (or --scores with --population)');
        const r = await recalibrate({
          populations,
          dataDir: o.data,
          splitPath: o.split,
          subset,
          classifierDir,
          engine: { modelsDir: o.models, segmenterDir: o.segmenter, threads, providers },
          targetRecall,
          views,
          window: o.window,
          write: o.dryRun ? 'none' : 'derive',
          version: o.version,
          fit: fit ?? 'platt',
        });
        const cal = r.calibration;
        const old = r.previous;
        const c = cal.confusion;
        const lines = [
          `classifier        ${r.version} (${classifierDir})`,
          `images            ${r.n} (${subset}; ${c.tp + c.fn} pneumonia)`,
          `threshold         ${f4(old?.value)} -> ${f4(cal.threshold)} (target recall ${targetRecall}, ${views} views)`,
          `recall at old     ${f4(r.recallAtPrevious)}`,
          `sensitivity       ${f4(old?.validationSensitivity)} -> ${f4(cal.sensitivity)}`,
          `specificity       ${f4(old?.validationSpecificity)} -> ${f4(cal.specificity)}`,
          `confusion         TP ${c.tp}  FP ${c.fp}  TN ${c.tn}  FN ${c.fn}`,
          r.probabilityCalibration
            ? `calibration       ${calibrationText(r.probabilityCalibration)}`
            : 'calibration       none (threshold on raw probabilities)',
        ];
        lines.push(...populationLines(r.threshold, r.probabilityCalibration), ...uncertaintyLines(r.threshold));
        if (r.written) lines.push(`new version       ${r.written.version} (${r.written.dir})`);
        process.stdout.write(`${lines.join('\n')}\n`);
        for (const w of r.threshold.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
        warnPopulations(r.threshold);
        if (populations.size && (await readManifest(classifierDir)).quantization?.served) {
          process.stderr.write(
            'warning: this version serves its int8 model, which keeps its own threshold block: the populations above were picked on model.onnx and go with it; ' +
              'pick the int8 ones with --scores on int8 evaluations (evaluate --save)\n',
          );
        }
        process.stderr.write(
          r.written
            ? `wrote ${r.written.dir}; ${r.version} is unchanged. Serve the new one with \`cxr-triage models activate classifier ${r.written.version} --models ${o.models}\`\n`
            : 'dry run: no version written\n',
        );
      }),
    );
}

function calibrationText(c: CalibrationInfo): string {
  return `${c.method}: p' = sigmoid(${f4(c.a)} logit(p) + ${f4(c.b)}); ECE ${f4(c.eceBefore)} -> ${f4(c.eceAfter)}`;
}

/**
 * One line per population threshold, and what a study of unknown age gets. `calibration`: the
 * one the threshold block's model applies, on whose scale populations without their own are.
 */
function populationLines(t: ThresholdInfo, calibration: CalibrationInfo | null): string[] {
  const pops = Object.entries(t.populations ?? {});
  if (pops.length === 0) return [];
  const lines = pops.map(
    ([k, p]) =>
      `${k.padEnd(18)}${f4(p!.value)} (${p!.datasets.join(', ')}: ${p!.n} images, ${p!.positives} pneumonia; sensitivity ${f4(p!.validationSensitivity)}, specificity ${f4(p!.validationSpecificity)}` +
      `${p!.calibration ? `; its own calibration ${calibrationText(p!.calibration)}` : ''})`,
  );
  // the engine's own rule (compared on the raw scale when populations have calibrations of their own)
  const unknown = chooseThreshold(t, {}, calibration);
  lines.push(`unknown age       ${f4(unknown.value)} (${unknown.thresholdOf}'s, the lowest: recall first)`);
  return lines;
}

/** The uncertainty bound set with the threshold, or why there is none. */
function uncertaintyLines(t: ThresholdInfo): string[] {
  const u = t.uncertainty;
  if (!u) return ['uncertain above   (no TTA spreads: the engine keeps its default bound)'];
  return [`uncertain above   TTA spread ${f4(u.bound)} (quantile ${u.quantile} of ${u.n} images; largest ${f4(u.largest)})`];
}

function warnPopulations(t: ThresholdInfo): void {
  for (const [k, p] of Object.entries(t.populations ?? {})) for (const w of p!.warnings ?? []) process.stderr.write(`warning: ${k}: ${w}\n`);
}
