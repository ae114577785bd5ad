/**
 * Staging folders left by interrupted publishes: never listed or served, removed by the next
 * publish into the same model folder, and never while their publish is still running (in
 * another process, or on another machine sharing the folder). Real folders, real processes
 * killed with SIGKILL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  cleanStaging,
  currentOwner,
  findStaging,
  listVersions,
  readActive,
  resolveModelVersion,
  servableVersion,
  stageVersion,
  writeActive,
  writeManifest,
  writeVersion,
  type ModelManifest,
  type StagingOwner,
} from '../../src/ml/model-store/index.js';
import { CxrError } from '../../src/errors.js';
import { runPublish, stalledPublish } from '../support/staging.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-staging-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function manifest(version: string, createdAt: string): Omit<ModelManifest, 'files'> {
  return {
    name: 'classifier',
    version,
    architecture: 'densenet121-se',
    architectureConfig: {},
    inputSize: 224,
    createdAt,
    training: { data: { root: 'external', path: 'x' }, dataHash: 'h', dataSize: 1, config: {}, epochs: 0, split: { train: 1, validation: 0, test: 0 } },
    metrics: { validation: {}, test: {} },
    threshold: null,
  };
}

async function folder(dir: string, version: string, createdAt: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), 'graph');
  writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(1000, 1));
  await writeManifest(dir, manifest(version, createdAt));
  return dir;
}

const is = (code: string) => (e: unknown) => e instanceof CxrError && e.code === code;
const dotted = (dir: string) => readdirSync(dir).filter((e) => e.startsWith('.'));
const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);

/** A pid no process has now: one that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

/** A staging folder of `size` bytes with an owner file holding `owner` (null: none), last written `age` hours ago. */
function leftover(modelDir: string, name: string, owner: Partial<StagingOwner> | null, ageHours = 0, size = 2000): string {
  const dir = join(modelDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(size, 3));
  if (owner) writeFileSync(`${dir}.owner`, JSON.stringify({ ...currentOwner('v'), ...owner }));
  const t = hoursAgo(ageHours);
  for (const p of [join(dir, 'weights.bin'), dir, ...(owner ? [`${dir}.owner`] : [])]) utimesSync(p, t, t);
  return dir;
}

test('a staging folder, even one holding a complete newer version, is never listed, resolved, activated or served', async () => {
  const root = join(tmp, 'hidden');
  const published = await folder(join(root, 'classifier', 'v1'), 'v1', '2026-01-01T00:00:00.000Z');
  const staged = await folder(join(root, 'classifier', '.staging-v2-0badc0de'), 'v2', '2026-06-01T00:00:00.000Z');
  assert.deepEqual(
    (await listVersions(root, 'classifier')).map((v) => v.version),
    ['v1'],
  );
  assert.equal(await resolveModelVersion(root, 'classifier'), published);
  await assert.rejects(resolveModelVersion(root, 'classifier', basename(staged)), is('E_MODEL_MISSING'));
  await assert.rejects(servableVersion(root, 'classifier', basename(staged)), is('E_NOT_FOUND'));
  await assert.rejects(writeActive(root, 'classifier', basename(staged)), is('E_BAD_ARGUMENT'));
  writeFileSync(join(root, 'classifier', 'ACTIVE'), `${basename(staged)}\n`);
  await assert.rejects(readActive(root, 'classifier'), is('E_MODEL_INVALID'));
});

test('a publish killed with SIGKILL midway leaves its staging folder; the next publish removes it and says so, and keeps the one of a publish still running', async () => {
  const modelDir = join(tmp, 'killed', 'classifier');
  const killed = await stalledPublish(modelDir, 'v2');
  const live = await stalledPublish(modelDir, 'v3');
  try {
    await killed.kill('SIGKILL');
    // what kill -9 leaves: the folder with what was written, and its owner file
    assert.ok(existsSync(join(killed.dir, 'weights.bin')));
    assert.ok(existsSync(`${killed.dir}.owner`));
    assert.deepEqual(await listVersions(join(tmp, 'killed'), 'classifier'), []);

    const next = await runPublish(modelDir, 'v4');
    assert.equal(next.code, 0, next.stderr);
    assert.match(
      next.stderr,
      new RegExp(`^removed stale staging folder ${killed.dir.replace(/[.]/g, '\\.')} \\(process ${killed.pid} on \\S+ is gone\\): 3\\.0 MB$`, 'm'),
    );
    assert.doesNotMatch(next.stderr, new RegExp(basename(live.dir)));
    assert.equal(existsSync(killed.dir), false);
    assert.equal(existsSync(`${killed.dir}.owner`), false);
    // the running publish's folder is untouched, and it can still finish
    assert.ok(existsSync(join(live.dir, 'weights.bin')));
    assert.ok(existsSync(`${live.dir}.owner`));
    assert.deepEqual(dotted(modelDir).sort(), [basename(live.dir), `${basename(live.dir)}.owner`].sort());
    assert.deepEqual(
      (await listVersions(join(tmp, 'killed'), 'classifier')).map((v) => v.version),
      ['v4'],
    );
  } finally {
    await live.kill('SIGKILL');
  }
  // once its process is gone it is a leftover like any other
  const report = await cleanStaging(modelDir);
  assert.deepEqual(
    report.removed.map((e) => [e.path, e.kind]),
    [[live.dir, 'folder']],
  );
  assert.equal(report.freedBytes > 3_000_000, true);
  assert.deepEqual(dotted(modelDir), []);
});

