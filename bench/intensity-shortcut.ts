/**
 * How much of a set's pneumonia signal its lung crops' intensity distribution alone carries:
 * a logistic regression on nothing but each crop's quantile function (the values at a few
 * ranks, cut as the served pipeline cuts the crop), fitted on the split's train films and
 * scored on its validation and test films. A site's look-up curve, processing and exposure
 * change exactly these numbers, so a set where they predict the label well is one where a
 * classifier can lean on how a film was taken rather than on what it shows (portable films of
 * sicker patients, say).
 *
 *   npx tsx bench/intensity-shortcut.ts --data DIR --split CSV [--models models] [--points 16]
 *       [--l2 0.01] [--threads 2] [--json]
 *
 * The segmenter is the one `--models` serves (its mask places the crop); the classifier's input
 * side sets the crop size. Prints per subset the films, AUC with a 95% bootstrap interval, and
 * the specificity at the recall-0.95 cut of the same films (an upper bound: the cut is chosen on
 * the films it is measured on).
 */
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { quantileFunction } from '../src/imaging/intensity-match.js';
import { classifierCrop } from '../src/imaging/pixel-contract.js';
import { loadEngine } from '../src/inference/engine.js';
import { bootstrapFigures } from '../src/ml/bootstrap.js';
import { loadSplitItems } from '../src/ml/calibrate.js';
import { readActive, readManifest } from '../src/ml/model-store/index.js';
import { calibrateThreshold, rocAuc } from '../src/ml/metrics.js';
import { fitHead, headProbability } from '../src/ml/train/head.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    split: { type: 'string' },
    models: { type: 'string', default: 'models' },
    points: { type: 'string', default: '16' },
    l2: { type: 'string', default: '0.01' },
    threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
if (!args.data || !args.split) {
  process.stderr.write('--data DIR and --split CSV are required (see --help)\n');
  process.exit(2);
}
const points = Number(args.points);
if (!Number.isInteger(points) || points < 2 || points > 256) {
  process.stderr.write('--points must be an integer in [2, 256]\n');
  process.exit(2);
}

const dir = resolve(args.data);
const set = basename(dir);
const subsets = ['train', 'validation', 'test'] as const;
const bySubset = Object.fromEntries(await Promise.all(subsets.map(async (s) => [s, await loadSplitItems([dir], resolve(args.split!), s)] as const)));

const models = resolve(args.models);
const active = await readActive(models, 'classifier');
if (!active) {
  process.stderr.write(`${models}/classifier has no ACTIVE file naming the version to serve\n`);
  process.exit(2);
}
const side = (await readManifest(join(models, 'classifier', active))).inputSize;
const engine = await loadEngine({ modelsDir: models, tta: 1, threads: Number(args.threads), intensity: null });

/** `points` values of the crop's quantile function, evenly over its 256 ranks. */
function describe(q: Float64Array): Float32Array {
  return Float32Array.from({ length: points }, (_, k) => q[Math.round((k * (q.length - 1)) / (points - 1))]);
}

const rows: Record<string, { features: Float32Array[]; labels: number[] }> = {};
let done = 0;
const total = subsets.reduce((n, s) => n + bySubset[s].length, 0);
try {
  for (const s of subsets) {
    rows[s] = { features: [], labels: [] };
    for (const item of bySubset[s]) {
      const image = await item.image();
      const { mask } = await engine.scoreImage(image, { tta: 1 });
      const { crop } = classifierCrop(image, mask, side);
      rows[s].features.push(describe(quantileFunction(crop.data)));
      rows[s].labels.push(item.label);
      if (++done % 50 === 0 || done === total) process.stderr.write(`\r${done}/${total} films`);
    }
  }
} finally {
  await engine.close();
}
process.stderr.write('\n');

const fit = await fitHead(rows.train.features, rows.train.labels, { l2: Number(args.l2) });

const report = subsets.map((s) => {
  const scores = rows[s].features.map((f) => headProbability(fit, f));
  const labels = rows[s].labels;
  const ci = bootstrapFigures(scores, labels, 0.5);
  return {
    subset: s,
    films: labels.length,
    pneumonia: labels.filter((l) => l === 1).length,
    auc: rocAuc(scores, labels),
    aucLo: ci.aucLo ?? null,
    aucHi: ci.aucHi ?? null,
    // the highest cut that keeps recall >= 0.95 on these films, as calibrate picks one
    specificityAtRecall95: labels.includes(1) ? calibrateThreshold(scores, labels, 0.95).specificity : null,
  };
});

if (args.json) {
  process.stdout.write(`${JSON.stringify({ set, points, l2: Number(args.l2), segmenter: engine.models.segmenter.version, report })}\n`);
} else {
  const f3 = (v: number | null | undefined) => (v == null ? '-' : v.toFixed(3));
  process.stdout.write(
    `${set}: a logistic regression on ${points} points of each lung crop's quantile function (segmenter ${engine.models.segmenter.version}, ${side}-pixel crop, L2 ${args.l2}), fitted on train\n`,
  );
  process.stdout.write('subset       films  pneumonia  AUC (95% CI)           specificity at recall 0.95 (cut on these films)\n');
  for (const r of report)
    process.stdout.write(
      `${r.subset.padEnd(12)} ${String(r.films).padStart(5)}  ${String(r.pneumonia).padStart(9)}  ${f3(r.auc)} (${f3(r.aucLo)}-${f3(r.aucHi)})    ${f3(r.specificityAtRecall95)}\n`,
    );
}
