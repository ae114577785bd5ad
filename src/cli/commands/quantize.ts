import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseSplitName, SPLIT_NAMES } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { locateModelVersion, MANIFEST_FILE, readManifest } from '../../ml/model-store/index.js';
import { DATA_OPS, QUANTIZABLE_OPS, type DataOp, type QuantizableOp } from '../../ml/onnx/quantize/index.js';
import { MAX_AUC_LOSS } from '../../ml/onnx/quantize/info.js';
import { action, collect, parseInteger, parseNumber } from '../run.js';
import { quantizeVersion } from '../quantize-version.js';

interface QuantizeCliOptions {
  calib: string[];
  split?: string;
  calibSubset: string;
  maxImages: string;
  method: string;
  percentile?: string;
  ops?: string;
  dataOps?: string;
  dataScope?: string;
  keepFloat?: string;
  compareData: string[];
  compareSplit?: string;
  compareSubset: string;
  compare?: boolean;
  models: string;
  segmenter?: string;
  classifier?: string;
  tta: string;
  threads?: string;
  targetRecall?: string;
  version?: string;
  dropFloat?: boolean;
  json?: boolean;
}

const f4 = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(4));
const list = (s: string | undefined) =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function register(program: Command): void {
  program
    .command('quantize')
    .description(
      "quantize a version's model.onnx to int8 (static QDQ: int8 per-channel weights, uint8 activations calibrated on real images " +
        'through the served pipeline), compare it with float on validation, pick its own threshold, and write both models with the ' +
        `decision (int8 served by default when its validation AUC is within ${MAX_AUC_LOSS} of float) as a NEW version <version>-rN; ` +
        'the quantized version stays untouched and active until you activate the new one',
    )
    .argument('<version-dir>', 'model version folder (segmenter or classifier) holding model.onnx')
    .option(
      '--calib <dir>',
      'dataset folder (images/, labels.csv) whose images calibrate the activation ranges; repeat for the sets of a pooled --split',
      collect,
      [],
    )
    .option('--split <csv>', "split CSV narrowing --calib to --calib-subset (default: the classifier version's split.csv)")
    .option('--calib-subset <name>', `subset of --split to calibrate on: ${SPLIT_NAMES.join('|')}`, 'train')
    .option('--max-images <n>', 'calibration images, drawn evenly from the set', '64')
    .option('--method <m>', 'activation ranges: minmax | percentile', 'minmax')
    .option('--percentile <p>', 'share of values kept inside the range with --method percentile', '99.99')
    .option('--ops <list>', `op types in int8 (${QUANTIZABLE_OPS.join(',')}; default Conv: see README "int8")`)
    .option(
      '--data-ops <list>',
      `weightless ops kept in uint8 between int8 nodes (${DATA_OPS.join(',')}, or none; default all: a batch norm before a conv folds into it, an up-sampling becomes Conv + DepthToSpace; see README "int8")`,
    )
    .option(
      '--data-scope <prefixes>',
      'limit --data-ops to nodes whose names start with one of these comma-separated prefixes (e.g. stem_,block1_,transition1_: the large early tensors)',
    )
    .option('--keep-float <list>', 'node names (or output tensor names) to keep in float, comma-separated')
    .option('--compare-data <dir>', 'dataset folder for the float vs int8 comparison (default --calib); repeatable like --calib', collect, [])
    .option('--compare-split <csv>', 'split CSV for the comparison (default --split)')
    .option('--compare-subset <name>', 'subset compared on', 'validation')
    .option('--no-compare', 'skip the comparison: the int8 model is then served only with --precision int8')
    .option('--models <dir>', 'models folder holding the other network (the comparison serves it as the service would)', 'models')
    .option('--segmenter <dir>', 'segmenter version folder for crops and the comparison (overrides --models)')
    .option('--classifier <dir>', 'classifier version folder for the comparison of a segmenter (overrides --models)')
    .option('--tta <n>', 'test-time views (calibration batches and comparison)', '4')
    .option('--threads <n>', 'ONNX Runtime intra-op threads')
    .option('--target-recall <r>', "recall the int8 threshold is picked for (default: the float threshold's)")
    .option('--version <name>', 'name of the new version (default: the next <version>-rN)')
    .option(
      '--drop-float',
      'leave model.onnx out of the new version (smaller folder); float is then rebuilt from the tfjs weights, checked by sha256, when asked for',
    )
    .option('--json', "print the manifest's quantization record as JSON")
    .action(
      action(async (versionDir: string, o: QuantizeCliOptions) => {
        const dir = resolve(versionDir);
        if (!existsSync(join(dir, MANIFEST_FILE))) throw new CxrError('E_NOT_FOUND', `${versionDir} is not a model version folder (no ${MANIFEST_FILE})`);
        if (o.calib.length === 0) throw new CxrError('E_BAD_ARGUMENT', '--calib DATA_DIR is required: the images whose activations set the int8 ranges');
        for (const d of [...o.calib, ...o.compareData]) if (!existsSync(d)) throw new CxrError('E_NOT_FOUND', `no dataset folder ${d}`);
        if (o.method !== 'minmax' && o.method !== 'percentile')
          throw new CxrError('E_BAD_ARGUMENT', `--method must be minmax or percentile, got '${o.method}'`);
        const ops = o.ops === undefined ? undefined : list(o.ops);
        for (const op of ops ?? []) {
          if (!(QUANTIZABLE_OPS as readonly string[]).includes(op))
            throw new CxrError('E_BAD_ARGUMENT', `--ops: '${op}' is not one of ${QUANTIZABLE_OPS.join(', ')}`);
        }
        const dataOps = o.dataOps === undefined ? undefined : o.dataOps.trim() === 'none' ? [] : list(o.dataOps);
        for (const op of dataOps ?? []) {
          if (!(DATA_OPS as readonly string[]).includes(op))
            throw new CxrError('E_BAD_ARGUMENT', `--data-ops: '${op}' is not one of ${DATA_OPS.join(', ')}, or none`);
        }
        // both networks calibrate on the classifier's train images and compare on its validation images
        const kind = (await readManifest(dir)).name === 'segmenter' ? 'segmenter' : 'classifier';
        const classifierDir = kind === 'classifier' ? dir : o.classifier ? resolve(o.classifier) : await locateModelVersion(o.models, 'classifier');
        const clsSplit = existsSync(join(classifierDir, 'split.csv')) ? join(classifierDir, 'split.csv') : undefined;
        const split = o.split ?? clsSplit;
        const calibSubset = parseSplitName(o.calibSubset, '--calib-subset');
        const compareSubset = parseSplitName(o.compareSubset, '--compare-subset');
        const compareSplit = o.compareSplit ?? split;
        const r = await quantizeVersion({
          versionDir: dir,
          calib: { dataDir: o.calib, splitPath: split, subset: calibSubset },
          maxImages: parseInteger('--max-images', o.maxImages, 1),
          method: o.method,
          percentile: o.percentile === undefined ? undefined : parseNumber('--percentile', o.percentile),
          ops: ops as QuantizableOp[] | undefined,
          dataOps: dataOps as DataOp[] | undefined,
          dataScope: o.dataScope === undefined ? undefined : list(o.dataScope),
          keepFloat: o.keepFloat === undefined ? undefined : list(o.keepFloat),
          compare: o.compare === false ? null : { dataDir: o.compareData.length ? o.compareData : o.calib, splitPath: compareSplit, subset: compareSubset },
          engine: {
            modelsDir: o.models,
            segmenterDir: o.segmenter,
            classifierDir: o.classifier,
            threads: o.threads === undefined ? undefined : parseInteger('--threads', o.threads, 1),
          },
          tta: parseInteger('--tta', o.tta, 1),
          targetRecall: o.targetRecall === undefined ? undefined : parseNumber('--target-recall', o.targetRecall),
          version: o.version,
          dropFloat: o.dropFloat,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        const q = r.info;
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ dir: r.dir, version: r.version, source: r.source.version, kind: r.kind, quantization: q })}\n`);
          return;
        }
        const c = q.comparison;
        const lines = [
          `${r.kind.padEnd(20)}${r.source.version} -> new version ${r.version} (${r.dir})`,
          `int8 model          ${q.file}: ${q.quantizedNodes} nodes in int8, ${q.floatNodes.length} kept in float, ${q.dataNodes ?? 0} Add/Concat in uint8 (${q.foldedBatchNorms ?? 0} batch norms folded); ${(q.bytes.float / 1e6).toFixed(1)} -> ${(q.bytes.int8 / 1e6).toFixed(1)} MB`,
          `calibration         ${q.calibration.images} images (${q.calibration.data.join(' ')}), ${q.method}`,
        ];
        if (c) {
          lines.push(
            `compared on         ${c.n} images (${c.data.join(' ')}), ${c.views} views, ${c.otherModel.name} ${c.otherModel.version} ${c.otherModel.precision}`,
            `AUC                 float ${f4(c.float.auc)}  int8 ${f4(c.int8.auc)}  (delta ${f4(c.aucDelta)})`,
            `threshold           float ${f4(c.float.threshold)}  int8 ${f4(c.int8.threshold)}  (target recall ${c.targetRecall})`,
            `sensitivity         float ${f4(c.float.sensitivity)}  int8 ${f4(c.int8.sensitivity)}`,
            `specificity         float ${f4(c.float.specificity)}  int8 ${f4(c.int8.specificity)}`,
            `|p int8 - p float|  max ${f4(c.probabilityDiff.max)}  mean ${f4(c.probabilityDiff.mean)}`,
            ...(c.maskAgreement ? [`mask agreement      mean Dice ${f4(c.maskAgreement.mean)}, lowest ${f4(c.maskAgreement.min)}`] : []),
          );
        }
        lines.push(`decision            ${q.decision}`);
        process.stdout.write(`${lines.join('\n')}\n`);
        process.stderr.write(`serve it with \`cxr-triage models activate ${r.kind} ${r.version} --models ${o.models}\`\n`);
      }),
    );
}
