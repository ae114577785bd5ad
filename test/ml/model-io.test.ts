import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildDenseNet121SE, featuresModel } from '../../src/ml/densenet.js';
import { buildUNet } from '../../src/ml/unet.js';
import { loadModel, saveModel } from '../../src/ml/model-io.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/ml/float16.js';
import { CxrError } from '../../src/errors.js';
import { setupBackend } from '../support/ml.js';

await setupBackend();

const tmp = mkdtempSync(join(tmpdir(), 'cxr-model-io-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** Moves BN statistics and the head away from their initial values so outputs are not all ~0.5. */
function perturb(model: tf.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    layer.setWeights(
      ws.map((w, i) =>
        tf.tidy(() => {
          const noise = tf.randomUniform(w.shape, -1, 1, 'float32', seed + i);
          return layer.getClassName() === 'BatchNormalization' ? tf.mul(w, tf.add(1, tf.mul(noise, 0.3))) : tf.add(w, tf.mul(noise, 0.02));
        }),
      ),
    );
    // getWeights() hands out the variables themselves: nothing to dispose here
  }
}

test('float16 encoding rounds to nearest even and clamps to the largest half', () => {
  assert.equal(float32ToFloat16Bits(1), 0x3c00);
  assert.equal(float32ToFloat16Bits(-2), 0xc000);
  assert.equal(float32ToFloat16Bits(0.1), 0x2e66);
  assert.equal(float32ToFloat16Bits(65504), 0x7bff);
  assert.equal(float32ToFloat16Bits(1e6), 0x7bff);
  assert.equal(float32ToFloat16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(float32ToFloat16Bits(2 ** -26), 0x0000); // below half of it
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00); // halfway: to even
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // halfway: to even (up)
  assert.equal(float16BitsToFloat32(0x3555), 0.333251953125);
  for (const v of [0.3333, -7.77, 1234.5, 3e-5]) {
    const back = float16BitsToFloat32(float32ToFloat16Bits(v));
    assert.ok(Math.abs(back - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v} -> ${back}`);
  }
});

test('a saved model loads back with identical predictions', async () => {
  const m = buildUNet({ inputSize: 16, base: 2, depth: 2, seed: 4 });
  perturb(m, 10);
  const dir = join(tmp, 'unet32');
  await saveModel(m, dir);
  const loaded = await loadModel(dir);
  const x = tf.randomUniform([2, 16, 16, 1], 0, 1, 'float32', 9);
  const a = (m.predict(x) as tf.Tensor).dataSync();
  const b = (loaded.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.equal(json.format, 'layers-model');
  assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  tf.dispose([x]);
  m.dispose();
  loaded.dispose();
});

test('float16 storage halves the weights and keeps outputs within float16 precision', async () => {
  const m = buildDenseNet121SE({ inputSize: 64, blocks: [1, 1, 1, 1], growth: 8, stemFilters: 16, seed: 2 });
  perturb(m, 20);
  await saveModel(m, join(tmp, 'dn32'));
  await saveModel(m, join(tmp, 'dn16'), { float16: true });
  const s32 = statSync(join(tmp, 'dn32', 'weights.bin')).size;
  const s16 = statSync(join(tmp, 'dn16', 'weights.bin')).size;
  assert.equal(s16 * 2, s32);
  const loaded = await loadModel(join(tmp, 'dn16'));
  // every weight decodes to its float16 rounding
  const w32 = m.getLayer('stem_conv').getWeights()[0].dataSync();
  const w16 = loaded.getLayer('stem_conv').getWeights()[0].dataSync();
  for (let i = 0; i < w32.length; i++) assert.equal(w16[i], float16BitsToFloat32(float32ToFloat16Bits(w32[i])));
  // the CAM feature maps and the probability stay within a few float16 steps
  const x = tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 3);
  const [pa, fa] = featuresModel(m).predict(x) as tf.Tensor[];
  const [pb, fb] = featuresModel(loaded).predict(x) as tf.Tensor[];
  const a = fa.dataSync();
  const b = fb.dataSync();
  const scale = Math.max(...a.map(Math.abs));
  assert.ok(scale > 0);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  assert.ok(worst < 1e-2, `feature maps differ by ${worst} of their range`);
  assert.ok(Math.abs(pa.dataSync()[0] - pb.dataSync()[0]) < 1e-3);
  tf.dispose([x, pa, fa, pb, fb]);
  m.dispose();
  loaded.dispose();
});

test('loading a folder without a model, or with truncated weights, is a typed error', async () => {
  await assert.rejects(loadModel(join(tmp, 'nothing-here')), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_MISSING');
  const dir = join(tmp, 'broken');
  const m = buildUNet({ inputSize: 16, base: 2, depth: 1 });
  await saveModel(m, dir);
  m.dispose();
  const bytes = readFileSync(join(dir, 'weights.bin'));
  writeFileSync(join(dir, 'weights.bin'), bytes.subarray(0, bytes.length - 8));
  await assert.rejects(loadModel(dir), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID');
});
