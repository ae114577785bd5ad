import type { Command } from 'commander';
import { resolve } from 'node:path';
import { readSplitFile, SPLIT_NAMES, type SplitName } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { DEFAULT_TTA } from '../../inference/engine.js';
import { locateModelVersion } from '../../inference/models.js';
import { parseProviders } from '../../inference/session.js';
import { itemsInSubset, recalibratedThreshold } from '../../ml/calibrate.js';
import { readManifest, writeManifest } from '../../ml/manifest.js';
import { calibrateThreshold, type Calibration } from '../../ml/metrics.js';
import { loadEvalItems } from '../../ml/train/dataset-source.js';
import { action, parseInteger, parseNumber } from '../run.js';
import { scoreItems } from '../score-items.js';

interface CalibrateCliOptions {
  data: string;
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
}

const f4 = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(4));

export function register(program: Command): void {
  program
    .command('calibrate')
    .description("re-pick the classifier's decision threshold on the probabilities the served pipeline (ONNX Runtime, TTA) gives for a split's images, and write it into the classifier manifest")
    .requiredOption('--data <dir>', 'dataset folder: images/, labels.csv')
    .requiredOption('--split <csv>', 'split CSV (file,patient_id,label,split) as train writes it')
    .option('--subset <name>', `rows of the split to calibrate on: ${SPLIT_NAMES.join('|')}`, 'validation')
    .option('--models <dir>', 'models folder holding segmenter/ and classifier/ versions', 'models')
    .option('--segmenter <dir>', 'a segmenter version folder (overrides --models)')
    .option('--classifier <dir>', 'the classifier version folder to calibrate (overrides --models)')
    .option('--target-recall <r>', 'recall the threshold must reach on the subset', '0.95')
    .option('--tta <n>', `test-time-augmented views (default ${DEFAULT_TTA}, as analyze and the service)`)
    .option('--window <policy>', 'DICOM window policy: auto|lung|header|minmax (default auto)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--providers <list>', 'execution providers in order, e.g. cuda,cpu (default cpu)')
    .option('--dry-run', 'print the new threshold without writing the manifest')
    .action(
      action(async (o: CalibrateCliOptions) => {
        const subset = o.subset as SplitName;
        if (!SPLIT_NAMES.includes(subset)) throw new CxrError('E_BAD_ARGUMENT', `--subset must be one of ${SPLIT_NAMES.join(', ')}, got '${o.subset}'`);
        const targetRecall = parseNumber('--target-recall', o.targetRecall);
        if (!(targetRecall > 0 && targetRecall <= 1)) throw new CxrError('E_BAD_ARGUMENT', `--target-recall must be in (0,1], got ${o.targetRecall}`);
        const views = o.tta === undefined ? DEFAULT_TTA : parseInteger('--tta', o.tta, 1);
        const threads = o.threads === undefined ? undefined : parseInteger('--threads', o.threads, 1);
        const providers = o.providers === undefined ? undefined : parseProviders(o.providers);

        const splitPath = resolve(o.split);
        const split = await readSplitFile(splitPath);
        const items = itemsInSubset(await loadEvalItems(resolve(o.data), { window: o.window }), split, subset);
        if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${o.split} assigns no images to '${subset}'`);
        if (!items.some((i) => i.label >= 0.5)) throw new CxrError('E_BAD_DATASET', `the ${subset} images hold no pneumonia case: recall is undefined there`);

        // the folder scored is the folder written: resolve it once, as the engine would
        const classifierDir = o.classifier ? resolve(o.classifier) : await locateModelVersion(o.models, 'classifier');
        const result = await scoreItems(
          items,
          { modelsDir: o.models, segmenterDir: o.segmenter, classifierDir, tta: views, threads, providers },
          { task: 'calibrate', verb: 'scoring', what: `${subset} images` },
        );

        const cal: Calibration = calibrateThreshold(
          result.images.map((i) => i.probability),
          result.images.map((i) => i.label),
          targetRecall,
        );
        const threshold = recalibratedThreshold(cal, {
          views,
          scorer: 'onnxruntime',
          subset,
          n: items.length,
          split: splitPath,
          at: new Date().toISOString(),
        });
        const { files: _files, ...manifest } = await readManifest(classifierDir);
        const old = manifest.threshold;
        const c = cal.confusion;
        const lines = [
          `classifier        ${manifest.version} (${classifierDir})`,
          `images            ${items.length} (${subset}; ${c.tp + c.fn} pneumonia)`,
          `threshold         ${f4(old?.value)} -> ${f4(cal.threshold)} (target recall ${targetRecall}, ${views} views)`,
          `recall at old     ${f4(result.recall)}`,
          `sensitivity       ${f4(old?.validationSensitivity)} -> ${f4(cal.sensitivity)}`,
          `specificity       ${f4(old?.validationSpecificity)} -> ${f4(cal.specificity)}`,
          `confusion         TP ${c.tp}  FP ${c.fp}  TN ${c.tn}  FN ${c.fn}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
        if (o.dryRun) {
          process.stderr.write('dry run: manifest not written\n');
          return;
        }
        // writeManifest re-hashes the folder, so the served model still passes assertManifest
        await writeManifest(classifierDir, { ...manifest, threshold });
        process.stderr.write(`wrote ${resolve(classifierDir, 'manifest.json')}\n`);
      }),
    );
}
