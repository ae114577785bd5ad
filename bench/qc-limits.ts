/**
 * What the served pipeline measures on real films, for setting the QC limits and the TTA
 * uncertainty bound from data instead of by guess.
 *
 *   npx tsx bench/qc-limits.ts --data DIR[,DIR2] [--split CSV --subset train,validation] [--max-images 200]
 *       [--models models] [--tta 4] [--precision auto] [--sheet out.png] [--json]
 *
 * For every image (drawn evenly from each folder; with --split, which belongs to the first
 * folder, only its rows of --subset):
 * the cleaned lung mask's share of the 256x256 frame, whether it touches the frame, the TTA
 * spread and the probability. Prints per-folder and pooled percentiles. --sheet writes a
 * contact sheet of the masks ordered by lung area (smallest first), so the films at both
 * tails can be judged by eye: a limit belongs where the masks stop looking right.
 */
import { writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { contactSheetPng, type SheetTile } from '../src/data/contact-sheet.js';
import { readSplitFile, parseSplitName } from '../src/data/split.js';
import { touchesBorder } from '../src/imaging/components.js';
import { grayImage } from '../src/imaging/types.js';
import { loadEngine } from '../src/inference/engine.js';
import { parsePrecision } from '../src/inference/precision.js';
import { itemsInSubset } from '../src/ml/calibrate.js';
import { segmenterInput } from '../src/imaging/pixel-contract.js';
import { loadEvalItems } from '../src/ml/train/dataset-source.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    split: { type: 'string' },
    subset: { type: 'string', default: 'validation' },
    'max-images': { type: 'string', default: '200' },
    models: { type: 'string', default: 'models' },
    tta: { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    precision: { type: 'string', default: 'auto' },
    sheet: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
if (!args.data) {
  process.stderr.write('--data DIR[,DIR2] is required\n');
  process.exit(2);
}

interface Row {
  set: string;
  file: string;
  label: number;
  area: number;
  border: boolean;
  spread: number;
  probability: number;
  tile?: SheetTile;
}

const max = Number(args['max-images']);
const engine = await loadEngine({
  modelsDir: args.models,
  tta: Number(args.tta),
  threads: Number(args.threads),
  precision: parsePrecision(args.precision!),
});
const rows: Row[] = [];
try {
  for (const dir of args.data.split(',')) {
    let items = await loadEvalItems(resolve(dir));
    if (args.split && dir === args.data.split(',')[0]) {
      // the split (of the first folder) narrows it to the listed subsets, e.g. train,validation (never test)
      const split = await readSplitFile(resolve(args.split));
      const subsets = args.subset!.split(',').map((x) => parseSplitName(x.trim()));
      const keep = new Set(subsets.flatMap((sub) => itemsInSubset(items, split, sub).map((i) => i.id)));
      items = items.filter((i) => keep.has(i.id));
    }
    const picked = items.length <= max ? items : Array.from({ length: max }, (_, i) => items[Math.floor(((i + 0.5) * items.length) / max)]);
    process.stderr.write(`${basename(dir)}: ${picked.length} of ${items.length} images\n`);
    let n = 0;
    for (const item of picked) {
      const image = await item.image();
      const s = await engine.scoreImage(image);
      const row: Row = {
        set: basename(resolve(dir)),
        file: item.id,
        label: item.label,
        area: s.lungAreaFraction,
        border: touchesBorder(s.mask),
        spread: s.spread,
        probability: s.probability,
      };
      if (args.sheet) {
        const small = segmenterInput(image, s.mask.width);
        const mask = grayImage(s.mask.width, s.mask.height, Float32Array.from(s.mask.data));
        row.tile = { image: small, mask, label: item.label >= 0.5 ? 'pneumonia' : 'normal' };
      }
      rows.push(row);
      if (++n % 20 === 0) process.stderr.write(`  ${n}/${picked.length}\n`);
    }
  }
} finally {
  await engine.close();
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round((p / 100) * (s.length - 1))))];
};
const P = [0.5, 1, 2.5, 5, 50, 95, 97.5, 99, 99.5];
const summary = (rs: Row[]) => ({
  n: rs.length,
  area: Object.fromEntries(
    P.map((p) => [
      `p${p}`,
      Number(
        q(
          rs.map((r) => r.area),
          p,
        ).toFixed(4),
      ),
    ]),
  ),
  areaMin: Number(Math.min(...rs.map((r) => r.area)).toFixed(4)),
  areaMax: Number(Math.max(...rs.map((r) => r.area)).toFixed(4)),
  touchesBorder: rs.filter((r) => r.border).length,
  spread: Object.fromEntries(
    [50, 90, 95, 99, 99.5].map((p) => [
      `p${p}`,
      Number(
        q(
          rs.map((r) => r.spread),
          p,
        ).toFixed(4),
      ),
    ]),
  ),
  spreadMax: Number(Math.max(...rs.map((r) => r.spread)).toFixed(4)),
});
const sets = [...new Set(rows.map((r) => r.set))];
const out = {
  models: {
    segmenter: `${engine.models.segmenter.version} ${engine.models.segmenter.precision}`,
    classifier: `${engine.models.classifier.version} ${engine.models.classifier.precision}`,
  },
  tta: Number(args.tta),
  perSet: Object.fromEntries(sets.map((s) => [s, summary(rows.filter((r) => r.set === s))])),
  pooled: summary(rows),
};
if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
else process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
if (args.sheet) {
  const sorted = [...rows].sort((a, b) => a.area - b.area);
  await writeFile(
    args.sheet,
    await contactSheetPng(
      sorted.map((r) => r.tile!),
      { tile: 128, columns: 16 },
    ),
  );
  process.stderr.write(
    `wrote ${args.sheet}: ${sorted.length} masks by lung area, smallest first (row-major); areas ${sorted.map((r) => r.area.toFixed(3)).join(' ')}\n`,
  );
}
