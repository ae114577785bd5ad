/**
 * Training throughput of both networks in tfjs next to the PyTorch reference, in one run:
 *
 *   npx tsx bench/train.ts [--models classifier,segmenter] [--steps 3] [--batch 8]
 *                          [--no-reference] [--json]
 *
 * For each network: shared/bench/reference_train.py (PyTorch eager, same shapes, batch
 * and steps; "reference unavailable" without python3-torch), then one training step of
 * the tfjs model (forward, loss, gradients, Adam) timed over --steps steps after a
 * warm-up. Each tfjs measurement runs in a child process, so a batch that exhausts the
 * 4 GiB wasm heap only ends that child; the batch is then halved until one fits.
 * Figures: median wall ms/image and CPU ms/image (all threads of the process; PyTorch's
 * is measured in a second run with its step clock swapped for process CPU time). CPU time
 * says more than wall time when other jobs share the machine: PyTorch's two OpenMP
 * threads lose much more wall time to a busy neighbour than single-threaded code does.
 * Also: wasm heap size, and whether tf.memory().numTensors stayed flat over the steps.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchModel } from './train-nets.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const referenceScript = resolve(repo, '../shared/bench/reference_train.py');
const SIZES: Record<BenchModel, number> = { classifier: 224, segmenter: 256 };

export interface TfjsFigures {
  /** gradient worker threads besides the main one */
  workers: number;
  model: BenchModel;
  size: number;
  batch: number;
  backend: string;
  msPerImage: number;
  cpuMsPerImage: number;
  stepMs: number[];
  heapMiB: number | null;
  tensorsBefore: number;
  tensorsAfter: number;
}

