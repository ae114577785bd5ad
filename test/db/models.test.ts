/**
 * The model registry mirrors the files: a version whose decision rule on disk differs from the
 * one registered under its name is refused at registration (i.e. at server start), while
 * reworded provenance is copied into the row.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { findModel, registerModel } from '../../src/db/models.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

function manifest(threshold: number, data: string): Record<string, unknown> {
  return {
    name: 'classifier',
    version: 'v7',
    architecture: 'densenet121-se',
    architectureConfig: { growth: 4 },
    inputSize: 32,
    files: { 'model.onnx': 'a'.repeat(64) },
    threshold: { value: threshold, targetRecall: 0.95, validationSensitivity: 1, validationSpecificity: 0.5 },
    training: { data: { root: 'shared', path: data } },
  };
}

test('a version whose threshold on disk differs from the registered one is refused with both values named; new provenance is recorded', async () => {
  const m = { kind: 'classifier' as const, name: 'classifier', version: 'v7', sha256: 'a'.repeat(64) };
  await registerModel(db.ds, { ...m, manifest: manifest(0.285, 'data/old') });
  await assert.rejects(
    registerModel(db.ds, { ...m, manifest: manifest(0.354, 'data/old') }),
    (e: Error & { code?: string }) =>
      e.code === 'E_MODEL_INVALID' &&
      /classifier@v7 on disk differs from the registered one \(threshold\.value: 0\.285 -> 0\.354\)/.test(e.message) &&
      /new version/.test(e.message),
  );
  assert.equal(((await findModel(db.ds, 'classifier', 'v7'))!.manifest.threshold as { value: number }).value, 0.285);
  await registerModel(db.ds, { ...m, manifest: manifest(0.285, 'data/new') });
  assert.deepEqual((await findModel(db.ds, 'classifier', 'v7'))!.manifest.training, { data: { root: 'shared', path: 'data/new' } });
});
