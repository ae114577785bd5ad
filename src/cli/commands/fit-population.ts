/**
 * `fit-population`: teach a classifier version which population a film looks like, for
 * studies whose header gives no age (ml/population-estimate.ts). Reads a refit-head feature
 * cache of the version's own served features (`refit-head --extract-only` with the version as
 * --classifier: its `pooled` output for a multi-scale head), fits on the train films of the
 * sets named by --population, checks on their validation films, and writes a new revision of
 * the version with `populationEstimator` in its manifest; the version itself stays as it was.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSplitFile } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { parsePopulationMap } from '../../ml/calibrate.js';
import { deriveVersion, readManifest } from '../../ml/model-store/index.js';
import { readVersionFeatures } from '../version-features.js';
import { fitPopulationEstimator } from '../../ml/train/population-fit.js';
import { action, collect, parseNumber } from '../run.js';

interface FitPopulationCliOptions {
  classifier: string;
  cache: string[];
  population: string[];
  l2: string;
  minConfidence: string;
  version?: string;
  dryRun?: boolean;
}

export function register(program: Command): void {
  program
    .command('fit-population')
    .description(
      "fit which population (adult or pediatric) a film looks like on a classifier version's own features, for studies whose header gives no age, and write a new revision carrying it",
    )
    .requiredOption('--classifier <dir>', 'the classifier version whose features the cache holds')
    .requiredOption('--cache <file>', "refit-head feature cache(s) of that version's served features (repeatable)", collect, [])
    .requiredOption('--population <set=pop>', 'dataset folder name and its population, adult|pediatric (repeatable; both populations needed)', collect, [])
    .option('--l2 <x>', 'L2 strength on standardised features', '0.01')
    .option('--min-confidence <p>', 'the probability at which the engine trusts an estimate (below it, recall first: the lowest population threshold)', '0.99')
    .option('--version <name>', 'name of the new version (default: the next <version>-rN)')
    .option('--dry-run', 'fit and print the validation figures without writing a version')
    .action(
      action(async (o: FitPopulationCliOptions) => {
        const sets = parsePopulationMap(o.population);
        const l2 = parseNumber('--l2', o.l2);
        const minConfidence = parseNumber('--min-confidence', o.minConfidence);
        if (!(l2 > 0)) throw new CxrError('E_BAD_ARGUMENT', `--l2 must be > 0, got ${o.l2}`);
        if (!(minConfidence > 0.5 && minConfidence <= 1)) throw new CxrError('E_BAD_ARGUMENT', `--min-confidence must be in (0.5, 1], got ${o.minConfidence}`);
        const dir = resolve(o.classifier);
        const manifest = await readManifest(dir);
        if (manifest.name !== 'classifier') throw new CxrError('E_BAD_ARGUMENT', `${o.classifier} is a ${manifest.name}, not a classifier`);
        const splitPath = join(dir, 'split.csv');
        const rows = await readVersionFeatures(manifest, o.cache, existsSync(splitPath) ? await readSplitFile(splitPath) : null);
        const info = await fitPopulationEstimator([...rows.values()], {
          sets,
          l2,
          minConfidence,
          featurePrecision: manifest.quantization?.served ? 'int8' : 'float',
        });
        const v = info.validation;
        process.stderr.write(
          `fitted on ${info.fittedOn.n} train films (${info.below} below, ${info.above} above); validation: ${v.n} films, accuracy ${v.accuracy.toFixed(4)}, ` +
            `${v.decided} at confidence >= ${minConfidence} of which ${v.decidedWrong} wrong\n`,
        );
        for (const [s, f] of Object.entries(v.perSet))
          process.stderr.write(
            `  ${s} (${sets.get(s)}): ${f.n} films, accuracy ${f.accuracy.toFixed(4)}, ${f.decided} decided, ${f.decidedWrong} decided wrong\n`,
          );
        if (o.dryRun) return;
        const { dir: out } = await deriveVersion(dir, {
          version: o.version,
          reason: 'fit-population',
          change: async (_stage, m) => ({ ...m, populationEstimator: info }),
        });
        process.stdout.write(`${out}\n`);
      }),
    );
}
