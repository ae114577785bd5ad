/**
 * `fit-population-head`: give one population of a classifier version its own head (ml/
 * population-head.ts), a blend of the version's recipe refitted on every set and a head fitted
 * on that population's sets alone, with the blend, threshold and calibration chosen on its train
 * films out of fold and its validation films together (ml/train/population-head-fit.ts). Reads a
 * refit-head feature cache of the version's own served features and writes a new revision whose
 * served threshold block carries the head; the version itself stays as it was.
 */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { readSplitFile } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { parsePopulationMap } from '../../ml/calibrate.js';
import { initBackend } from '../../ml/backend.js';
import { withNewProbabilities, type DriftReference } from '../../ml/drift-reference.js';
import { loadModel } from '../../ml/model-io.js';
import {
  deriveVersion,
  isPopulation,
  POPULATIONS,
  readManifest,
  servedCalibration,
  type ModelManifest,
  type Population,
  type ThresholdInfo,
} from '../../ml/model-store/index.js';
import { populationHeadProbability, populationHeads } from '../../ml/population-head.js';
import { applyCalibration, type ProbabilityCalibration } from '../../ml/probability-calibration.js';
import { meanViewProbability } from '../../ml/train/head-rows.js';
import type { FeatureRow } from '../../ml/train/feature-cache.js';
import { readVersionFeatures } from '../version-features.js';
import { fitPopulationHead } from '../../ml/train/population-head-fit.js';
import { action, collect, parseInteger, parseNumber } from '../run.js';

interface FitPopulationHeadCliOptions {
  classifier: string;
  cache: string[];
  population: string[];
  for: string;
  blend: string;
  l2: string;
  folds: string;
  deals: string;
  version?: string;
  dryRun?: boolean;
}

/** The version's own head recipe (refit-head's training.config): set weights, L2, train views. */
function jointRecipe(m: ModelManifest): { weights: Record<string, number>; l2: number; trainViews: number } {
  const c = m.training.config as Record<string, unknown>;
  const weights = c.setWeights as Record<string, number> | undefined;
  if (!weights || typeof c.l2 !== 'number')
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `${m.version} was not fitted by refit-head on several sets (no training.config.setWeights and l2): its recipe cannot be refitted`,
    );
  return { weights, l2: c.l2, trainViews: typeof c.trainViews === 'number' ? c.trainViews : 1 };
}

/**
 * The drift reference (manifest `drift`) holds what the service stores for each validation study:
 * its population's probability, which for the headed population is now its head's. Each film of
 * a set named by --population is scored as the engine decides it at that population (its own
 * head, else the graph's head on the same features, through the population's calibration); the
 * lung areas do not change, so their histogram stays when it counted the same films.
 */
async function validationDrift(
  dir: string,
  m: ModelManifest,
  block: ThresholdInfo,
  served: ProbabilityCalibration | null,
  sets: ReadonlyMap<string, Population>,
  rows: readonly FeatureRow[],
): Promise<DriftReference | null> {
  const validation = rows.filter((r) => r.split === 'validation' && sets.has(r.source));
  if (validation.length === 0) return null;
  await initBackend();
  const model = await loadModel(dir);
  const [kernel, bias] = model.getLayer('probability').getWeights();
  const graph = { weights: kernel.dataSync() as Float32Array, bias: (bias.dataSync() as Float32Array)[0] };
  model.dispose();
  const heads = new Map(populationHeads(block, m.version));
  const probabilities = validation.map((r) => {
    const pop = sets.get(r.source)!;
    const head = heads.get(pop);
    const raw = head ? populationHeadProbability(head, r.views) : meanViewProbability(graph, r);
    return applyCalibration(block.populations?.[pop]?.calibration ?? served, raw);
  });
  const { reference, areasDropped } = withNewProbabilities(m.drift, 'validation', probabilities);
  if (areasDropped)
    process.stderr.write(
      `warning: the drift reference's lung areas counted ${m.drift!.n} films, the cache has ${reference.n} validation films: lung areas left out\n`,
    );
  return reference;
}

