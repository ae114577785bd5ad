import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  assertManifest,
  decisionDifferences,
  deriveVersion,
  findAbsolutePaths,
  listVersions,
  portableCommand,
  portablePath,
  readActive,
  readManifest,
  refreshFileHashes,
  REPO_ROOT,
  resolveModelVersion,
  verifyManifest,
  versionFromDate,
  writeManifest,
  type ModelManifest,
} from '../../src/ml/model-store/index.js';
import { CxrError } from '../../src/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-manifest-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function base(name: string, version: string, createdAt: string): Omit<ModelManifest, 'files'> {
  return {
    name,
    version,
    architecture: 'densenet121-se',
    architectureConfig: { growth: 32 },
    inputSize: 224,
    createdAt,
    training: {
      data: { root: 'repo', path: 'data/x' },
      dataHash: 'abc',
      dataSize: 10,
      config: { lr: 1e-4 },
      epochs: 3,
      split: { train: 7, validation: 1, test: 2 },
    },
    metrics: { validation: { auc: 0.9 }, test: { auc: 0.8 } },
    threshold: { value: 0.31, targetRecall: 0.95, validationSensitivity: 1, validationSpecificity: 0.5 },
  };
}

function version(dir: string, name: string, v: string): string {
  const d = join(dir, name, v);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'model.json'), '{"a":1}');
  writeFileSync(join(d, 'weights.bin'), Buffer.from([1, 2, 3]));
  return d;
}

test('writeManifest records the sha256 of every file in the folder', async () => {
  const d = version(tmp, 'classifier', 'v1');
  mkdirSync(join(d, 'extra'));
  writeFileSync(join(d, 'extra', 'note.txt'), 'hi');
  const m = await writeManifest(d, base('classifier', 'v1', '2025-01-01T00:00:00.000Z'));
  const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
  assert.deepEqual(m.files, {
    'extra/note.txt': sha('hi'),
    'model.json': sha('{"a":1}'),
    'weights.bin': sha(Buffer.from([1, 2, 3])),
  });
  const back = await readManifest(d);
  assert.deepEqual(back, m);
  assert.equal((await verifyManifest(d)).ok, true);
});

test('verification catches a modified, a missing and an unlisted file', async () => {
  const d = version(tmp, 'classifier', 'v2');
  await writeManifest(d, base('classifier', 'v2', '2025-01-02T00:00:00.000Z'));
  writeFileSync(join(d, 'weights.bin'), Buffer.from([1, 2, 4]));
  let check = await verifyManifest(d);
  assert.deepEqual(check, { ok: false, modified: ['weights.bin'], missing: [], unlisted: [] });
  rmSync(join(d, 'model.json'));
  writeFileSync(join(d, 'model.onnx'), 'onnx');
  check = await verifyManifest(d);
  assert.deepEqual(check, { ok: false, modified: ['weights.bin'], missing: ['model.json'], unlisted: ['model.onnx'] });
  await assert.rejects(assertManifest(d), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /weights\.bin/.test(e.message));
});

test('refreshFileHashes adds a file written after training (model.onnx) and keeps the rest', async () => {
  const d = version(tmp, 'segmenter', 'v1');
  const first = await writeManifest(d, { ...base('segmenter', 'v1', '2025-01-03T00:00:00.000Z'), threshold: null });
  writeFileSync(join(d, 'model.onnx'), 'graph');
  const m = await refreshFileHashes(d);
  assert.deepEqual(Object.keys(m.files).sort(), ['model.json', 'model.onnx', 'weights.bin']);
  assert.equal(m.files['model.json'], first.files['model.json']);
  assert.deepEqual({ ...m, files: {} }, { ...first, files: {} });
  assert.equal((await verifyManifest(d)).ok, true);
});

