/**
 * Engines in worker threads (engine-pool.ts) answer exactly as an engine on the calling thread
 * does, score several studies at once, carry error codes across the thread boundary, and close
 * cleanly; the worker-boot helper picks the compiled copy of a thread's module when there is one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomModels } from '../support/random-models.js';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { loadEngine, type OnnxTriageEngine } from '../../src/inference/engine.js';
import { loadEnginePool } from '../../src/inference/engine-pool.js';
import { isCxrError } from '../../src/errors.js';
import { siblingModule, workerBoot } from '../../src/worker-boot.js';
import { grayImage } from '../../src/imaging/types.js';

let root: string;
let inline: OnnxTriageEngine;
let pool: OnnxTriageEngine;
const studies = [chestDicom({ size: 384, seed: 5 }), chestDicom({ size: 384, seed: 6 }), chestDicom({ size: 512, seed: 7 })];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-engine-pool-'));
  await randomModels(root, { size: 'small', seed: 2, threshold: 0.45 });
  inline = await loadEngine({ modelsDir: root, tta: 4, threads: 1 });
  pool = await loadEnginePool({ modelsDir: root, tta: 4, threads: 1, engines: 2 });
});

after(async () => {
  await inline?.close();
  await pool?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

test('a pool reports the same models, threshold and settings as an engine on this thread, with its engine count', () => {
  assert.deepEqual(pool.models, inline.models);
  assert.deepEqual(pool.threshold, inline.threshold);
  assert.deepEqual(pool.providers, inline.providers);
  assert.deepEqual(pool.settings, { ...inline.settings, engines: 2 });
});

test('studies scored in threads, several at once, get the reports an engine on this thread gives', async () => {
  const threaded = await Promise.all(studies.map((s) => pool.analyze(s)));
  for (const [i, s] of studies.entries()) {
    const here = await inline.analyze(s);
    const there = threaded[i];
    assert.deepEqual(there.meta, here.meta);
    const { timingsMs: _a, ...a } = there.report;
    const { timingsMs: _b, ...b } = here.report;
    assert.deepEqual(a, b, `study ${i}`);
  }
});

test('artifacts and scoreImage cross the thread boundary as typed arrays', async () => {
  const { artifacts } = await pool.analyze(studies[0], { artifacts: true });
  assert.ok(artifacts);
  assert.ok(artifacts.mask.data instanceof Float32Array);
  assert.ok(artifacts.heatmap.data instanceof Float32Array);
  assert.equal(artifacts.windowed.width, 384);
  const image = grayImage(64, 64, new Float32Array(64 * 64).fill(0.4));
  const here = await inline.scoreImage(image, { tta: 2 });
  const there = await pool.scoreImage(image, { tta: 2 });
  assert.ok(there.cam.values instanceof Float32Array);
  assert.equal(there.probability, here.probability);
  assert.deepEqual(there.probabilities, here.probabilities);
});

test('a film handed over moves to the engine thread without a copy; one not handed over, or part of a larger buffer, is copied', async () => {
  const kept = Uint8Array.from(studies[0]);
  const given = Uint8Array.from(studies[0]);
  const a = await pool.analyze(kept);
  const b = await pool.analyze(given, { handOver: true });
  assert.equal(kept.byteLength, studies[0].byteLength);
  assert.equal(given.byteLength, 0, 'the handed-over array is detached');
  assert.equal(b.report.probability, a.report.probability);
  const larger = new Uint8Array(studies[0].byteLength + 8);
  larger.set(studies[0], 8);
  const part = larger.subarray(8);
  await pool.analyze(part, { handOver: true });
  assert.equal(part.byteLength, studies[0].byteLength, 'a view into a larger buffer is copied, not taken');
});

test('a film the engine refuses fails with its own error code, and the pool goes on scoring', async () => {
  await assert.rejects(pool.analyze(new TextEncoder().encode('not a dicom file at all, just text')), (e: unknown) => isCxrError(e) && e.code === 'E_NOT_DICOM');
  const { report } = await pool.analyze(studies[1]);
  assert.equal(report.tta.views, 4);
});

test('a pool that cannot load its models fails to start with the loader error code', async () => {
  const empty = join(root, 'empty');
  await mkdir(empty);
  await assert.rejects(loadEnginePool({ modelsDir: empty, engines: 2, threads: 1 }), (e: unknown) => isCxrError(e) && e.code === 'E_MODEL_MISSING');
});

test('closing a pool lets the study in hand finish, then refuses new ones with E_BACKEND', async () => {
  const p = await loadEnginePool({ modelsDir: root, tta: 2, threads: 1, engines: 1 });
  const running = p.analyze(studies[0]);
  await p.close();
  assert.equal((await running).report.tta.views, 2);
  await assert.rejects(p.analyze(studies[0]), (e: unknown) => isCxrError(e) && e.code === 'E_BACKEND');
});

test('a thread module runs from its compiled copy when the test build has one, else through tsx; built code directly', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cxr-boot-'));
  try {
    const source = siblingModule(pathToFileURL(join(process.cwd(), 'src', 'inference', 'engine.ts')).href, 'engine-thread');
    assert.match(source.pathname, /src\/inference\/engine-thread\.ts$/);
    assert.match(siblingModule('file:///app/dist/src/inference/engine.js', 'engine-thread').pathname, /engine-thread\.js$/);
    assert.equal(workerBoot(new URL('file:///app/dist/x.js')), 'import("file:///app/dist/x.js");');
    const saved = process.env.CXR_TEST_BUILD;
    try {
      process.env.CXR_TEST_BUILD = dir;
      assert.match(workerBoot(source), /tsx\/dist\/esm\/api.*register\(\).*engine-thread\.ts/);
      const compiled = join(dir, 'src', 'inference', 'engine-thread.mjs');
      await mkdir(join(dir, 'src', 'inference'), { recursive: true });
      await writeFile(compiled, '');
      assert.equal(workerBoot(source), `import(${JSON.stringify(pathToFileURL(compiled).href)});`);
    } finally {
      if (saved === undefined) delete process.env.CXR_TEST_BUILD;
      else process.env.CXR_TEST_BUILD = saved;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an engine thread that stops is replaced, with a warning, and a study queued meanwhile is scored by the new one', async () => {
  const warnings: string[] = [];
  const p = await loadEnginePool({ modelsDir: root, tta: 2, threads: 1, engines: 1, onWarning: (m) => warnings.push(m) });
  try {
    assert.equal(p.threadsReady, 1);
    p.stopOneThread();
    const until = Date.now() + 60_000;
    while (!warnings.some((w) => /starting another/.test(w))) {
      assert.ok(Date.now() < until, 'the pool saw the thread stop');
      await new Promise((r) => setTimeout(r, 20));
    }
    // a study queued while the replacement loads waits for it
    const { report } = await p.analyze(studies[2]);
    assert.equal(report.tta.views, 2);
    assert.equal(p.threadsReady, 1);
    assert.match(warnings.join('\n'), /exited with code 70/);
  } finally {
    await p.close();
  }
});

test('threads that keep stopping are replaced after a back-off, never given up on; a study queued while none is alive waits for the replacement', async () => {
  const warnings: string[] = [];
  const p = await loadEnginePool({ modelsDir: root, tta: 2, threads: 1, engines: 1, onWarning: (m) => warnings.push(m) });
  const until = async (what: string, ok: () => boolean) => {
    const end = Date.now() + 120_000;
    while (!ok()) {
      assert.ok(Date.now() < end, what);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    for (let crash = 1; crash <= 3; crash++) {
      await until(`thread ready before crash ${crash}`, () => p.threadsReady === 1);
      p.stopOneThread();
      await until(`the pool saw crash ${crash}`, () => warnings.filter((w) => /starting another/.test(w)).length === crash);
    }
    // the second and third crash within a minute: replaced after a back-off, not abandoned
    assert.match(warnings.join('\n'), /starting another in 1 s \(2 in the last minute\)/);
    assert.match(warnings.join('\n'), /starting another in 2 s \(3 in the last minute\)/);
    assert.doesNotMatch(warnings.join('\n'), /not replacing/);
    // queued while no thread is alive: it waits for the replacement instead of failing
    const { report } = await p.analyze(studies[0]);
    assert.equal(report.tta.views, 2);
    assert.equal(p.threadsReady, 1);
  } finally {
    await p.close();
  }
});
