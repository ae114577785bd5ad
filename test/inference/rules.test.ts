import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qcFlags, isNotFrontalChest, DEFAULT_QC_LIMITS, type QcInput } from '../../src/inference/qc.js';
import { decide, meanAndSpread } from '../../src/inference/decision.js';
import { ttaViews, ttaBatch } from '../../src/imaging/pixel-contract.js';
import { classActivationMap, normalizeCam, camToImage } from '../../src/inference/cam.js';
import { grayImage } from '../../src/imaging/types.js';

const ok: QcInput = { lungAreaFraction: 0.3, maskTouchesBorder: false, width: 2048, height: 2500, viewPosition: 'PA', bodyPartExamined: 'CHEST' };

test('a plausible frontal chest passes every QC check', () => {
  assert.deepEqual(qcFlags(ok), []);
  assert.deepEqual(qcFlags({ ...ok, viewPosition: null, bodyPartExamined: null }), []);
});

test('lung area outside the plausible range is flagged low or high', () => {
  assert.deepEqual(qcFlags({ ...ok, lungAreaFraction: DEFAULT_QC_LIMITS.minLungFraction - 0.01 }), ['lung_area_low']);
  assert.deepEqual(qcFlags({ ...ok, lungAreaFraction: 0 }), ['lung_area_low']);
  assert.deepEqual(qcFlags({ ...ok, lungAreaFraction: DEFAULT_QC_LIMITS.maxLungFraction + 0.01 }), ['lung_area_high']);
  assert.deepEqual(qcFlags({ ...ok, lungAreaFraction: DEFAULT_QC_LIMITS.minLungFraction }), []);
});

test('a mask touching the border and a small image are flagged', () => {
  assert.deepEqual(qcFlags({ ...ok, maskTouchesBorder: true }), ['mask_touches_border']);
  assert.deepEqual(qcFlags({ ...ok, width: 255 }), ['image_too_small']);
  assert.deepEqual(qcFlags({ ...ok, width: 256, height: 256 }), []);
  assert.deepEqual(qcFlags({ ...ok, height: 200 }, { ...DEFAULT_QC_LIMITS, minImageSide: 100 }), []);
});

test('lateral, oblique and decubitus views and non-chest body parts are not frontal chests', () => {
  for (const v of ['LATERAL', 'LL', 'rl', ' RLD ', 'LAO']) assert.equal(isNotFrontalChest(v, 'CHEST'), true, v);
  for (const v of ['PA', 'AP', '', null]) assert.equal(isNotFrontalChest(v, 'CHEST'), false, String(v));
  for (const p of ['CHEST', 'thorax', 'LUNG', 'PORT CHEST', '', null]) assert.equal(isNotFrontalChest('PA', p), false, String(p));
  for (const p of ['ABDOMEN', 'HAND', 'SKULL']) assert.equal(isNotFrontalChest('PA', p), true, p);
  assert.deepEqual(qcFlags({ ...ok, viewPosition: 'LL' }), ['not_frontal_chest']);
});

test('positive at or above the threshold; flagged when positive, uncertain or failing QC', () => {
  assert.deepEqual(decide(0.3, 0.3, 0.01, 0.1, []), { decision: 'positive', uncertain: false, flagged: true, flagReasons: ['positive'] });
  assert.deepEqual(decide(0.29, 0.3, 0.01, 0.1, []), { decision: 'negative', uncertain: false, flagged: false, flagReasons: [] });
  assert.deepEqual(decide(0.1, 0.3, 0.11, 0.1, []), { decision: 'negative', uncertain: true, flagged: true, flagReasons: ['uncertain'] });
  assert.deepEqual(decide(0.1, 0.3, 0.1, 0.1, []).flagged, false); // the bound itself is not uncertain
  assert.deepEqual(decide(0.9, 0.3, 0.2, 0.1, ['lung_area_low', 'not_frontal_chest']).flagReasons, [
    'positive',
    'uncertain',
    'qc:lung_area_low',
    'qc:not_frontal_chest',
  ]);
  assert.deepEqual(decide(0.1, 0.3, 0, 0.1, ['image_too_small']), {
    decision: 'negative',
    uncertain: false,
    flagged: true,
    flagReasons: ['qc:image_too_small'],
  });
});

test('TTA spread is the sample standard deviation (n-1), 0 for a single view', () => {
  assert.deepEqual(meanAndSpread([0.5]), { mean: 0.5, spread: 0 });
  const r = meanAndSpread([1, 2, 3, 4]);
  assert.equal(r.mean, 2.5);
  assert.ok(Math.abs(r.spread - Math.sqrt(5 / 3)) < 1e-12);
  assert.throws(() => meanAndSpread([]), RangeError);
});

test('TTA views follow the reference: identity, then +5/-5/0 degrees with scales 1.05/0.95', () => {
  assert.deepEqual(ttaViews(1), [{ angleDeg: 0, scale: 1 }]);
  assert.deepEqual(ttaViews(6), [
    { angleDeg: 0, scale: 1 },
    { angleDeg: 5, scale: 1.05 },
    { angleDeg: -5, scale: 0.95 },
    { angleDeg: 0, scale: 1.05 },
    { angleDeg: 5, scale: 0.95 },
    { angleDeg: -5, scale: 1.05 },
  ]);
  assert.throws(() => ttaViews(0), RangeError);
  assert.throws(() => ttaViews(1.5), RangeError);
});

test('the TTA batch holds the identity view first, then the warped views', () => {
  const img = grayImage(
    8,
    8,
    Float32Array.from({ length: 64 }, (_, i) => (i % 8) / 7),
  );
  const batch = ttaBatch(img, ttaViews(3));
  assert.equal(batch.length, 3 * 64);
  assert.deepEqual(Array.from(batch.subarray(0, 64)), Array.from(img.data));
  // a 5 degree turn moves the ramp: the second view differs from the first
  assert.notDeepEqual(Array.from(batch.subarray(64, 128)), Array.from(img.data));
});

test('CAM is the head-weighted sum of the feature maps, exactly', () => {
  // two channels of a 2x2 map; weights 2 and -1
  const features = Float32Array.from([1, 2, 3, 4, /* channel 1 */ 0.5, 0, 1, 8]);
  const cam = classActivationMap(features, 2, 2, 2, [2, -1]);
  assert.deepEqual(Array.from(cam), [1.5, 4, 5, 0]);
  assert.throws(() => classActivationMap(features, 2, 2, 2, [1]), RangeError);
});

test('a CAM is shown as its positive part scaled to a maximum of 1', () => {
  assert.deepEqual(Array.from(normalizeCam([1.5, 4, -2, 0])), [0.375, 1, 0, 0]);
  assert.deepEqual(Array.from(normalizeCam([-1, -2])), [0, 0]);
});

test('the CAM is upsampled onto the lung box and is zero outside it', () => {
  const heat = camToImage(Float32Array.from([1, 1, 1, 1]), 2, 2, { x0: 1, y0: 2, x1: 3, y1: 4 }, 4, 5);
  assert.deepEqual(Array.from(heat.data), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
});
