/**
 * Small random-weight models for tests, made once per test run. Building them with tfjs and
 * exporting them to ONNX costs about a second of CPU, and some thirty test files make the same
 * few. The first call for a set of options writes them under the run's build folder
 * (CXR_TEST_BUILD, set by scripts/test.mjs); every call copies them into `root` and re-dates the
 * manifests (a test may expect the version it makes last to be the newest). Without
 * CXR_TEST_BUILD they are made in place, as before.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readManifest, writeManifest } from '../../src/ml/model-store/index.js';
import type { RandomModelsOptions } from '../../src/ml/random-models.js';

export type TestModelsOptions = Omit<RandomModelsOptions, 'log'>;

async function make(root: string, opts: TestModelsOptions): Promise<{ segmenter: string; classifier: string }> {
  // loaded only when the models are made: most test files then never load tfjs
  const tf = await import('@tensorflow/tfjs');
  // as the tests always made them: seeded weights on the plain cpu backend
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  const { createRandomModels } = await import('../../src/ml/random-models.js');
  return createRandomModels(root, opts);
}

/** Writes <root>/segmenter/<version>/ and <root>/classifier/<version>/ as createRandomModels does; returns their folders. */
export async function randomModels(root: string, opts: TestModelsOptions): Promise<{ segmenter: string; classifier: string }> {
  const build = process.env.CXR_TEST_BUILD;
  if (!build) return make(root, opts);
  const version = opts.version ?? `random-${opts.size}`;
  const key = createHash('sha256')
    .update(JSON.stringify([opts.size, opts.seed ?? 0, version, opts.threshold ?? null]))
    .digest('hex')
    .slice(0, 16);
  const cached = join(build, 'random-models', key);
  if (!existsSync(cached)) {
    const tmp = `${cached}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(dirname(tmp), { recursive: true });
    await make(tmp, opts);
    // another test process may have made the same ones meanwhile: either copy is right
    await rename(tmp, cached).catch(() => rm(tmp, { recursive: true, force: true }));
  }
  const out = { segmenter: join(root, 'segmenter', version), classifier: join(root, 'classifier', version) };
  for (const name of ['segmenter', 'classifier'] as const) {
    await cp(join(cached, name, version), out[name], { recursive: true });
    const { files: _files, ...manifest } = await readManifest(out[name]);
    await writeManifest(out[name], { ...manifest, createdAt: new Date().toISOString() });
  }
  return out;
}
