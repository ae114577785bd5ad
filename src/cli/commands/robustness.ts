/**
 * `robustness`: the same films scored through the served pipeline as they are and once per
 * acquisition shift (src/data/acquisition-shifts.ts), each set's figures at the threshold the
 * version ships, and how many decisions each shift changed. A site can see before go-live
 * which differences of its own films (their look-up curve, detector, compression, framing)
 * the shipped operating point tolerates, and the model card's failure modes get numbers.
 */
import type { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ACQUISITION_SHIFTS, applyShift, parseShifts, type AcquisitionShift } from '../../data/acquisition-shifts.js';
import { datasetName } from '../../data/multi-dataset.js';
import { parseSplitName, SPLIT_NAMES } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { loadSplitItems } from '../../ml/calibrate.js';
import type { EvaluationResult } from '../../ml/evaluate.js';
import { EVALUATIONS_DIR, isPopulation, locateModelVersion, POPULATIONS, portablePath, type Population } from '../../ml/model-store/index.js';
import { ROBUSTNESS_FILE, robustnessSets, type RobustnessReport } from '../../ml/robustness.js';
import { loadEvalItems } from '../../ml/train/dataset-source.js';
import { action, collect, parseInteger } from '../run.js';
import { evenlySpread, scoreItems } from '../score-items.js';

interface RobustnessCliOptions {
  data: string[];
  models: string;
  segmenter?: string;
  classifier?: string;
  split?: string;
  subset: string;
  shifts: string;
  maxImages?: string;
  population?: string;
  tta?: string;
  threads?: string;
  json?: boolean;
  list?: boolean;
  save?: boolean;
}

/**
 * `--save`: the report goes into the classifier version's evaluations/<time>-robustness-<subset>/
 * folder, beside evaluate's (left out of the manifest's hashes), where its model card finds it.
 */
async function saveReport(o: RobustnessCliOptions, report: RobustnessReport): Promise<string> {
  const dir = o.classifier ? resolve(o.classifier) : await locateModelVersion(o.models, 'classifier').catch(() => null);
  if (!dir) throw new CxrError('E_MODEL_MISSING', '--save: no classifier version folder to save into');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = join(dir, EVALUATIONS_DIR, `${stamp}-robustness-${report.subset ?? 'all'}`);
  await mkdir(out, { recursive: true });
  const saved = {
    ...report,
    data: o.data.map((d) => portablePath(resolve(d))),
    split: o.split ? portablePath(resolve(o.split)) : null,
    at: new Date().toISOString(),
  };
  await writeFile(join(out, ROBUSTNESS_FILE), `${JSON.stringify(saved, null, 2)}\n`);
  return out;
}

