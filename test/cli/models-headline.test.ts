/**
 * `models list`'s headline for a version: the threshold the engine applies, not a block it
 * does not read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headline } from '../../src/cli/commands/models.js';
import type { ModelManifest } from '../../src/ml/model-store/index.js';

const block = (value: number, populations?: Record<string, number>) => ({
  value,
  targetRecall: 0.95,
  validationSensitivity: 0.95,
  validationSpecificity: 0.5,
  calibratedOn: { views: 4, scorer: 'onnxruntime', subset: 'validation', n: 10, split: 'split.csv', at: '2026-12-03T00:00:00Z' },
  ...(populations ? { populations: Object.fromEntries(Object.entries(populations).map(([k, v]) => [k, { value: v }])) } : {}),
});

const manifest = (quantization?: object) =>
  ({
    name: 'classifier',
    version: 'v1',
    metrics: { test: { auc: 0.9, recall: 0.96, specificity: 0.8, threshold: 0.4 } },
    threshold: block(0.4),
    ...(quantization ? { quantization } : {}),
  }) as unknown as ModelManifest;

test('an int8-served version heads with the int8 threshold block and its per-population values', () => {
  const line = headline(manifest({ served: true, threshold: block(0.51, { adult: 0.187, pediatric: 0.658 }) }));
  assert.match(line, /^threshold 0\.510 int8 \(adult 0\.187, pediatric 0\.658; 4 views, recall target 0\.95\); training test split: AUC 0\.900/);
});

test('a float-served version heads with its own threshold, and an int8 block that is not served is not shown', () => {
  assert.match(headline(manifest()), /^threshold 0\.400 float \(4 views/);
  assert.match(headline(manifest({ served: false, threshold: block(0.7) })), /^threshold 0\.400 float/);
});
