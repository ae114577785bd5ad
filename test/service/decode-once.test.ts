/**
 * Decode once per purpose (issue 15): a posted file is parsed once at acceptance, its pixels
 * are checked there without building a modality array, the worker parses and decodes it once
 * more to score it, and the results outbox once to draw the Secondary Capture result picture;
 * a re-post of the same file costs one parse and no pixel work. Counted on the real service
 * through the dicom layer's decode observer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { observeDecoding, readMetadata, type DecodeStep } from '../../src/dicom/index.js';
import { startHarness, study, type Harness } from '../support/api.js';

let h: Harness;
before(async () => {
  // with AI result objects: drawing their picture is a purpose of its own, counted (awaited) below
  h = await startHarness();
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

/** Waits until the study's result objects (SR and Secondary Capture) are built: the outbox's decode is part of the count. */
async function resultsBuilt(studyId: string): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const [row] = await h.db.ds.query(
      `SELECT count(*) FILTER (WHERE sha256 IS NOT NULL)::int AS built, count(*)::int AS all FROM derived_objects WHERE source_id = $1`,
      [studyId],
    );
    if (row.all > 0 && row.built === row.all) return;
    if (Date.now() > until) throw new Error(`result objects of ${studyId} not built: ${JSON.stringify(row)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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
    await resultsBuilt(r.body.id);
  });
  // acceptance: parse + pixel check on that parse; scoring: parse + pixels; the result picture:
  // parse + pixels (built by the outbox after scoring); no modality array anywhere
  assert.deepEqual(first, ['parse', 'pixels', 'parse', 'pixels', 'parse', 'pixels']);
  const again = await stepsOf(async () => {
    const r = await post(body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  assert.deepEqual(again, ['parse']);
});

test('STOW-RS to a named study checks the study on the one parse of acceptance', async () => {
  const body = study(12);
  const studyUid = readMetadata(body).studyInstanceUid!;
  const boundary = 'decode-once-boundary';
  const related = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), body, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const stow = (path: string) =>
    h.http
      .post(path)
      .set('Authorization', `Bearer ${h.token('workstation')}`)
      .set('Content-Type', `multipart/related; type="application/dicom"; boundary=${boundary}`)
      .send(related);
  const wrong = await stepsOf(async () => {
    const r = await stow('/dicomweb/studies/1.2.3.4.5');
    assert.equal(r.status, 409, JSON.stringify(r.body));
  });
  assert.deepEqual(wrong, ['parse'], 'refused on its one parse, pixels never touched');
  const right = await stepsOf(async () => {
    const r = await stow(`/dicomweb/studies/${studyUid}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  assert.deepEqual(right.slice(0, 2), ['parse', 'pixels'], 'accepted on one parse and one pixel check (scoring follows in the worker)');
});
