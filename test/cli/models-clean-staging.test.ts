/**
 * `cxr-triage models clean-staging`: lists (--dry-run) and removes the staging folders that
 * interrupted publishes left under a models folder, says how much space that freed, and keeps
 * the folder of a publish still running in another process. The publishes are real processes,
 * one killed with SIGKILL midway.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runCli, spawnCli } from '../support/cli.js';
import { runPublish, stalledPublish } from '../support/staging.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-clean-staging-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('models clean-staging --help says what it removes, what it keeps and how to list first', async () => {
  const r = await runCli(['models', 'clean-staging', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Usage: cxr-triage models clean-staging \[options\]/);
  assert.match(r.stdout, /--dry-run/);
  assert.match(r.stdout, /--older-than <duration>/);
  assert.match(r.stdout, /a publish still in progress keeps its folder/);
  const models = await runCli(['models', '--help']);
  assert.match(models.stdout, /clean-staging/);
});

test('a publish killed midway: --dry-run lists its folder and removes nothing; then it is removed with the space freed, while a running publish keeps its own', async () => {
  const models = join(tmp, 'models');
  const published = await runPublish(join(models, 'classifier'), 'v1');
  assert.equal(published.code, 0, published.stderr);
  const killed = await stalledPublish(join(models, 'classifier'), 'v2');
  const live = await stalledPublish(join(models, 'segmenter'), 'v9');
  try {
    await killed.kill('SIGKILL');
    // made before owner files existed, untouched for two days
    const legacy = join(models, 'classifier', '.staging-v0-12345678');
    mkdirSync(legacy);
    writeFileSync(join(legacy, 'weights.bin'), Buffer.alloc(1_000_000, 1));
    const old = new Date(Date.now() - 48 * 3600_000);
    for (const p of [join(legacy, 'weights.bin'), legacy]) utimesSync(p, old, old);

    // the versions listed are the published ones only
    const list = await runCli(['models', 'list', '--models', models, '--json']);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { version: string }[]).map((v) => v.version),
      ['v1'],
    );
    const show = await runCli(['models', 'show', `classifier@${basename(killed.dir)}`, '--models', models]);
    assert.equal(show.code, 2);

    const dry = await spawnCli(['models', 'clean-staging', '--models', models, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^would remove stale staging folder ${esc(killed.dir)} \\(process ${killed.pid} on \\S+ is gone\\): 3\\.0 MB$`, 'm'));
    assert.match(dry.stdout, new RegExp(`^would remove stale staging folder ${esc(legacy)} \\(no owner file; no sign of life for 48\\.0 h\\): 1\\.0 MB$`, 'm'));
    assert.match(dry.stdout, new RegExp(`^kept staging folder ${esc(live.dir)} \\(a publish in progress: process ${live.pid} on \\S+, started `, 'm'));
    assert.match(dry.stdout, /^would remove 2 stale staging folders under \S+, freeing 4\.0 MB; kept 1 live staging folder \(dry run: nothing was removed\)$/m);
    assert.ok(existsSync(killed.dir) && existsSync(legacy) && existsSync(live.dir));

    const clean = await spawnCli(['models', 'clean-staging', '--models', models]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, new RegExp(`^removed stale staging folder ${esc(killed.dir)} \\(process ${killed.pid} on \\S+ is gone\\): 3\\.0 MB$`, 'm'));
    assert.match(clean.stdout, /^removed 2 stale staging folders under \S+, freed 4\.0 MB; kept 1 live staging folder$/m);
    assert.deepEqual(readdirSync(join(models, 'classifier')), ['v1']);
    assert.deepEqual(readdirSync(join(models, 'segmenter')).sort(), [basename(live.dir), `${basename(live.dir)}.owner`].sort());

    const again = await runCli(['models', 'clean-staging', '--models', models, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const json = JSON.parse(again.stdout) as { removed: unknown[]; kept: { path: string; owner: { pid: number } }[]; freedBytes: number };
    assert.deepEqual(json.removed, []);
    assert.equal(json.freedBytes, 0);
    assert.deepEqual(
      json.kept.map((k) => [k.path, k.owner.pid]),
      [[live.dir, live.pid]],
    );
  } finally {
    await live.kill('SIGKILL');
  }
  const last = await runCli(['models', 'clean-staging', '--models', models]);
  assert.match(last.stdout, /^removed 1 stale staging folder under \S+, freed 3\.0 MB$/m);
  const none = await runCli(['models', 'clean-staging', '--models', models]);
  assert.match(none.stdout, /^no stale staging folders under \S+$/m);
});

test('models clean-staging usage errors exit 2', async () => {
  const bad = await runCli(['models', 'clean-staging', '--models', tmp, '--older-than', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /error E_BAD_ARGUMENT: --older-than must be a duration such as 30m, 6h or 2d \(or 0\), got 'soon'/);
  const missing = await runCli(['models', 'clean-staging', '--models', join(tmp, 'nowhere')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /error E_NOT_FOUND: no models folder .*nowhere/);
  const unknown = await runCli(['models', 'clean-staging', '--bogus']);
  assert.equal(unknown.code, 2);
});
