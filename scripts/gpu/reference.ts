/**
 * The tfjs probabilities of a version's graph on the first crops of an export-crops folder: what
 * finetune.py --check compares its PyTorch rebuild of the graph with.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { loadModel } from '../../src/ml/model-io.js';

export interface ReferenceRow {
  name: string;
  probability: number;
}

/** Needs a tfjs backend (initBackend) first. */
export async function referenceProbabilities(versionDir: string, cropsDir: string, n: number): Promise<ReferenceRow[]> {
  const rows = (await readFile(join(cropsDir, 'index.csv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1, n + 1)
    .map((l) => l.split(','));
  const model = await loadModel(versionDir);
  try {
    const size = model.inputs[0].shape[1] as number;
    const out: ReferenceRow[] = [];
    for (const r of rows) {
      const raw = await sharp(join(cropsDir, 'img', r[0]))
        .greyscale()
        .raw()
        .toBuffer();
      const x = Float32Array.from(raw, (v) => v / 255);
      const y = tf.tidy(() => model.predict(tf.tensor4d(x, [1, size, size, 1])) as tf.Tensor);
      out.push({ name: r[0], probability: (await y.data())[0] });
      y.dispose();
    }
    return out;
  } finally {
    model.dispose();
  }
}
