/**
 * Writes every film's classifier input (the lung crop, 224 x 224, before augmentation) as a
 * grayscale JPEG, with an index of split, set and label, so a GPU machine can fine-tune the
 * network without the dataset folders or this project's pixel code.
 *   npx tsx scripts/gpu/export-crops.ts --data DIR... --split split.csv --segmenter DIR --out DIR [--size 224] [--quality 92] [--splits train,validation,test]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { prepareItem } from '../../src/data/batches.js';
import { itemSource, loadDatasets } from '../../src/data/multi-dataset.js';
import { readSplitFile } from '../../src/data/split.js';
import { parseWindowPolicy } from '../../src/dicom/index.js';
import { segmenterMasks } from '../../src/ml/train/dataset-source.js';
import { initBackend } from '../../src/ml/backend.js';

const args = process.argv.slice(2);
const many = (name: string): string[] => args.flatMap((a, k) => (a === name ? [args[k + 1]] : []));
const one = (name: string, dflt?: string): string => {
  const v = many(name)[0] ?? dflt;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};
const out = one('--out');
const quality = Number(one('--quality', '92'));
const size = Number(one('--size', '224'));
const wanted = new Set(one('--splits', 'train,validation,test').split(','));
await initBackend();
const pool = await loadDatasets(many('--data').map((dir) => ({ dir })));
const split = await readSplitFile(one('--split'));
const seg = await segmenterMasks(one('--segmenter'));
const window = parseWindowPolicy(undefined);
const splitOf = new Map(split.assignments.map((a) => [a.file, a.split]));
const items = pool.items.filter((i) => wanted.has(splitOf.get(i.file) ?? ''));
await mkdir(join(out, 'img'), { recursive: true });
const rows = ['name,file,set,split,label,cropped'];
let bytes = 0;
for (const [k, item] of items.entries()) {
  const p = await prepareItem(item, { task: 'classifier', size, window, maskFor: seg.maskFor });
  const px = new Uint8Array(p.image.data.length);
  for (let j = 0; j < px.length; j++) px[j] = Math.max(0, Math.min(255, Math.round(p.image.data[j] * 255)));
  const jpg = await sharp(Buffer.from(px), { raw: { width: size, height: size, channels: 1 } })
    .jpeg({ quality })
    .toBuffer();
  const name = `${k}.jpg`;
  await writeFile(join(out, 'img', name), jpg);
  bytes += jpg.length;
  rows.push([name, item.file, itemSource(item), splitOf.get(item.file), item.target, p.cropped ? 1 : 0].join(','));
  if (k % 250 === 0) process.stderr.write(`${k + 1}/${items.length} crops, ${(bytes / 1048576).toFixed(1)} MiB\n`);
}
await writeFile(join(out, 'index.csv'), `${rows.join('\n')}\n`);
process.stderr.write(`${items.length} crops, ${(bytes / 1048576).toFixed(1)} MiB in ${out}\n`);