test('a finished publish, and one that fails, leave no staging folder and no owner file', async () => {
  const modelDir = join(tmp, 'clean', 'classifier');
  await writeVersion(modelDir, 'v1', async (dir) => folder(dir, 'v1', '2026-01-01T00:00:00.000Z'), { log: () => {} });
  await assert.rejects(
    writeVersion(
      modelDir,
      'v2',
      async () => {
        throw new CxrError('E_BAD_DATASET', 'late');
      },
      { log: () => {} },
    ),
    is('E_BAD_DATASET'),
  );
  assert.deepEqual(readdirSync(modelDir), ['v1']);
});

test('stale or live: a gone or reused pid, a restarted machine, another machine by its heartbeat, a folder without an owner, stray owner files and interrupted removals', async (t) => {
  const modelDir = join(tmp, 'rules', 'classifier');
  const me = currentOwner('v');
  const gone = leftover(modelDir, '.staging-gone-1', { pid: deadPid() });
  // this process is alive: its folder stays however old its files are
  const alive = leftover(modelDir, '.staging-alive-1', { pid: process.pid }, 24 * 30);
  const foreignFresh = leftover(modelDir, '.staging-foreign-1', { hostname: 'gpu-box-2', pid: process.pid }, 1);
  const foreignQuiet = leftover(modelDir, '.staging-foreign-2', { hostname: 'gpu-box-2', pid: process.pid }, 7);
  const ownerless = leftover(modelDir, '.staging-legacy-1', null, 7);
  const ownerlessFresh = leftover(modelDir, '.staging-legacy-2', null, 0.5);
  writeFileSync(join(modelDir, '.staging-orphan-1.owner'), JSON.stringify({ ...me, pid: deadPid() }));
  writeFileSync(join(modelDir, '.staging-starting-1.owner'), JSON.stringify({ ...me, pid: process.pid }));
  const removing = leftover(modelDir, '.staging-half-1.removing', null);
  const verdicts = async (o = {}) =>
    Object.fromEntries((await findStaging(modelDir, o)).map((e) => [basename(e.path), e.stale ? `stale: ${e.reason}` : 'live']));

  const v = await verdicts();
  assert.match(v[basename(gone)], /^stale: process \d+ on \S+ is gone$/);
  assert.equal(v[basename(alive)], 'live');
  assert.equal(v[basename(foreignFresh)], 'live');
  assert.match(v[basename(foreignQuiet)], /^stale: process \d+ on gpu-box-2, which this machine cannot ask; no sign of life for 7\.0 h$/);
  assert.match(v[basename(ownerless)], /^stale: no owner file; no sign of life for 7\.0 h$/);
  assert.equal(v[basename(ownerlessFresh)], 'live');
  assert.match(v['.staging-orphan-1.owner'], /is gone/);
  // written before its folder is made: its publish is starting
  assert.equal(v['.staging-starting-1.owner'], 'live');
  assert.equal(v[basename(removing)], 'stale: a removal that was interrupted');
  // a longer --older-than keeps the quiet ones a while more; 0 takes every one this machine cannot ask
  const patient = await verdicts({ olderThanMs: 24 * 3600_000 });
  assert.equal(patient[basename(foreignQuiet)], 'live');
  assert.equal(patient[basename(ownerless)], 'live');
  const eager = await verdicts({ olderThanMs: 0 });
  assert.match(eager[basename(foreignFresh)], /^stale/);
  assert.equal(eager[basename(alive)], 'live');

  // a dry run removes nothing
  const dry = await cleanStaging(modelDir, { dryRun: true });
  assert.equal(dry.removed.length, 5);
  assert.equal(dotted(modelDir).length, 13);
  const report = await cleanStaging(modelDir);
  assert.deepEqual(report.failed, []);
  assert.equal(report.freedBytes, dry.freedBytes);
  assert.deepEqual(dotted(modelDir).sort(), [
    basename(alive),
    `${basename(alive)}.owner`,
    basename(foreignFresh),
    `${basename(foreignFresh)}.owner`,
    basename(ownerlessFresh),
    '.staging-starting-1.owner',
  ]);

  await t.test('on Linux, a pid now held by another process, or an owner from before the machine restarted, is stale', async (t2) => {
    if (!me.processStart || !me.bootId) return t2.skip('no /proc here');
    const reused = leftover(modelDir, '.staging-reused-1', { pid: process.pid, processStart: '1' });
    const rebooted = leftover(modelDir, '.staging-rebooted-1', { pid: process.pid, bootId: '00000000-0000-0000-0000-000000000000' });
    const w = await verdicts();
    assert.match(w[basename(reused)], /^stale: process \d+ on \S+ is gone \(its pid now belongs to another process\)$/);
    assert.match(w[basename(rebooted)], /^stale: process \d+ on \S+ ran before this machine restarted$/);
  });
});

test('a publish touches its owner file every minute while it runs (the heartbeat another machine goes by), and removes it when done', async (t) => {
  const modelDir = join(tmp, 'heartbeat', 'classifier');
  t.mock.timers.enable({ apis: ['setInterval'] });
  const staged = await stageVersion(modelDir, 'v1', { log: () => {} });
  const owner = `${staged.dir}.owner`;
  const old = hoursAgo(5);
  utimesSync(owner, old, old);
  t.mock.timers.tick(60_000);
  // the touch runs on libuv's thread pool: wait for it in real time (setTimeout is not mocked), up to 10 s on a busy machine
  for (let i = 0; i < 1000 && statSync(owner).mtimeMs < Date.now() - 60_000; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(statSync(owner).mtimeMs > Date.now() - 60_000, 'touched by the heartbeat');
  await staged.discard();
  assert.deepEqual(existsSync(modelDir) ? readdirSync(modelDir) : [], []);
});
