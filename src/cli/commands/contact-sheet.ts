/**
 * `contact-sheet`: real films of one or several dataset folders through the served pipeline
 * (segmenter, crop, classifier with TTA: the engine `analyze` and the service use), each drawn
 * with the lung mask's outline and the CAM heatmap, captioned with set, label and probability,
 * in one PNG. What a reviewer looks at to judge masks and heatmaps on real films, set by set.
 */
import type { Command } from 'commander';
import { checkOutputFile } from '../output-paths.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { datasetName } from '../../data/multi-dataset.js';
import { rngFor } from '../../data/rng.js';
import { parseSplitName, SPLIT_NAMES } from '../../data/split.js';
import { CxrError } from '../../errors.js';
import { encodeRgbPng } from '../../imaging/png.js';
import { grayImage } from '../../imaging/types.js';
import { loadEngine, scoreOverlays } from '../../inference/engine.js';
import { populationForDatasets, populationProbability } from '../../inference/population.js';
import { loadSplitItems } from '../../ml/calibrate.js';
import { contactSheet, type FilmTile } from '../../ml/contact-sheet.js';
import type { EvalItem } from '../../ml/evaluate.js';
import { loadEvalItems } from '../../ml/train/dataset-source.js';
import { action, collect, parseInteger } from '../run.js';

interface SheetCliOptions {
  data: string[];
  out: string;
  models: string;
  segmenter?: string;
  classifier?: string;
  perSet: string;
  side: string;
  columns?: string;
  seed: string;
  split?: string;
  subset: string;
  threads?: string;
  heatmap: boolean;
}

/**
 * `count` films of one set, half normal and half pneumonia where the set has them, chosen
 * by a seeded shuffle of the files sorted by name (the same films for the same seed).
 */
export function pickFilms<T extends Pick<EvalItem, 'id' | 'label'>>(items: readonly T[], count: number, seed: number, set: string): T[] {
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const order = rngFor(['contact-sheet', seed, set]).shuffle(sorted);
  const pos = order.filter((i) => i.label >= 0.5);
  const neg = order.filter((i) => i.label < 0.5);
  const wantNeg = Math.min(neg.length, Math.max(count - pos.length, Math.floor(count / 2)));
  const chosen = [...neg.slice(0, wantNeg), ...pos.slice(0, count - wantNeg)];
  return chosen;
}

/** the largest tile side a contact sheet draws */
const MAX_SIDE = 1024;

export function register(program: Command): void {
  program
    .command('contact-sheet')
    .description(
      'draw films of each dataset folder through the served pipeline with the lung outline (green) and the CAM heatmap, captioned with set, label and probability, into one PNG',
    )
    .requiredOption('--data <dir>', 'dataset folder (images/, labels.csv); repeat for several sets, one block of tiles each', collect, [])
    .requiredOption('--out <png>', 'the PNG to write')
    .option('--models <dir>', 'models folder holding segmenter/ and classifier/ versions', 'models')
    .option('--segmenter <dir>', 'a segmenter version folder (overrides --models)')
    .option('--classifier <dir>', 'a classifier version folder (overrides --models)')
    .option('--per-set <n>', 'films per set (half normal, half pneumonia)', '6')
    .option('--side <px>', 'tile side in pixels', '160')
    .option('--columns <n>', 'tiles per row (default: --per-set)')
    .option('--seed <n>', 'which films are drawn', '1')
    .option('--split <csv>', "draw only from the images a split assigns to --subset (e.g. a version's held-out patients)")
    .option('--subset <name>', `with --split: ${SPLIT_NAMES.join('|')}`, 'test')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--no-heatmap', 'draw the lung outline only (judging masks)')
    .action(
      action(async (o: SheetCliOptions) => {
        const perSet = parseInteger('--per-set', o.perSet, 1);
        const side = parseInteger('--side', o.side, 32);
        // a sheet is a few tiles a row: thousands of pixels a side would be gigabytes of RGBA
        if (side > MAX_SIDE) throw new CxrError('E_BAD_ARGUMENT', `--side must be at most ${MAX_SIDE}, got ${side}`);
        await checkOutputFile('--out', o.out);
        const seed = parseInteger('--seed', o.seed, 0);
        const columns = o.columns ? parseInteger('--columns', o.columns, 1) : perSet;
        const subset = o.split ? parseSplitName(o.subset) : null;
        const chosen: { set: string; item: EvalItem }[] = [];
        for (const d of o.data) {
          const dir = resolve(d);
          const set = datasetName(dir);
          const items = o.split && subset ? await loadSplitItems([dir], resolve(o.split), subset) : await loadEvalItems(dir);
          if (items.length === 0) throw new CxrError('E_BAD_DATASET', `${d} has no images${subset ? ` in the ${subset} split` : ''}`);
          for (const item of pickFilms(items, perSet, seed, set)) chosen.push({ set, item });
        }
        const engine = await loadEngine({
          modelsDir: o.models,
          segmenterDir: o.segmenter ? resolve(o.segmenter) : undefined,
          classifierDir: o.classifier ? resolve(o.classifier) : undefined,
          threads: o.threads ? parseInteger('--threads', o.threads, 1) : undefined,
        });
        const tiles: FilmTile[] = [];
        try {
          for (const { set, item } of chosen) {
            const image = await item.image();
            const scored = await engine.scoreImage(image);
            // a film carries no age: each set is flagged at its population's threshold, as evaluate decides it
            const population = populationForDatasets(engine.threshold, [set]);
            const threshold = population?.value ?? engine.threshold.value;
            const s = { ...scored, probability: populationProbability(population?.calibration, scored, population?.population) };
            const flagged = s.probability >= threshold;
            const overlays = scoreOverlays(s, image.width, image.height);
            tiles.push({
              image,
              mask: overlays.mask,
              heatmap: o.heatmap ? overlays.heatmap : grayImage(image.width, image.height),
              // two short lines: the 5x7 font is 6 px a letter and a tile can be 128 px wide
              caption: [set.slice(0, 20), `${item.label >= 0.5 ? 'PNEUMONIA' : 'NORMAL'} ${s.probability.toFixed(3)}${flagged ? ' FLAG' : ''}`],
            });
            process.stderr.write(
              `${set} ${basename(item.id)} label ${item.label} p ${s.probability.toFixed(4)} ${flagged ? 'flagged' : 'not flagged'} at ${threshold.toFixed(4)}${population ? ` (${population.population} threshold)` : ''}\n`,
            );
          }
        } finally {
          await engine.close();
        }
        const m = engine.models;
        const sheet = contactSheet(tiles, {
          side,
          columns,
          title: `SEGMENTER ${m.segmenter.version} CLASSIFIER ${m.classifier.version} - LUNG OUTLINE GREEN${o.heatmap ? ' - CAM HEATMAP' : ''}`,
        });
        const out = resolve(o.out);
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, await encodeRgbPng(sheet.data, sheet.width, sheet.height));
        process.stdout.write(`${out}\n`);
      }),
    );
}
