/**
 * A publish through the model store in a process of its own, for the staging tests:
 * `stalled-publish.ts MODEL_DIR VERSION stall` stages VERSION, writes 3 MB into the staging
 * folder, prints `staged <folder>` and waits there until killed (a publish caught midway);
 * `... publish` publishes VERSION and prints its folder (what it said about stale staging
 * folders goes to stderr, as from any publishing command).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeManifest, writeVersion } from '../../src/ml/model-store/index.js';

const [modelDir, version, mode] = process.argv.slice(2);
const { dir } = await writeVersion(modelDir, version, async (stage) => {
  await writeFile(join(stage, 'weights.bin'), Buffer.alloc(3_000_000, 7));
  if (mode === 'stall') {
    process.stdout.write(`staged ${stage}\n`);
    await new Promise(() => setInterval(() => {}, 60_000));
  }
  return writeManifest(stage, {
    name: 'classifier',
    version,
    architecture: 'densenet121-se',
    architectureConfig: {},
    inputSize: 224,
    createdAt: new Date().toISOString(),
    training: { data: { root: 'external', path: 'x' }, dataHash: 'h', dataSize: 1, config: {}, epochs: 0, split: { train: 1, validation: 0, test: 0 } },
    metrics: { validation: {}, test: {} },
    threshold: null,
  });
});
process.stdout.write(`published ${dir}\n`);
