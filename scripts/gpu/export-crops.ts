/**
 * Usage: npx tsx scripts/gpu/export-crops.ts --data DIR [--data DIR...] --split CSV --segmenter DIR --out DIR
 *   [--size 224] [--quality 92] [--splits train,validation,test]
 * Writes every film's classifier input (the served lung crop, 224 x 224 by default, before
 * augmentation) as a grayscale JPEG into DIR/img/ and DIR/index.csv (name,file,set,split,label,
 * cropped), so a GPU machine can fine-tune the network (scripts/gpu/finetune.py) without the
 * dataset folders or this project's pixel code.
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
import { scriptArgs } from './cli-args.js';

const o = scriptArgs(
  import.meta.url,
  {
    data: { multiple: true },
    split: {},
    segmenter: {},
    out: {},
    size: { default: '224' },
    quality: { default: '92' },
    splits: { default: 'train,validation,test' },
  },
  ['data', 'split', 'segmenter', 'out'],
);
const out = o.one('out');
const quality = Number(o.one('quality'));
const size = Number(o.one('size'));
const wanted = new Set(o.one('splits').split(','));
await initBackend();
const pool = await loadDatasets(o.many('data').map((dir) => ({ dir })));
const split = await readSplitFile(o.one('split'));
const seg = await segmenterMasks(o.one('segmenter'));
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
