/**
 * A contact sheet of real films through the served pipeline: for each dataset folder, a few
 * test-split films (half normal, half pneumonia, picked by a seeded draw) with the
 * segmenter's lung outline (green), the class activation map of the identity view blended in
 * jet colours, and the label letter (N/P) and calibrated probability in the corner (red when
 * the film is flagged positive at the version's threshold).
 *
 *   npx tsx bench/model-sheet.ts --classifier models/classifier/V --segmenter models/segmenter/V \
 *       --split models/classifier/V/split.csv --data ../shared/data/nih-cxr8-pneumonia \
 *       --data ../shared/data/kermany-pediatric-pneumonia --per-set 6 --out fixtures/overlays/sheet.png
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { rngFor } from '../src/data/rng.js';
import { textCells } from '../src/data/phantom/font.js';
import { heatmapOverlay, maskOutline } from '../src/imaging/overlay.js';
import { encodeRgbPng } from '../src/imaging/png.js';
import { resizeArea } from '../src/imaging/resize.js';
import { grayImage } from '../src/imaging/types.js';
import { camToImage } from '../src/inference/cam.js';
import { loadEngine } from '../src/inference/engine.js';
import { loadSplitItems } from '../src/ml/calibrate.js';

const { values } = parseArgs({
  options: {
    classifier: { type: 'string' },
    segmenter: { type: 'string' },
    split: { type: 'string' },
    data: { type: 'string', multiple: true },
    'per-set': { type: 'string', default: '6' },
    tile: { type: 'string', default: '256' },
    out: { type: 'string' },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(
    'npx tsx bench/model-sheet.ts --classifier DIR --segmenter DIR --split CSV --data DIR [--data DIR] --out PNG [--per-set N] [--tile PX] [--seed N]\n' +
      'Draws test-split films of each set through the served pipeline: lung outline (green), class activation map, label letter and calibrated probability (red when flagged).\n',
  );
  process.exit(0);
}
if (!values.classifier || !values.segmenter || !values.split || !values.data || !values.out) {
  console.error('usage: bench/model-sheet.ts --classifier DIR --segmenter DIR --split CSV --data DIR [--data DIR] --out PNG [--per-set N]');
  process.exit(2);
}
const perSet = Number(values['per-set']);
const size = Number(values.tile);
const engine = await loadEngine({ classifierDir: resolve(values.classifier), segmenterDir: resolve(values.segmenter), tta: 4 });
const tiles: { rgb: Uint8Array; label: number; p: number; flagged: boolean }[] = [];
for (const dir of values.data) {
  const items = await loadSplitItems([resolve(dir)], resolve(values.split), 'test');
  for (const label of [0, 1]) {
    const pool = items.filter((i) => i.label === label);
    const picked = rngFor(['sheet', Number(values.seed), dir, label])
      .shuffle(pool)
      .slice(0, Math.ceil(perSet / 2));
    for (const item of picked) {
      const image = await item.image();
      const s = await engine.scoreImage(image);
      const box = s.box ?? { x0: 0, y0: 0, x1: image.width, y1: image.height };
      const heat = resizeArea(camToImage(s.cam.values, s.cam.width, s.cam.height, box, image.width, image.height), size, size);
      const small = resizeArea(image, size, size);
      const rgb = heatmapOverlay(small, heat).data;
      const mask = grayImage(s.mask.width, s.mask.height, Float32Array.from(s.mask.data));
      const outline = maskOutline(resizeArea(mask, size, size));
      for (let k = 0; k < outline.length; k++) if (outline[k]) rgb.set([40, 220, 90], k * 3);
      const flagged = s.probability >= engine.threshold.value;
      caption(rgb, `${label ? 'P' : 'N'} ${s.probability.toFixed(2)}`, flagged ? [255, 60, 60] : [255, 255, 255]);
      tiles.push({ rgb, label, p: s.probability, flagged });
      process.stderr.write(`${item.id}: label ${label}, probability ${s.probability.toFixed(3)}${flagged ? ' (flagged)' : ''}\n`);
    }
  }
}
await engine.close();

function caption(rgb: Uint8Array, text: string, colour: [number, number, number]): void {
  const cell = Math.max(1, Math.round(size / 100));
  for (const [cx, cy] of textCells(text)) {
    for (let dy = 0; dy < cell; dy++)
      for (let dx = 0; dx < cell; dx++) {
        const o = ((4 + cy * cell + dy) * size + 4 + cx * cell + dx) * 3;
        rgb.set(colour, o);
      }
  }
}

const cols = perSet;
const rows = Math.ceil(tiles.length / cols);
const sheet = new Uint8Array(cols * size * rows * size * 3);
tiles.forEach((t, n) => {
  const ox = (n % cols) * size;
  const oy = Math.floor(n / cols) * size;
  for (let y = 0; y < size; y++) sheet.set(t.rgb.subarray(y * size * 3, (y + 1) * size * 3), ((oy + y) * cols * size + ox) * 3);
});
await writeFile(resolve(values.out), await encodeRgbPng(sheet, cols * size, rows * size));
process.stderr.write(`wrote ${values.out}: ${tiles.length} films, one row of ${cols} per set\n`);
