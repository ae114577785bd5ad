#!/usr/bin/env node
// Runs every test/**/*.test.ts through node:test (Node 20's --test takes no globs), compiled
// once by scripts/test-bundle.mjs instead of through tsx in each process; spawned `cxr-triage`
// processes run the compiled CLI too (found under CXR_TEST_BUILD). `TEST_TSX=1` runs the sources through tsx
// as before. Extra arguments narrow the run: `npm test -- dicom` runs files whose path contains "dicom".
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILD_DIR, bundle, removeOwnBuild } from './test-bundle.mjs';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

// Modules our code starts as worker threads (src/worker-boot.ts runs their compiled copies).
// (not ml/parallel/worker.ts: it imports the loss module a training run names by its .ts path, which needs tsx)
const WORKER_SCRIPTS = ['src/inference/engine-thread.ts', 'src/data/synth-worker.ts'];

const filters = process.argv.slice(2);
const files = walk('test')
  .map((f) => relative('.', f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// Longest first (times recorded by scripts/test-durations.mjs): files start in this order, so the
// slow ones overlap each other instead of finishing alone after everything else. A file not in
// the record counts as the median one.
const DURATIONS = 'test/durations.json';
const known = existsSync(DURATIONS) ? JSON.parse(readFileSync(DURATIONS, 'utf8')) : {};
const recorded = Object.values(known).sort((a, b) => a - b);
const typical = recorded.length > 0 ? recorded[Math.floor(recorded.length / 2)] : 0;
const weight = (f) => known[f] ?? typical;
files.sort((a, b) => weight(b) - weight(a) || a.localeCompare(b));

// One file more than cores: test files wait on servers, PostgreSQL and retries part of the time
// (on 2 cores, 3 at a time ran the suite in 304 s against 328 s with 2).
const concurrency = process.env.TEST_CONCURRENCY ?? String(availableParallelism() + 1);
const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout'];
if (process.env.TEST_RECORD_DURATIONS === '1' && filters.length > 0) console.error('TEST_RECORD_DURATIONS: only a whole-suite run is recorded');
else if (process.env.TEST_RECORD_DURATIONS === '1') reporters.push('--test-reporter=./scripts/test-durations.mjs', `--test-reporter-destination=${DURATIONS}`);
let run = ['--import', 'tsx', '--test', ...files];
const env = { ...process.env };
if (process.env.TEST_TSX !== '1') {
  const started = Date.now();
  const compiled = await bundle(['src/cli/main.ts', ...WORKER_SCRIPTS, ...files]);
  console.error(`compiled ${files.length} test files and the CLI in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  run = ['--enable-source-maps', '--test', ...compiled.slice(1 + WORKER_SCRIPTS.length)];
  env.CXR_TEST_BUILD = resolve(BUILD_DIR);
}
const r = spawnSync(process.execPath, [`--test-concurrency=${concurrency}`, ...reporters, ...run], { stdio: 'inherit', env });
removeOwnBuild();
process.exit(r.status ?? 1);
