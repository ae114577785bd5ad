/**
 * Backend selection (src/ml/backend.ts), each case in a fresh Node process because the
 * choice is made once per process: CXR_BACKEND is honoured, a forced backend that cannot
 * start is an error (not a silent fallback), the default falls back past the absent
 * tfjs-node packages to wasm, the choice is logged, repeated calls return the first
 * answer, and the threaded wasm build starts in Node and lets the process exit.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../support/compiled.js';

const backendModule = fileURLToPath(new URL('../../src/ml/backend.ts', import.meta.url));
const tfjsModule = createRequire(import.meta.url).resolve('@tensorflow/tfjs');

function hasPackage(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}
const nativeTfInstalled = hasPackage('@tensorflow/tfjs-node') || hasPackage('@tensorflow/tfjs-node-gpu');

// Child scripts are files rather than `-e` code: the threaded wasm build's pthread
// workers inherit the parent's execArgv, and `--input-type` is refused in workers.
const scratch = mkdtempSync(join(tmpdir(), 'cxr-backend-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let scripts = 0;

/** Runs `body` (ESM, with `initBackend`, `backendDescription` and `tf` in scope) in a child process. */
async function run(body: string, env: Record<string, string | undefined> = {}): Promise<Record<string, unknown>> {
  const code = `
    import * as tf from ${JSON.stringify(tfjsModule)};
    import { initBackend, backendDescription } from ${JSON.stringify(backendModule)};
    const logs: string[] = [];
    try {
      ${body}
    } catch (e: any) {
      console.log(JSON.stringify({ error: e.code ?? null, message: e.message }));
    }
  `;
  const file = join(scratch, `child-${scripts++}.mts`);
  writeFileSync(file, code);
  const childEnv: Record<string, string | undefined> = { ...process.env, CXR_BACKEND: undefined, CXR_WASM_THREADS: undefined, ...env };
  const args = await nodeArgsFor(file);
  const { stdout, stderr, signal } = await new Promise<{ stdout: string; stderr: string; signal: NodeJS.Signals | null }>((resolve) => {
    const child = spawn(process.execPath, args, { env: childEnv as NodeJS.ProcessEnv, timeout: 120_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (_code, sig) => resolve({ stdout: out, stderr: err, signal: sig }));
  });
  assert.equal(signal, null, `child did not exit by itself (${signal}); stderr: ${stderr}`);
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  assert.ok(line, `no result from child; stderr: ${stderr}`);
  return JSON.parse(line) as Record<string, unknown>;
}

const choose = `
  const name = await initBackend({ log: (m) => logs.push(m) });
  console.log(JSON.stringify({ name, active: tf.getBackend(), logs, description: backendDescription() }));
`;

// Each case is a separate Node process (~5 s of start-up): run them side by side.
describe('backend selection', { concurrency: 4 }, () => {
  test('CXR_BACKEND=cpu selects the cpu backend and says so', async () => {
    const r = await run(choose, { CXR_BACKEND: 'cpu' });
    assert.equal(r.name, 'cpu');
    assert.equal(r.active, 'cpu');
    assert.match((r.logs as string[])[0], /^tfjs backend: cpu .*CXR_BACKEND/);
  });

  test('CXR_BACKEND=wasm selects wasm', async () => {
    const r = await run(choose, { CXR_BACKEND: 'wasm' });
    assert.equal(r.name, 'wasm');
    assert.equal(r.active, 'wasm');
  });

  test('without CXR_BACKEND the absent tfjs-node packages are skipped and wasm is used', {
    skip: nativeTfInstalled && 'tfjs-node is installed here',
  }, async () => {
    const r = await run(choose);
    assert.equal(r.name, 'wasm');
    const log = (r.logs as string[]).join('\n');
    assert.match(log, /tfjs backend: wasm/);
    assert.match(log, /@tensorflow\/tfjs-node-gpu: not installed/);
    assert.match(log, /@tensorflow\/tfjs-node: not installed/);
  });

  test('a forced backend that cannot start is an E_BACKEND error, not a fallback', { skip: nativeTfInstalled && 'tfjs-node is installed here' }, async () => {
    const r = await run(choose, { CXR_BACKEND: 'tensorflow' });
    assert.equal(r.error, 'E_BACKEND');
    assert.match(String(r.message), /tfjs-node/);
  });

  test('an unknown CXR_BACKEND is an E_CONFIG error', async () => {
    const r = await run(choose, { CXR_BACKEND: 'webgpu' });
    assert.equal(r.error, 'E_CONFIG');
  });

  test('a malformed CXR_WASM_THREADS is an E_CONFIG error, not a fall back to cpu', async () => {
    const r = await run(choose, { CXR_WASM_THREADS: 'two' });
    assert.equal(r.error, 'E_CONFIG');
    assert.match(String(r.message), /CXR_WASM_THREADS/);
  });

  test('initBackend is idempotent: later calls return the first choice and log nothing', async () => {
    const r = await run(`
    const a = await initBackend({ log: (m) => logs.push(m) });
    const b = await initBackend({ prefer: 'cpu', log: (m) => logs.push(m) });
    console.log(JSON.stringify({ a, b, logs }));
  `);
    assert.equal(r.a, 'wasm');
    assert.equal(r.b, 'wasm');
    assert.equal((r.logs as string[]).length, 1);
  });

  test('by default wasm runs one thread with the convolutions on onnxruntime', async () => {
    const r = await run(choose, { CXR_BACKEND: 'wasm' });
    assert.match(String(r.description), /^wasm \(SIMD, 1 thread; convolutions on onnxruntime, \d+ threads\)$/);
  });

  test('the threaded wasm build starts in Node with 2 threads, computes correctly, and the process exits', async () => {
    const r = await run(
      `
    await initBackend({ log: (m) => logs.push(m) });
    const x = tf.tensor4d(Array.from({ length: 2 * 6 * 6 * 3 }, (_, i) => Math.sin(i)), [2, 6, 6, 3]);
    const w = tf.tensor4d(Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i)), [3, 3, 3, 4]);
    const y = Array.from(tf.conv2d(x, w, 1, 'same').dataSync());
    await tf.setBackend('cpu');
    const ref = Array.from(tf.conv2d(x, w, 1, 'same').dataSync());
    const diff = Math.max(...y.map((v, i) => Math.abs(v - ref[i])));
    console.log(JSON.stringify({ description: backendDescription(), diff }));
  `,
      { CXR_BACKEND: 'wasm', CXR_WASM_THREADS: '2' },
    );
    assert.match(String(r.description), /threaded SIMD, 2 threads/);
    assert.ok((r.diff as number) < 1e-4, `conv differs from cpu by ${r.diff}`);
  });
});
