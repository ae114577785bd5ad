/**
 * Decode once per purpose (issue 15): a posted file is parsed once at acceptance, its pixels
 * are checked there without building a modality array, and the worker parses and decodes it
 * once more to score it; a re-post of the same file costs one parse and no pixel work. Counted
 * on the real service through the dicom layer's decode observer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { observeDecoding, type DecodeStep } from '../../src/dicom/index.js';
import { startHarness, study, type Harness } from '../support/api.js';

let h: Harness;
before(async () => {
  // no AI result objects: drawing their picture decodes the film once more, in the background, for a purpose of its own
  h = await startHarness({ results: null });
});
after(async () => {
  await h?.close();
});

async function stepsOf(fn: () => Promise<void>): Promise<DecodeStep[]> {
  const steps: DecodeStep[] = [];
  const stop = observeDecoding((s) => steps.push(s));
  try {
    await fn();
  } finally {
    stop();
  }
  return steps;
}

const post = (body: Buffer) =>
  h.http
    .post('/v1/studies?wait=true')
    .set('Authorization', `Bearer ${h.token('workstation')}`)
    .set('Content-Type', 'application/dicom')
    .send(body);

test('a posted study is parsed once and its pixels decoded once to accept it, then once each to score it; a re-post is one parse', async () => {
  const body = study(11);
  const first = await stepsOf(async () => {
    const r = await post(body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(['positive', 'negative'].includes(r.body.prediction?.decision ?? r.body.decision), JSON.stringify(r.body));
  });
  // acceptance: parse + pixel check on that parse; scoring: parse + pixels; no modality array anywhere
  assert.deepEqual(first, ['parse', 'pixels', 'parse', 'pixels']);
  const again = await stepsOf(async () => {
    const r = await post(body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  assert.deepEqual(again, ['parse']);
});