const f3 = (v: number | null): string => (v == null ? 'n/a' : v.toFixed(3));
const signed = (v: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`;

export function formatRobustness(r: RobustnessReport): string {
  const out: string[] = [];
  out.push(`classifier ${r.classifier}, segmenter ${r.segmenter}${r.subset ? `, ${r.subset} split` : ''}, TTA ${r.tta ?? 'default'}`);
  for (const s of r.sets) {
    out.push('');
    out.push(
      `set ${s.set}: ${s.asIs.n} films (${s.pneumonia} pneumonia), decided at ${r.population ? `the ${r.population} threshold ` : 'threshold '}${s.threshold.toFixed(4)}`,
    );
    const head = ['shift', 'AUC', 'recall', 'specificity', 'flagged', 'mean Δp', 'mean |Δp|', 'changed', 'normals flagged', 'pneumonia missed'];
    const rows: string[][] = [
      ['as they are', f3(s.asIs.auc), f3(s.asIs.recall), f3(s.asIs.specificity), f3(s.asIs.flaggedShare), '', '', '', '', ''],
      ...s.shifts.map(({ shift, figures: f }) => [
        shift,
        f3(f.auc),
        f3(f.recall),
        f3(f.specificity),
        f3(f.flaggedShare),
        signed(f.meanDelta),
        f.meanAbsDelta.toFixed(3),
        String(f.changed),
        `+${f.normalsNewlyFlagged}`,
        `+${f.pneumoniaNewlyMissed}`,
      ]),
    ];
    const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
    const line = (cells: string[]) =>
      cells
        .map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c])))
        .join('  ')
        .trimEnd();
    out.push(line(head), ...rows.map(line));
  }
  const used = new Set(r.sets.flatMap((s) => s.shifts.map((x) => x.shift)));
  out.push('');
  out.push('changed: decisions that differ from the same film as it is; normals flagged / pneumonia missed: of those, the new false positives / new misses');
  for (const s of ACQUISITION_SHIFTS) if (used.has(s.name)) out.push(`  ${s.name}: ${s.emulates}`);
  return `${out.join('\n')}\n`;
}

function listShifts(): string {
  const w = Math.max(...ACQUISITION_SHIFTS.map((s) => s.name.length));
  return `${ACQUISITION_SHIFTS.map((s) => `${s.name.padEnd(w)}  ${s.emulates}`).join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('robustness')
    .description(
      "score the same films as they are and under named acquisition shifts (look-up curve, contrast, blur, compression, noise, rotation, framing, resolution) and report each set's figures at the shipped threshold and the decisions each shift changed",
    )
    .option('--data <dir>', 'dataset folder: images/ and labels.csv (repeatable: a pool, reported per set)', collect, [])
    .option('--models <dir>', 'models folder holding segmenter/ and classifier/ versions', 'models')
    .option('--segmenter <dir>', 'a segmenter version folder (overrides --models)')
    .option('--classifier <dir>', 'a classifier version folder (overrides --models)')
    .option('--split <csv>', "only the images a training split assigns to --subset (the split.csv in a model version's folder)")
    .option('--subset <name>', `with --split: ${SPLIT_NAMES.join('|')}`, 'validation')
    .option('--shifts <list>', `all, or a comma-separated list of: ${ACQUISITION_SHIFTS.map((s) => s.name).join(', ')}`, 'all')
    .option('--max-images <n>', 'score at most this many images, spread evenly over the set (the same ones under every shift)')
    .option('--population <name>', `decide at this population's threshold (${POPULATIONS.join('|')}), as evaluate does`)
    .option('--tta <n>', 'test-time-augmented views (default 4, as analyze)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--json', 'print one JSON object instead of tables')
    .option('--save', "also store the report in the classifier version's evaluations/<time>-robustness-<subset>/ folder, where its model card shows it")
    .option('--list', 'list the shifts and what each emulates, then exit (no models or data needed)')
    .action(
      action(async (o: RobustnessCliOptions) => {
        if (o.list) {
          process.stdout.write(listShifts());
          return;
        }
        if (o.data.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'robustness needs --data (or --list)');
        const shifts = parseShifts(o.shifts);
        let population: Population | undefined;
        if (o.population !== undefined) {
          if (!isPopulation(o.population)) throw new CxrError('E_BAD_ARGUMENT', `--population must be one of ${POPULATIONS.join(', ')}, got '${o.population}'`);
          population = o.population;
        }
        const tta = o.tta === undefined ? undefined : parseInteger('--tta', o.tta, 1);
        const threads = o.threads === undefined ? undefined : parseInteger('--threads', o.threads, 1);
        const max = o.maxImages === undefined ? undefined : parseInteger('--max-images', o.maxImages, 1);
        const subset = o.split ? parseSplitName(o.subset) : null;
        const dirs = o.data.map((d) => resolve(d));
        let items = o.split && subset ? await loadSplitItems(dirs, resolve(o.split), subset) : await loadEvalItems(dirs);
        // spread over the set, not its first files: folders sort normal films apart from pneumonias
        if (max !== undefined) items = evenlySpread(items, max);
        if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${o.data.join(', ')} has no images`);
        const engine = {
          modelsDir: o.models,
          segmenterDir: o.segmenter,
          classifierDir: o.classifier,
          tta,
          threads,
          population,
          datasets: o.data.map((d) => datasetName(d)),
        };
        // ground-truth masks are not what this measures: leave them out of every run
        const plain = items.map(({ mask: _mask, ...rest }) => rest);
        // image folders carry no ages: a run decided at the pooled threshold is not what the version ships for a population
        const pooledSave = (unused: readonly string[]) =>
          new CxrError(
            'E_BAD_ARGUMENT',
            `--save: these films would be decided at the version's pooled threshold, not at its ${unused.join(' or ')} one (no --data folder names one's validation sets); pass --population ${unused.join('|')} so the card shows the threshold a site would get`,
          );
        const asIs = await scoreItems(plain, engine, { task: 'as they are', verb: 'scoring', what: 'films as they are' }, (scorer) => {
          // refused before the first film is scored when the version's rule already says so
          if (o.save && scorer.pooledBeforeScoring) throw pooledSave(scorer.pooledBeforeScoring);
        });
        if (asIs.unusedPopulations) {
          if (o.save) throw pooledSave(asIs.unusedPopulations);
          process.stderr.write(
            `warning: decided at the version's pooled threshold, not its ${asIs.unusedPopulations.join(' or ')} one; pass --population ${asIs.unusedPopulations.join('|')} to decide at one of those\n`,
          );
        }
        const shifted: { shift: AcquisitionShift; result: EvaluationResult }[] = [];
        for (const [k, shift] of shifts.entries()) {
          const moved = plain.map((i) => ({ ...i, image: async () => applyShift(await i.image(), shift) }));
          const label = `${shift.name} (${k + 1}/${shifts.length})`;
          shifted.push({ shift, result: await scoreItems(moved, engine, { task: label, verb: 'scoring', what: `films shifted by ${shift.name}` }) });
        }
        const report: RobustnessReport = {
          classifier: asIs.models.classifier.version,
          segmenter: asIs.models.segmenter.version,
          precision: { classifier: asIs.models.classifier.precision ?? 'float', segmenter: asIs.models.segmenter.precision ?? 'float' },
          subset,
          population: asIs.population?.name ?? null,
          tta: tta ?? null,
          sets: robustnessSets(items, dirs, asIs, shifted),
        };
        if (o.save) process.stderr.write(`saved: ${await saveReport(o, report)}\n`);
        process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatRobustness(report));
      }),
    );
}
