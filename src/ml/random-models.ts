/**
 * Random-weight model versions with the real layout (tfjs artifacts, manifest.json,
 * model.onnx) for tests and latency benchmarks, before or without trained models. Weights
 * are the builders' seeded initialisation: only shapes and timing mean anything. Never
 * written into models/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildDenseNet121SE, densenetConfig, type DenseNetOptions } from './densenet.js';
import { writeManifest, type ModelManifest } from './model-store/index.js';
import { saveModel } from './model-io.js';
import { exportModelVersion } from './onnx/model-version.js';
import { buildUNet, unetConfig, type UNetOptions } from './unet.js';

export interface RandomModelsOptions {
  /** 'full' = the shipped architectures; 'small' = tiny variants for fast tests */
  size: 'full' | 'small';
  seed?: number;
  version?: string;
  /** the classifier's "calibrated" threshold */
  threshold?: number;
  log?: (line: string) => void;
}

export const SMALL_UNET: UNetOptions = { inputSize: 64, base: 4, depth: 3 };
export const SMALL_DENSENET: DenseNetOptions = { inputSize: 32, blocks: [2, 2], growth: 8, stemFilters: 16, bnSize: 2 };

function manifestFor(
  name: 'segmenter' | 'classifier',
  version: string,
  architecture: string,
  config: Record<string, unknown>,
  inputSize: number,
  threshold: number | null,
): Omit<ModelManifest, 'files'> {
  return {
    name,
    version,
    architecture,
    architectureConfig: config,
    inputSize,
    createdAt: new Date().toISOString(),
    training: {
      data: { root: 'external', path: '(none: random weights for tests and benchmarks)' },
      dataHash: '',
      dataSize: 0,
      config: {},
      epochs: 0,
      split: { train: 0, validation: 0, test: 0 },
    },
    metrics: { validation: {}, test: {} },
    threshold: threshold === null ? null : { value: threshold, targetRecall: 0.95, validationSensitivity: 1, validationSpecificity: 0 },
  };
}

/** Writes <root>/segmenter/<version>/ and <root>/classifier/<version>/; returns their folders. */
export async function createRandomModels(root: string, opts: RandomModelsOptions): Promise<{ segmenter: string; classifier: string }> {
  const version = opts.version ?? `random-${opts.size}`;
  const seed = opts.seed ?? 0;
  const log = opts.log ?? (() => {});
  const unetOpts: UNetOptions = { ...(opts.size === 'small' ? SMALL_UNET : {}), seed };
  const dnOpts: DenseNetOptions = { ...(opts.size === 'small' ? SMALL_DENSENET : {}), seed };

  const segDir = join(root, 'segmenter', version);
  await mkdir(segDir, { recursive: true });
  const unet = buildUNet(unetOpts);
  const ucfg = unetConfig(unetOpts);
  await saveModel(unet, segDir);
  unet.dispose();
  await writeManifest(segDir, manifestFor('segmenter', version, 'unet', { ...ucfg }, ucfg.inputSize, null));
  await exportModelVersion(segDir, log);

  const clsDir = join(root, 'classifier', version);
  await mkdir(clsDir, { recursive: true });
  const dn = buildDenseNet121SE(dnOpts);
  const dcfg = densenetConfig(dnOpts);
  await saveModel(dn, clsDir);
  dn.dispose();
  await writeManifest(clsDir, manifestFor('classifier', version, 'densenet121-se', { ...dcfg }, dcfg.inputSize, opts.threshold ?? 0.5));
  await exportModelVersion(clsDir, log);
  return { segmenter: segDir, classifier: clsDir };
}
