/**
 * Per-kernel profile of training steps (forward, loss, gradients, Adam) of the real networks.
 *
 *   npx tsx bench/train-profile.ts [--model classifier|segmenter] [--size N] [--batch N]
 *                                  [--steps N] [--threads N] [--json]
 *
 * Every kernel registered for the active backend is wrapped to record wall time and CPU
 * time (process.cpuUsage: all threads, so onnxruntime's too) per call, counting only
 * top-level kernels (the parts of a composed kernel are charged to it). CPU time is the
 * steadier figure when other jobs share the machine. Kernels are sorted by CPU time, so
 * the next kernel worth replacing is the first line; "outside kernels" is the rest of
 * the step (tfjs bookkeeping, tape, JS glue).
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { backendDescription, initBackend } from '../src/ml/backend.js';
import { buildTrainStep, type BenchModel } from './train-nets.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'classifier' },
    size: { type: 'string' },
    batch: { type: 'string', default: '2' },
    steps: { type: 'string', default: '1' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const model = values.model as BenchModel;
if (model !== 'classifier' && model !== 'segmenter') throw new Error('--model must be classifier or segmenter');
const size = Number(values.size ?? (model === 'classifier' ? 224 : 256));
const batch = Number(values.batch);
const steps = Number(values.steps);

await initBackend({ threads: values.threads != null ? Number(values.threads) : undefined, log: () => {} });

interface Tally {
  wallMs: number;
  cpuMs: number;
  calls: number;
}
const tallies = new Map<string, Tally>();
let depth = 0;
let recording = false;
const backendName = tf.getBackend();
for (const config of tf.getKernelsForBackend(backendName)) {
  const inner = config.kernelFunc;
  const wrapped: KernelConfig = {
    ...config,
    kernelFunc: ((args: Parameters<typeof inner>[0]) => {
      if (!recording || depth > 0) {
        depth++;
        try {
          return inner(args);
        } finally {
          depth--;
        }
      }
      depth++;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      try {
        return inner(args);
      } finally {
        const wall = performance.now() - t0;
        const c = process.cpuUsage(c0);
        depth--;
        const t = tallies.get(config.kernelName) ?? { wallMs: 0, cpuMs: 0, calls: 0 };
        t.wallMs += wall;
        t.cpuMs += (c.user + c.system) / 1000;
        t.calls++;
        tallies.set(config.kernelName, t);
      }
    }) as typeof inner,
  };
  tf.unregisterKernel(config.kernelName, backendName);
  tf.registerKernel(wrapped);
}

const step = await buildTrainStep(model, size, batch);
await step.run(); // warm-up: sessions, operators and code paths are created here
recording = true;
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < steps; i++) await step.run();
const wall = (performance.now() - t0) / steps;
const cu = process.cpuUsage(c0);
const cpu = (cu.user + cu.system) / 1000 / steps;
recording = false;
step.dispose();

const rows = [...tallies.entries()].map(([name, t]) => ({ name, wallMs: t.wallMs / steps, cpuMs: t.cpuMs / steps, calls: t.calls / steps }));
rows.sort((a, b) => b.cpuMs - a.cpuMs);
const inKernels = rows.reduce((s, r) => ({ wall: s.wall + r.wallMs, cpu: s.cpu + r.cpuMs }), { wall: 0, cpu: 0 });
if (values.json) {
  console.log(JSON.stringify({ model, size, batch, backend: backendDescription(), stepWallMs: wall, stepCpuMs: cpu, kernels: rows }));
} else {
  console.log(`${model} ${size}px batch ${batch} on ${backendDescription()}`);
  console.log(
    `step: ${wall.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms CPU; ${(wall / batch).toFixed(0)} ms/image wall, ${(cpu / batch).toFixed(0)} ms/image CPU`,
  );
  console.log(`${'kernel'.padEnd(26)} ${'CPU ms'.padStart(9)} ${'share'.padStart(6)} ${'wall ms'.padStart(9)} ${'calls'.padStart(6)}`);
  for (const r of rows.slice(0, 25)) {
    console.log(
      `${r.name.padEnd(26)} ${r.cpuMs.toFixed(0).padStart(9)} ${((100 * r.cpuMs) / cpu).toFixed(1).padStart(5)}% ${r.wallMs.toFixed(0).padStart(9)} ${r.calls.toFixed(0).padStart(6)}`,
    );
  }
  console.log(
    `${'outside kernels'.padEnd(26)} ${(cpu - inKernels.cpu).toFixed(0).padStart(9)} ${((100 * (cpu - inKernels.cpu)) / cpu).toFixed(1).padStart(5)}% ${(wall - inKernels.wall).toFixed(0).padStart(9)}`,
  );
}
