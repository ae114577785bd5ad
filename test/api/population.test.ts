/**
 * Per-population thresholds through the API: a version with adult and pediatric thresholds is
 * activated, and a child's and an adult's study of the same pixels are stored with the
 * threshold of their population (the prediction's `threshold` column and its report).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deriveVersion } from '../../src/ml/model-store/index.js';
import { chestDicom, startHarness, type Harness } from '../support/api.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

test("a child's and an adult's study of the same pixels are decided and stored at their population's threshold", async () => {
  const derived = await deriveVersion(join(h.modelsDir, 'classifier', 'random-small'), {
    version: 'random-small-pop',
    reason: 'calibrate --population',
    change: async (_dir, m) => ({
      ...m,
      threshold: {
        ...m.threshold!,
        populations: {
          adult: { value: 0.25, validationSensitivity: 0.97, validationSpecificity: 0.4, n: 55, positives: 30, datasets: ['nih'] },
          pediatric: { value: 0.65, validationSensitivity: 0.95, validationSpecificity: 0.64, n: 476, positives: 342, datasets: ['kermany'] },
        },
      },
    }),
  });
  const admin = `Bearer ${h.token('admin')}`;
  const act = await h.http.post(`/v1/admin/models/classifier/${derived.manifest.version}/activate`).set('Authorization', admin);
  assert.equal(act.status, 200, JSON.stringify(act.body));
  const post = (body: Uint8Array) =>
    h.http
      .post('/v1/studies?wait=true')
      .set('Authorization', `Bearer ${h.token('workstation')}`)
      .set('Content-Type', 'application/dicom')
      .send(Buffer.from(body));
  const child = (await post(chestDicom({ size: 256, seed: 41, patientAge: '004Y' }))).body;
  const adult = (await post(chestDicom({ size: 256, seed: 41, patientAge: '052Y' }))).body;
  assert.notEqual(child.id, adult.id);
  assert.equal(child.prediction.probability, adult.prediction.probability);
  assert.equal(child.prediction.threshold, 0.65);
  assert.equal(adult.prediction.threshold, 0.25);
  assert.equal(child.prediction.report.population.name, 'pediatric');
  assert.equal(adult.prediction.report.population.reason, 'age 52 y from PatientAge: adult threshold');
  assert.equal(child.prediction.decision, child.prediction.probability >= 0.65 ? 'positive' : 'negative');
  assert.equal(adult.prediction.decision, adult.prediction.probability >= 0.25 ? 'positive' : 'negative');
  // the stored row, as the worklist and every result reader get it
  const stored: { threshold: number }[] = await h.db.ds.query(
    `SELECT p.threshold FROM predictions p JOIN studies s ON s.id = p.study_id WHERE s.id = ANY($1::uuid[]) ORDER BY p.threshold`,
    [[child.id, adult.id]],
  );
  assert.deepEqual(
    stored.map((r) => Number(r.threshold)),
    [0.25, 0.65],
  );
});
