/**
 * `pseudo-masks`: lung masks for a folder of real films from a segmenter version, kept only
 * where they pass the pseudo-label checks (src/imaging/pseudo-mask.ts), written as a dataset
 * folder that `train segmenter` reads next to phantoms: self-training on real films.
 */
import type { Command } from 'commander';
import { mkdir, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { loadDataset, readItemImage, type DatasetItem } from '../../data/dataset.js';
import { datasetName } from '../../data/multi-dataset.js';
import { parseSplitName, readSplitFile, SPLIT_NAMES, type DatasetSplit, type SplitName } from '../../data/split.js';
import { csvLine } from '../../data/csv.js';
import { CxrError } from '../../errors.js';
import { encodeGrayPng, encodeRgbPng } from '../../imaging/png.js';
import { grayImage, toGray } from '../../imaging/types.js';
import { contactSheet, type FilmTile } from '../../ml/contact-sheet.js';
import { maskAtSize, pseudoMaskVerdict, type PseudoMaskLimits, type PseudoMaskVerdict } from '../../imaging/pseudo-mask.js';
import { DEFAULT_QC_LIMITS } from '../../inference/qc.js';
import { consensusMaskSource } from '../../inference/consensus-mask.js';
import { loadServedModel } from '../../inference/models.js';
import { parsePrecision } from '../../inference/precision.js';
import { itemsInSubset } from '../../ml/calibrate.js';
import { capItems } from '../../ml/train/dataset-source.js';
import { action, parseInteger, parseNumber } from '../run.js';

interface PseudoCliOptions {
  data: string;
  segmenter: string;
  out?: string;
  split?: string;
  subset: string;
  max?: string;
  seed: string;
  minAgreement: string;
  minBalance: string;
  minSolidity: string;
  precision: string;
  threads?: string;
  dryRun?: boolean;
  force?: boolean;
  sheet?: string;
  sheetTiles: string;
}

/** README "Segmenter self-training": why each default is what it is. */
export const DEFAULT_PSEUDO_LIMITS: PseudoMaskLimits = {
  minLungFraction: DEFAULT_QC_LIMITS.minLungFraction,
  maxLungFraction: DEFAULT_QC_LIMITS.maxLungFraction,
  minLungBalance: 0.4,
  minViewAgreement: 0.93,
  minSolidity: 0.8,
};

/**
 * The films of `items` (one folder, `set`) that `split` assigns to `subset`, matched as
 * loadSplitItems matches them: a pool's split (with a dataset column) names each film
 * `<set>/<file>`.
 */
export function itemsOfSubset(items: readonly DatasetItem[], split: DatasetSplit, subset: SplitName, set: string): DatasetItem[] {
  const pooled = split.assignments.some((a) => a.dataset !== undefined);
  const keyed = items.map((item) => ({ id: pooled ? `${set}/${item.file}` : item.file, item }));
  const out = itemsInSubset(keyed, split, subset, pooled ? new Set([set]) : undefined).map((k) => k.item);
  if (out.length === 0) throw new CxrError('E_BAD_DATASET', `the split names no ${subset} film of ${set}`);
  return out;
}

const quantile = (sorted: readonly number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : Number.NaN);

/** One line per reason with its count, and the spread of agreement and lung area. */
export function summarise(verdicts: readonly PseudoMaskVerdict[]): string {
  const n = verdicts.length;
  const accepted = verdicts.filter((v) => v.accepted).length;
  const counts = new Map<string, number>();
  for (const v of verdicts) for (const r of v.reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const agree = verdicts.map((v) => v.agreement).sort((a, b) => a - b);
  const area = verdicts.map((v) => v.lungFraction).sort((a, b) => a - b);
  const solid = verdicts.map((v) => v.solidity).sort((a, b) => a - b);
  const pct = (k: number) => `${((100 * k) / Math.max(n, 1)).toFixed(1)}%`;
  const q = (s: number[]) => [0.05, 0.25, 0.5].map((p) => quantile(s, p).toFixed(3)).join(' / ');
  return [
    `accepted ${accepted} of ${n} (${pct(accepted)})`,
    ...[...counts].sort((a, b) => b[1] - a[1]).map(([r, k]) => `  ${r}: ${k} (${pct(k)})`),
    `view agreement p5 / p25 / median: ${q(agree)}`,
    `lung area fraction p5 / p25 / median: ${q(area)}`,
    `solidity (lower lung) p5 / p25 / median: ${q(solid)}`,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('pseudo-masks')
    .description(
      'segment the real films of a dataset folder with a segmenter version under three views and write the masks that pass the pseudo-label checks (two lungs, one each side, plausible area, off the border, stable across views) as a new dataset folder for `train segmenter` (self-training); the films are linked, not copied',
    )
    .requiredOption('--data <dir>', 'dataset folder of real films (images, labels.csv)')
    .requiredOption('--segmenter <dir>', 'the segmenter version whose masks become labels')
    .option('--out <dir>', 'the dataset folder to write (labels.csv, masks/, links to the films, pseudo-masks.csv with every verdict)')
    .option('--split <csv>', 'only the films this split assigns to --subset (keep validation and test patients out of training)')
    .option('--subset <name>', `with --split: ${SPLIT_NAMES.join('|')}`, 'train')
    .option('--max <n>', 'at most this many films (whole patients, seeded)')
    .option('--seed <n>', 'which films --max keeps', '1')
    .option('--min-agreement <d>', 'least mean Dice of the views against the consensus', String(DEFAULT_PSEUDO_LIMITS.minViewAgreement))
    .option('--min-balance <r>', "least ratio of the smaller lung's area to the larger's", String(DEFAULT_PSEUDO_LIMITS.minLungBalance))
    .option('--min-solidity <s>', 'least area over convex hull area of either lung', String(DEFAULT_PSEUDO_LIMITS.minSolidity))
    .option('--precision <p>', 'segmenter precision: float | int8 | auto', 'float')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--sheet <png>', 'also draw films with their consensus outline, the first accepted and the first rejected ones captioned with the reasons')
    .option('--sheet-tiles <n>', 'films of each kind on --sheet', '12')
    .option('--dry-run', 'print the verdicts summary and write nothing but --sheet')
    .option('--force', 'write into --out even when it is not empty')
    .action(
      action(async (o: PseudoCliOptions) => {
        if (!o.dryRun && !o.out) throw new CxrError('E_BAD_ARGUMENT', '--out is required unless --dry-run');
        const limits: PseudoMaskLimits = {
          ...DEFAULT_PSEUDO_LIMITS,
          minViewAgreement: parseNumber('--min-agreement', o.minAgreement),
          minLungBalance: parseNumber('--min-balance', o.minBalance),
          minSolidity: parseNumber('--min-solidity', o.minSolidity),
        };
        const dir = resolve(o.data);
        const set = datasetName(dir);
        let items = (await loadDataset(dir)).items;
        if (o.split) items = itemsOfSubset(items, await readSplitFile(resolve(o.split)), parseSplitName(o.subset), set);
        if (o.max) items = capItems(items, parseInteger('--max', o.max, 1), parseInteger('--seed', o.seed, 0));
        const out = o.out && !o.dryRun ? resolve(o.out) : null;
        if (out && existsSync(out) && readdirSync(out).length > 0 && !o.force) {
          throw new CxrError('E_BAD_ARGUMENT', `${out} is not empty (use --force to write into it)`);
        }
        const seg = await loadServedModel('models', 'segmenter', resolve(o.segmenter), parsePrecision(o.precision));
        const source = await consensusMaskSource(seg.bytes, seg.manifest.inputSize, {
          threads: o.threads ? parseInteger('--threads', o.threads, 1) : undefined,
        });
        const verdicts: PseudoMaskVerdict[] = [];
        const rows: string[] = [csvLine(['file', 'label', 'patient_id'])];
        const report: string[] = [csvLine(['file', 'accepted', 'reasons', 'lung_fraction', 'balance', 'solidity', 'agreement'])];
        // a fresh folder is written beside it and renamed at the end: a run that stops half-way
        // leaves no folder that looks like a finished dataset
        const work = out && !(o.force && existsSync(out)) ? `${out}.partial-${process.pid}` : out;
        const stems = new Set<string>();
        const perKind = parseInteger('--sheet-tiles', o.sheetTiles, 1);
        const tiles: { accepted: FilmTile[]; rejected: FilmTile[] } = { accepted: [], rejected: [] };
        const t0 = Date.now();
        let accepted = 0;
        try {
          if (work) await mkdir(join(work, 'masks'), { recursive: true });
          for (const [k, item] of items.entries()) {
            const image = await readItemImage(item);
            const { mask, agreement } = await source.consensus(image);
            const v = pseudoMaskVerdict(mask, agreement, limits);
            verdicts.push(v);
            if (v.accepted) accepted++;
            const kind = v.accepted ? tiles.accepted : tiles.rejected;
            const drawn = o.sheet !== undefined && kind.length < perKind;
            const written = work !== null && v.accepted;
            // the mask at the film's size, once, for whichever of the two wants it
            const full = drawn || written ? maskAtSize(mask, image.width, image.height) : null;
            if (drawn && full) {
              const caption = v.accepted ? 'ACCEPTED' : v.reasons.join(' ').replaceAll('_', '-').toUpperCase();
              kind.push({
                image: toGray(image),
                mask: full,
                heatmap: grayImage(image.width, image.height),
                caption: [basename(item.file).slice(0, 20), caption],
              });
            }
            report.push(
              csvLine([
                item.file,
                v.accepted ? 1 : 0,
                v.reasons.join(' '),
                v.lungFraction.toFixed(4),
                v.balance.toFixed(4),
                v.solidity.toFixed(4),
                v.agreement.toFixed(4),
              ]),
            );
            if (work && written && full) {
              const stem = basename(item.file, extname(item.file));
              if (stems.has(stem)) throw new CxrError('E_BAD_DATASET', `two films are named ${stem}: masks/${stem}.png would hold both`);
              stems.add(stem);
              await writeFile(join(work, 'masks', `${stem}.png`), await encodeGrayPng(full));
              const link = join(work, item.file);
              await mkdir(dirname(link), { recursive: true });
              if (!existsSync(link)) await symlink(item.path, link);
              rows.push(csvLine([item.file, item.label, item.patientId]));
            }
            if ((k + 1) % 50 === 0 || k + 1 === items.length) {
              const rate = (k + 1) / ((Date.now() - t0) / 1000);
              process.stderr.write(`pseudo-masks: ${k + 1}/${items.length} films, ${accepted} accepted, ${rate.toFixed(1)} films/s\n`);
            }
          }
        } catch (e) {
          if (work && work !== out) await rm(work, { recursive: true, force: true });
          throw e;
        } finally {
          await source.close();
        }
        const summary = summarise(verdicts);
        if (o.sheet) {
          const all = [...tiles.accepted, ...tiles.rejected];
          const sheet = contactSheet(all, { side: 160, columns: 6, title: `PSEUDO-MASKS ${set} SEGMENTER ${seg.manifest.version}`.toUpperCase() });
          await mkdir(dirname(resolve(o.sheet)), { recursive: true });
          await writeFile(resolve(o.sheet), await encodeRgbPng(sheet.data, sheet.width, sheet.height));
        }
        if (out && work) {
          await mkdir(work, { recursive: true });
          await writeFile(join(work, 'labels.csv'), `${rows.join('\n')}\n`);
          await writeFile(join(work, 'pseudo-masks.csv'), `${report.join('\n')}\n`);
          const provenance = {
            data: set,
            segmenter: { version: seg.manifest.version, sha256: seg.ref.sha256, precision: seg.ref.precision },
            split: o.split ? basename(o.split) : null,
            subset: o.split ? o.subset : null,
            limits,
            films: items.length,
            accepted: rows.length - 1,
          };
          await writeFile(join(work, 'pseudo-masks.json'), `${JSON.stringify(provenance, null, 2)}\n`);
          if (work !== out) {
            // only an empty folder can be here (checked above)
            if (existsSync(out)) await rmdir(out);
            await rename(work, out);
          }
        }
        process.stdout.write(`${set} through segmenter ${seg.manifest.version} (${seg.ref.precision})\n${summary}\n`);
      }),
    );
}