export function register(program: Command): void {
  program
    .command('fit-population-head')
    .description(
      "give one population (adult or pediatric) of a classifier version its own head on the version's features, chosen with its threshold and calibration on its train films out of fold and its validation films, and write a new revision carrying it",
    )
    .requiredOption('--classifier <dir>', 'the classifier version whose features the cache holds (fitted by refit-head on several sets)')
    .requiredOption('--cache <file>', "refit-head feature cache(s) of that version's served features, every set of its recipe (repeatable)", collect, [])
    .requiredOption('--population <set=pop>', 'dataset folder name and its population, adult|pediatric (repeatable)', collect, [])
    .requiredOption('--for <population>', `the population that gets the head (${POPULATIONS.join('|')})`)
    .option(
      '--blend <shares>',
      "the own head's shares to try, comma-separated (0: the version's recipe alone); the highest specificity at the target recall wins, then AUC",
      '0,0.25,0.5,0.75,1',
    )
    .option('--l2 <x>', "the own head's L2 strength on standardised features (the joint head keeps the version's)", '0.003')
    .option('--folds <k>', 'folds of whole train patients for the out-of-fold scores', '5')
    .option('--deals <n>', 'deals of the folds whose out-of-fold logits are averaged', '5')
    .option('--version <name>', 'name of the new version (default: the next <version>-rN)')
    .option('--dry-run', 'fit and print the figures without writing a version')
    .action(
      action(async (o: FitPopulationHeadCliOptions) => {
        const sets = parsePopulationMap(o.population);
        const population = o.for.trim().toLowerCase();
        if (!isPopulation(population)) throw new CxrError('E_BAD_ARGUMENT', `--for must be one of ${POPULATIONS.join(', ')}, got '${o.for}'`);
        if (![...sets.values()].includes(population)) throw new CxrError('E_BAD_ARGUMENT', `--population names no set of the ${population} population`);
        const blends = o.blend.split(',').map((v) => parseNumber('--blend', v.trim()));
        if (blends.some((b) => !(b >= 0 && b <= 1))) throw new CxrError('E_BAD_ARGUMENT', `--blend shares must be in [0,1], got ${o.blend}`);
        const l2 = parseNumber('--l2', o.l2);
        if (!(l2 > 0)) throw new CxrError('E_BAD_ARGUMENT', `--l2 must be > 0, got ${o.l2}`);
        const folds = parseInteger('--folds', o.folds, 2);
        const deals = parseInteger('--deals', o.deals, 1);
        const dir = resolve(o.classifier);
        const manifest = await readManifest(dir);
        if (manifest.name !== 'classifier') throw new CxrError('E_BAD_ARGUMENT', `${o.classifier} is a ${manifest.name}, not a classifier`);
        const recipe = jointRecipe(manifest);
        const int8 = manifest.quantization?.served === true;
        const block: ThresholdInfo | null | undefined = int8 ? manifest.quantization!.threshold : manifest.threshold;
        if (!block) throw new CxrError('E_MODEL_INVALID', `${manifest.version} has no threshold for its ${int8 ? 'int8' : 'float'} model`);
        const split = await readSplitFile(join(dir, 'split.csv'));
        const rows = await readVersionFeatures(manifest, o.cache, split);
        for (const s of Object.keys(recipe.weights))
          if (![...rows.values()].some((r) => r.source === s))
            throw new CxrError('E_BAD_ARGUMENT', `the cache has no films of ${s}, a set of ${manifest.version}'s recipe`);
        process.stderr.write(
          `joint recipe of ${manifest.version}: ${Object.entries(recipe.weights)
            .map(([s, w]) => `${s}:${w}`)
            .join(
              ', ',
            )}, L2 ${recipe.l2}, ${recipe.trainViews} train views; ${population} head L2 ${l2}; ${deals} deals of ${folds} folds (${deals * folds + 1} fits of each head)\n`,
        );
        const fit = await fitPopulationHead([...rows.values()], {
          population,
          sets,
          jointWeights: recipe.weights,
          l2: { joint: recipe.l2, own: l2 },
          trainViews: recipe.trainViews,
          blends,
          folds,
          deals,
          seed: split.seed,
          targetRecall: block.targetRecall,
          patientOf: new Map(split.assignments.map((a) => [a.file, a.patientId])),
          featurePrecision: int8 ? 'int8' : 'float',
          onProgress: (line) => process.stderr.write(`${line}\n`),
        });
        const t = fit.threshold;
        process.stderr.write(
          `${population} films chosen on (train out of fold + validation): ${t.n} (${t.positives} with pneumonia)\n` +
            fit.tried
              .map(
                (b) =>
                  `  own ${b.own}: AUC ${b.auc.toFixed(4)}, specificity at recall ${block.targetRecall} ${b.specificity?.toFixed(4) ?? 'n/a'}${b === fit.chosen ? '  <- chosen' : ''}`,
              )
              .join('\n') +
            `\nthreshold ${t.value.toFixed(4)} (calibrated; Platt a ${t.calibration!.a.toFixed(4)} b ${t.calibration!.b.toFixed(4)}): recall ${t.validationSensitivity.toFixed(4)}, specificity ${t.validationSpecificity?.toFixed(4) ?? 'n/a'}\n`,
        );
        if (o.dryRun) return;
        const withHead = (b: ThresholdInfo): ThresholdInfo => ({ ...b, populations: { ...b.populations, [population]: t } });
        const drift = await validationDrift(dir, manifest, withHead(block), servedCalibration(manifest, int8 ? 'int8' : 'float'), sets, [...rows.values()]);
        const { dir: out } = await deriveVersion(dir, {
          version: o.version,
          reason: 'fit-population-head',
          change: async (_stage, m) => ({
            ...(int8
              ? { ...m, quantization: { ...m.quantization!, threshold: withHead(m.quantization!.threshold!) } }
              : { ...m, threshold: withHead(m.threshold!) }),
            ...(drift ? { drift } : {}),
          }),
        });
        process.stdout.write(`${out}\n`);
      }),
    );
}
