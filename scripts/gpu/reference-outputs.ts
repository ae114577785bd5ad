/**
 * The tfjs probabilities of a version's graph on the first crops of an export-crops folder,
 * so finetune.py --check can show that its PyTorch rebuild of the graph computes the same.
 * `--help` prints the usage.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { initBackend } from '../../src/ml/backend.js';
import { loadModel } from '../../src/ml/model-io.js';
import { scriptArgs } from './cli-args.js';

const o = scriptArgs(
  `Usage: npx tsx scripts/gpu/reference-outputs.ts --version DIR --crops DIR [--n 16] > reference.json
Prints the tfjs probabilities of the version's graph on the first n crops of an export-crops folder.`,
  { version: {}, crops: {}, n: { default: '16' } },
  ['version', 'crops'],
);
await initBackend();
const crops = o.one('crops');
const n = Number(o.one('n'));
const rows = (await readFile(join(crops, 'index.csv'), 'utf8'))
  .trim()
  .split('\n')
  .slice(1, n + 1)
  .map((l) => l.split(','));
const model = await loadModel(o.one('version'));
const size = model.inputs[0].shape[1] as number;
const out: { name: string; probability: number }[] = [];
for (const r of rows) {
  const raw = await sharp(join(crops, 'img', r[0]))
    .greyscale()
    .raw()
    .toBuffer();
  const x = Float32Array.from(raw, (v) => v / 255);
  const y = tf.tidy(() => model.predict(tf.tensor4d(x, [1, size, size, 1])) as tf.Tensor);
  out.push({ name: r[0], probability: (await y.data())[0] });
  y.dispose();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