test('a malformed manifest is E_MODEL_INVALID, a missing one E_MODEL_MISSING', async () => {
  const d = join(tmp, 'bad');
  mkdirSync(d);
  await assert.rejects(readManifest(d), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_MISSING');
  writeFileSync(join(d, 'manifest.json'), '{"name":"x"}');
  await assert.rejects(readManifest(d), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID');
  writeFileSync(join(d, 'manifest.json'), '{not json');
  await assert.rejects(readManifest(d), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID');
});

test('a non-numeric uncertainty bound or a bad int8 calibration is E_MODEL_INVALID: it would otherwise silently mark no study uncertain or scale every probability wrong', async () => {
  const d = version(tmp, 'classifier', 'bad-rule');
  const good = base('classifier', 'bad-rule', '2026-12-02T00:00:00.000Z');
  const cal = {
    method: 'platt',
    a: 1.2,
    b: 0.1,
    fittedOn: { views: 4, subset: 'validation', n: 9, split: 'split.csv', at: 'x' },
    eceBefore: 0.1,
    eceAfter: 0.05,
  };
  for (const [bad, message] of [
    [{ ...good, threshold: { ...good.threshold!, uncertainty: { bound: '0.3' } } }, /'threshold.uncertainty' needs a number bound >= 0/],
    [
      { ...good, quantization: { threshold: { ...good.threshold!, uncertainty: { bound: -1 } } } },
      /'quantization.threshold.uncertainty' needs a number bound >= 0/,
    ],
    [{ ...good, quantization: { probabilityCalibration: { ...cal, a: 0 } } }, /'quantization.probabilityCalibration' needs finite numbers a > 0 and b/],
  ] as const) {
    writeFileSync(join(d, 'manifest.json'), JSON.stringify({ ...bad, files: {} }));
    await assert.rejects(readManifest(d), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && message.test(e.message));
  }
  writeFileSync(
    join(d, 'manifest.json'),
    JSON.stringify({
      ...good,
      threshold: { ...good.threshold!, uncertainty: { bound: 0.3, quantile: 0.99, n: 9, largest: 0.4 } },
      quantization: { probabilityCalibration: cal },
      files: {},
    }),
  );
  assert.equal((await readManifest(d)).threshold!.uncertainty!.bound, 0.3);
});

test('the decision rule a registered version may not change covers both calibrations and both uncertainty bounds', () => {
  const m = { ...base('classifier', 'v1', '2026-12-02T00:00:00.000Z'), files: {} } as ModelManifest;
  const cal = {
    method: 'platt' as const,
    a: 1.2,
    b: 0.1,
    fittedOn: { views: 4, subset: 'validation', n: 9, split: 'split.csv', at: 'x' },
    eceBefore: 0.1,
    eceAfter: 0.05,
  };
  const q = {
    threshold: { ...m.threshold!, uncertainty: { bound: 0.3, quantile: 0.99, n: 9, largest: 0.4 } },
    probabilityCalibration: cal,
  } as unknown as ModelManifest['quantization'];
  assert.deepEqual(decisionDifferences(m, m), []);
  assert.deepEqual(decisionDifferences(m, { ...m, calibration: cal }), ['calibration: (none) -> {"method":"platt","a":1.2,"b":0.1}']);
  const changes = decisionDifferences(
    { ...m, quantization: q },
    {
      ...m,
      quantization: {
        ...q!,
        probabilityCalibration: { ...cal, b: 0.2 },
        threshold: { ...q!.threshold!, uncertainty: { ...q!.threshold!.uncertainty!, bound: 0.25 } },
      },
    },
  );
  assert.deepEqual(changes, ['int8Calibration.b: 0.1 -> 0.2', 'int8Threshold.uncertaintyBound: 0.3 -> 0.25']);
});

test('the decision rule also covers which file auto serves, a population head and the population estimator, not how they were fitted', () => {
  const m = { ...base('classifier', 'v1', '2026-12-02T00:00:00.000Z'), files: {} } as ModelManifest;
  const head = { inputs: 2, weights: 'AAAAAAAAgD8=', bias: 0.5, featurePrecision: 'int8', blend: { own: 1, joint: 0 }, fittedOn: { n: 10 } };
  const withHead = { ...m, threshold: { ...m.threshold!, populations: { adult: { value: 0.2, n: 5, positives: 3, head } } } } as unknown as ModelManifest;
  const estimator = {
    above: 'adult',
    below: 'pediatric',
    inputs: 2,
    weights: 'AAAAAAAAgD8=',
    bias: -1,
    minConfidence: 0.99,
    featurePrecision: 'int8',
    fittedOn: {},
    validation: {},
  };
  const withEstimator = { ...withHead, populationEstimator: estimator } as unknown as ModelManifest;
  const q = { file: 'model.int8.onnx', served: true } as unknown as ModelManifest['quantization'];
  assert.deepEqual(decisionDifferences(withEstimator, withEstimator), []);
  const edited = (f: (x: ModelManifest) => void) => {
    const copy = structuredClone(withEstimator);
    f(copy);
    return copy;
  };
  assert.deepEqual(
    decisionDifferences(
      withEstimator,
      edited((x) => (x.threshold!.populations!.adult!.head!.bias = 9)),
    ),
    ['threshold.populations.adult.head.bias: 0.5 -> 9'],
  );
  assert.deepEqual(
    decisionDifferences(
      withEstimator,
      edited((x) => (x.populationEstimator!.minConfidence = 0.51)),
    ),
    ['populationEstimator.minConfidence: 0.99 -> 0.51'],
  );
  assert.deepEqual(decisionDifferences({ ...withEstimator, quantization: q }, { ...withEstimator, quantization: { ...q!, served: false } }), [
    'int8Served.served: true -> false',
  ]);
  // provenance of the fits may be reworded
  assert.deepEqual(
    decisionDifferences(
      withEstimator,
      edited((x) => {
        x.populationEstimator!.fittedOn = { ...x.populationEstimator!.fittedOn, at: 'reworded' };
        x.threshold!.populations!.adult!.head!.fittedOn = { ...x.threshold!.populations!.adult!.head!.fittedOn, n: 11 };
      }),
    ),
    [],
  );
});

test('resolveModelVersion takes the newest version, a named one, or a version folder itself', async () => {
  const root = join(tmp, 'models');
  const old = version(root, 'classifier', 'v20250101-000000');
  await writeManifest(old, base('classifier', 'v20250101-000000', '2025-01-01T00:00:00.000Z'));
  const newer = version(root, 'classifier', 'v20250301-000000');
  await writeManifest(newer, base('classifier', 'v20250301-000000', '2025-03-01T00:00:00.000Z'));
  assert.equal(await resolveModelVersion(root, 'classifier'), newer);
  assert.equal(await resolveModelVersion(root, 'classifier', 'v20250101-000000'), old);
  assert.equal(await resolveModelVersion(old, 'classifier'), old);
  await assert.rejects(resolveModelVersion(root, 'segmenter'), (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_MISSING');
  assert.equal(JSON.parse(readFileSync(join(newer, 'manifest.json'), 'utf8')).version, 'v20250301-000000');
  // a version linked in from elsewhere counts like a folder
  const elsewhere = version(join(tmp, 'elsewhere'), 'classifier', 'v20250401-000000');
  await writeManifest(elsewhere, base('classifier', 'v20250401-000000', '2025-04-01T00:00:00.000Z'));
  symlinkSync(elsewhere, join(root, 'classifier', 'v20250401-000000'));
  assert.equal(await resolveModelVersion(root, 'classifier'), join(root, 'classifier', 'v20250401-000000'));
});

test('version names sort with time', () => {
  assert.equal(versionFromDate(new Date('2025-01-31T12:34:56.789Z')), 'v20250131-123456');
});

const SHIPPED = join(import.meta.dirname, '..', '..', 'models');

test('shipped manifests hold no absolute path and still verify against their files', async () => {
  // every JSON file shipped under models/ (manifests and tfjs topologies), found by walking the folder
  const shipped = (readdirSync(SHIPPED, { recursive: true }) as string[]).filter((f) => /(^|[\\/])(manifest|model)\.json$/.test(f));
  const manifests = shipped.filter((f) => f.endsWith('manifest.json'));
  assert.ok(manifests.length >= 3, `shipped manifests: ${manifests.join(', ')}`);
  for (const f of shipped) assert.deepEqual(findAbsolutePaths(JSON.parse(readFileSync(join(SHIPPED, f), 'utf8'))), [], f);
  let versions = 0;
  for (const name of ['segmenter', 'classifier'] as const) {
    for (const v of await listVersions(SHIPPED, name)) {
      versions++;
      assert.deepEqual(findAbsolutePaths(v.manifest), [], `${v.dir}`);
      assert.equal((await verifyManifest(v.dir)).ok, true, v.dir);
      assert.ok(v.manifest.training.data && typeof v.manifest.training.data.root === 'string', `${v.dir}: training.data is a named root`);
    }
  }
  // each manifest is a published version the store lists (none hides in a folder it skips)
  assert.equal(versions, manifests.length);
});

test("no file a shipped manifest hashes matches the repository's ignore rules: a fresh clone would lack it and the version would not verify", async () => {
  const root = join(SHIPPED, '..');
  const hashed: string[] = [];
  for (const name of ['segmenter', 'classifier'] as const) {
    for (const v of await listVersions(SHIPPED, name)) for (const f of Object.keys(v.manifest.files)) hashed.push(relative(root, join(v.dir, f)));
  }
  assert.ok(hashed.length > 10);
  // --no-index: judged by the patterns alone, tracked or not; exit 1 means none is ignored
  const r = spawnSync('git', ['check-ignore', '--no-index', '--stdin'], { cwd: root, input: hashed.join('\n'), encoding: 'utf8' });
  assert.equal(r.status, 1, `ignored by .gitignore: ${r.stdout}${r.stderr}`);
});

test('writeManifest refuses an absolute path; portablePath names the most specific root, else external', async () => {
  const dir = join(tmp, 'abs', 'classifier', 'v1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), 'w');
  const m = base('classifier', 'v1', '2025-01-01T00:00:00Z');
  await assert.rejects(
    writeManifest(dir, { ...m, training: { ...m.training, data: { root: 'x', path: '/work/data' } } }),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /training\.data\.path/.test(e.message),
  );
  assert.deepEqual(portablePath(join(REPO_ROOT, 'models', 'classifier')), { root: 'repo', path: 'models/classifier' });
  assert.deepEqual(portablePath(join(REPO_ROOT, '..', 'shared', 'data', 'nih')), { root: 'shared', path: 'data/nih' });
  assert.deepEqual(portablePath('/nowhere/site-films'), { root: 'external', path: 'site-films' });
  assert.deepEqual(portablePath('/nowhere/site-films', { site: '/nowhere' }), { root: 'site', path: 'site-films' });
  assert.deepEqual(portableCommand(['train', `--data=${join(REPO_ROOT, 'x')}`, join(REPO_ROOT, 'y')]), ['train', '--data={repo}/x', '{repo}/y']);
});

test('two runs deriving the next revision of one version at once: one publishes it, the other ends in E_CONFLICT (never a raw rename error), every time', async () => {
  const root = join(tmp, 'race');
  const src = version(root, 'classifier', 'v1');
  await writeManifest(src, base('classifier', 'v1', '2026-12-04T00:00:00.000Z'));
  for (let round = 0; round < 6; round++) {
    const derive = (t: number) =>
      deriveVersion(src, { reason: 'calibrate', change: async (_d, m) => ({ ...m, threshold: { ...m.threshold!, value: t } }) }).then(
        (r) => `published ${r.manifest.version}`,
        (e: unknown) => (e instanceof CxrError ? e.code : `raw ${(e as Error).message}`),
      );
    const outcomes = (await Promise.all([derive(0.1), derive(0.9)])).sort();
    assert.deepEqual(outcomes, ['E_CONFLICT', `published v1-r${round + 1}`]);
  }
  // nothing half-written is left: the revisions and the source, no staging folder
  assert.deepEqual(readdirSync(join(root, 'classifier')).sort(), ['v1', 'v1-r1', 'v1-r2', 'v1-r3', 'v1-r4', 'v1-r5', 'v1-r6']);
});

test('an ACTIVE that is a folder, not a file, is E_MODEL_INVALID naming it', async () => {
  const root = join(tmp, 'active-dir');
  mkdirSync(join(root, 'classifier', 'ACTIVE'), { recursive: true });
  await assert.rejects(
    readActive(root, 'classifier'),
    (e: unknown) => e instanceof CxrError && e.code === 'E_MODEL_INVALID' && /ACTIVE cannot be read as the ACTIVE file \(EISDIR\)/.test(e.message),
  );
});
