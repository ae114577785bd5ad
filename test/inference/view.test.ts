/** Which images of a study are scored, and the view check for images without a ViewPosition. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyView, viewCheckFailure } from '../../src/inference/view.js';
import { isoDate } from '../../src/dicom/attributes.js';

test('PA and AP are frontal; laterals, obliques and other body parts are not scored, with the reason; no view is checked later', () => {
  assert.deepEqual(classifyView('PA', 'CHEST'), { kind: 'frontal', view: 'PA' });
  assert.deepEqual(classifyView(' ap ', null), { kind: 'frontal', view: 'AP' });
  assert.deepEqual(classifyView('AP SUPINE', 'PORT CHEST'), { kind: 'frontal', view: 'AP' });
  assert.deepEqual(classifyView('LL', 'CHEST'), { kind: 'other', reason: 'lateral view (ViewPosition LL)' });
  assert.deepEqual(classifyView('LATERAL', null), { kind: 'other', reason: 'lateral view (ViewPosition LATERAL)' });
  assert.deepEqual(classifyView('RLD', 'CHEST'), { kind: 'other', reason: 'oblique or decubitus view (ViewPosition RLD)' });
  assert.deepEqual(classifyView('PA', 'HAND'), { kind: 'other', reason: "body part 'HAND' is not the chest" });
  assert.deepEqual(classifyView(null, 'CHEST'), { kind: 'unknown' });
  assert.deepEqual(classifyView('', ''), { kind: 'unknown' });
});

test('the view check excludes a header-less image whose lungs do not look like a frontal film', () => {
  assert.equal(viewCheckFailure({ qcFlags: [], lungAreaFraction: 0.3 }), null);
  assert.equal(viewCheckFailure({ qcFlags: ['mask_touches_border'], lungAreaFraction: 0.3 }), null);
  assert.match(String(viewCheckFailure({ qcFlags: ['lung_area_low'], lungAreaFraction: 0.031 })), /^view check: .* 3\.1% of the frame/);
  assert.match(String(viewCheckFailure({ qcFlags: ['lung_area_high'], lungAreaFraction: 0.8 })), /80\.0%/);
});

test('study dates: DICOM DA to ISO, nothing for what is not a real date', () => {
  assert.equal(isoDate('20261130'), '2026-11-30');
  assert.equal(isoDate('2026.11.30'), '2026-11-30');
  assert.equal(isoDate('20260230'), null);
  assert.equal(isoDate(''), null);
  assert.equal(isoDate(null), null);
  assert.equal(isoDate('2026113'), null);
});