async function child(model: BenchModel, batch: number, steps: number, workers: number): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { initBackend, backendDescription } = await import('../src/ml/backend.js');
  const { buildTrainStep } = await import('./train-nets.js');
  await initBackend({ log: (m) => process.stderr.write(`${m}\n`) });
  const backend = backendDescription();
  const size = SIZES[model];
  const step = await buildTrainStep(model, size, batch, workers);
  await step.run(); // warm-up: sessions, operators and code paths are created here
  const tensorsBefore = tf.memory().numTensors;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await step.run();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const tensorsAfter = tf.memory().numTensors;
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength;
  const figures: TfjsFigures = {
    workers,
    model,
    size,
    batch,
    backend,
    msPerImage: median(wall) / batch,
    cpuMsPerImage: median(cpu) / batch,
    stepMs: wall.map((t) => Math.round(t)),
    heapMiB: heap != null ? Math.round(heap / 2 ** 20) : null,
    tensorsBefore,
    tensorsAfter,
  };
  step.dispose();
  process.stdout.write(`FIGURES ${JSON.stringify(figures)}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function runTfjs(model: BenchModel, batch: number, steps: number, workers: number): TfjsFigures | { error: string } {
  const args = ['--child', model, '--batch', String(batch), '--steps', String(steps), '--workers', String(workers)];
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 2 ** 20,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('FIGURES '));
  if (r.status === 0 && line) return JSON.parse(line.slice('FIGURES '.length)) as TfjsFigures;
  const err = `${r.stderr}`.split('\n').filter((l) => /memory|abort|Error|error/i.test(l) && l.length < 400);
  return { error: err.slice(-2).join(' | ') || `exit ${r.status} ${r.signal ?? ''}` };
}

interface Reference {
  ms_per_image: number;
  batch: number;
  max_rss_mb: number;
}

/**
 * Runs reference_train.py as it is, or (cpu) with its step clock swapped for the
 * process's CPU time (all threads), so that its ms_per_image reads CPU ms per image.
 */
function runReference(model: BenchModel, batch: number, steps: number, cpu = false): Reference | { error: string } {
  if (!existsSync(referenceScript)) return { error: `reference unavailable: ${referenceScript} not found` };
  const args = ['--model', model, '--batch', String(batch), '--steps', String(steps)];
  const argv = cpu
    ? [
        '-c',
        'import runpy, sys, time; time.perf_counter = time.process_time; ' +
          `sys.argv = [${JSON.stringify(referenceScript)}] + sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")`,
        ...args,
      ]
    : [referenceScript, ...args];
  const r = spawnSync('/usr/bin/python3', argv, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error != null || r.status !== 0) {
    const why = r.error?.message ?? r.stderr.trim().split('\n').slice(-1)[0];
    return { error: `reference unavailable: ${why} (needs Debian python3-torch python3-torchvision)` };
  }
  return JSON.parse(r.stdout.trim().split('\n').slice(-1)[0]) as Reference;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      models: { type: 'string', default: 'classifier,segmenter' },
      steps: { type: 'string', default: '3' },
      batch: { type: 'string', default: '8' },
      workers: { type: 'string', default: '0,1' },
      'no-reference': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const steps = Number(values.steps);
  if (values.child) return child(values.child as BenchModel, Number(values.batch), steps, Number(values.workers));
  const workerCounts = values.workers.split(',').map(Number);

  const results: unknown[] = [];
  for (const model of values.models.split(',') as BenchModel[]) {
    if (!(model in SIZES)) throw new Error(`unknown model ${model}`);
    const batch = Number(values.batch);
    const reference = values['no-reference'] ? { error: 'reference skipped (--no-reference)' } : runReference(model, batch, steps);
    const referenceCpu = 'error' in reference ? null : runReference(model, batch, steps, true);
    const runs: (TfjsFigures | { error: string })[] = [];
    for (const workers of workerCounts) {
      let b = batch;
      let tfjs = runTfjs(model, b, steps, workers);
      while ('error' in tfjs && b > 1) {
        process.stderr.write(`${model} (${workers} workers): batch ${b} failed (${tfjs.error}); trying ${Math.floor(b / 2)}\n`);
        b = Math.floor(b / 2);
        tfjs = runTfjs(model, b, steps, workers);
      }
      runs.push(tfjs);
    }
    results.push({ model, size: SIZES[model], reference, referenceCpu, tfjs: runs });
    if (!values.json) {
      console.log(`\n${model} ${SIZES[model]}px`);
      console.log(
        'error' in reference
          ? `  PyTorch eager : ${reference.error}`
          : `  PyTorch eager : ${reference.ms_per_image.toFixed(0)} ms/image wall, ${
              referenceCpu == null || 'error' in referenceCpu ? '?' : referenceCpu.ms_per_image.toFixed(0)
            } ms/image CPU (batch ${reference.batch}, ${steps} steps, max RSS ${reference.max_rss_mb} MiB)`,
      );
      runs.forEach((tfjs, i) => {
        const label = `tfjs ${workerCounts[i] === 0 ? '1 thread ' : `${workerCounts[i] + 1} threads`}`.padEnd(14);
        if ('error' in tfjs) {
          console.log(`  ${label}: failed: ${tfjs.error}`);
          return;
        }
        const cpuRatio = referenceCpu == null || 'error' in referenceCpu ? '' : `, CPU ${(tfjs.cpuMsPerImage / referenceCpu.ms_per_image).toFixed(1)}x`;
        const ratio = 'error' in reference ? '' : `; ${(tfjs.msPerImage / reference.ms_per_image).toFixed(1)}x PyTorch wall${cpuRatio}`;
        console.log(`  ${label}: ${tfjs.msPerImage.toFixed(0)} ms/image wall, ${tfjs.cpuMsPerImage.toFixed(0)} ms/image CPU (batch ${tfjs.batch}${ratio})`);
        console.log(
          `                  ${tfjs.backend}; steps ${tfjs.stepMs.join(', ')} ms; wasm heap ${tfjs.heapMiB} MiB; tensors ${tfjs.tensorsBefore} -> ${tfjs.tensorsAfter}`,
        );
      });
    }
  }
  if (values.json) console.log(JSON.stringify(results));
}

await main();
