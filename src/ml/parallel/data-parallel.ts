import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { siblingModule, workerBoot } from '../../worker-boot.js';
import * as tf from '@tensorflow/tfjs';
import { nativeRuntime } from '../kernels/native/ort-runtime.js';
import { seedDropout, shareSeed } from '../layers/dropout-seed.js';
import type { FromWorker, LossSpec, ToWorker } from './protocol.js';

export type { LossSpec } from './protocol.js';

/** One mini-batch, NHWC flattened, samples in order (the training loop's `Batch`). */
export interface GradientBatch {
  x: Float32Array;
  y: Float32Array;
  n: number;
  /** dropout seed of this pass; each share derives its own (shareSeed) */
  seed?: number;
}

/** What the training loop plugs in instead of computing gradients itself. */
export interface GradientEngine {
  /** Mean loss over the batch and its gradients, in `model.trainableWeights` order. */
  gradients(batch: GradientBatch): Promise<{ loss: number; grads: tf.Tensor[] }>;
  dispose(): void;
}

export interface DataParallelOptions {
  /** how the workers build the loss (see LossSpec) */
  loss: LossSpec;
  /** the same loss in this thread, for this thread's share of the batch */
  localLoss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;
  /** gradient workers besides this thread (default: cores - 1, at least 1) */
  workers?: number;
}

/**
 * Data-parallel gradients over worker threads. Each step the batch is cut into
 * contiguous shares, one for this thread and one per worker; every worker holds a replica
 * of the model (same topology, its own wasm heap and onnxruntime thread) that receives
 * the current weights through shared memory, computes the gradient of the mean loss over
 * its share, and writes it back. The result is the sample-weighted mean of the shares'
 * gradients, i.e. the gradient of the mean loss over the whole batch, except that each
 * batch-norm layer normalises every share with that share's own statistics (as
 * data-parallel PyTorch without SyncBatchNorm). The moving BN statistics end as the
 * sample-weighted mean of the replicas' updates.
 *
 * Cores: this thread and the workers each compute one share at the same time, with
 * onnxruntime given one thread each. A share smaller than one sample is not made: a batch
 * of n uses min(n, workers + 1) threads.
 *
 * Use from a training loop (after initBackend):
 *
 *   const engine = await dataParallelGradients(model, { loss: { module, name, args }, localLoss });
 *   const { loss, grads } = await engine.gradients({ x, y, n });  // grads[i] ↔ model.trainableWeights[i]
 *   ...apply grads, dispose them...
 *   engine.dispose();
 */
export async function dataParallelGradients(model: tf.LayersModel, opts: DataParallelOptions): Promise<GradientEngine> {
  const count = Math.max(1, opts.workers ?? os.availableParallelism() - 1);
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const nonTrainable = model.nonTrainableWeights;
  const allWeights = model.weights;
  const weightFloats = allWeights.reduce((s, w) => s + sizeOf(w.shape), 0);
  const resultFloats = trainable.reduce((s, v) => s + v.size, 0) + nonTrainable.reduce((s, w) => s + sizeOf(w.shape), 0);
  const weightsBuffer = new SharedArrayBuffer(weightFloats * 4);
  const weightsView = new Float32Array(weightsBuffer);
  const topology = JSON.stringify(model.toJSON(null, false));
  // Each thread computes one share at a time: one onnxruntime thread apiece.
  nativeRuntime()?.setThreads(1);

  const bootstrap = workerBoot(siblingModule(import.meta.url, 'worker'));
  const workers = await Promise.all(
    Array.from({ length: count }, async () => {
      const results = new SharedArrayBuffer(resultFloats * 4);
      const w = new WorkerClient(
        new Worker(bootstrap, { eval: true, env: { ...process.env, CXR_BACKEND: 'wasm', CXR_ORT_THREADS: '1' } }),
        new Float32Array(results),
      );
      await w.call({ type: 'init', topology, loss: opts.loss, nativeThreads: 1, weights: weightsBuffer, results });
      return w;
    }),
  );
  const inShape = (model.inputs[0].shape as (number | null)[]).slice(1) as number[];
  const outShape = (model.outputs[0].shape as (number | null)[]).slice(1) as number[];
  const xPer = sizeOf(inShape);
  const yPer = sizeOf(outShape);
  let nextId = 0;

  return {
    async gradients(batch) {
      const shares = split(batch.n, workers.length + 1);
      // Publish the weights the replicas start from.
      let offset = 0;
      for (const w of allWeights) {
        const data = w.read().dataSync() as Float32Array;
        weightsView.set(data, offset);
        offset += data.length;
      }
      let start = shares[0];
      const pending = shares.slice(1).map((n, i) => {
        const s = start;
        start += n;
        if (n === 0) return null;
        return workers[i].call({
          type: 'step',
          id: nextId++,
          x: batch.x.slice(s * xPer, (s + n) * xPer),
          y: batch.y.slice(s * yPer, (s + n) * yPer),
          n,
          seed: shareSeed(batch.seed, i + 1),
        });
      });
      // This thread's share, while the workers run theirs.
      const n0 = shares[0];
      seedDropout(model, shareSeed(batch.seed, 0));
      const local = tf.variableGrads(() => {
        const x = tf.tensor(batch.x.subarray(0, n0 * xPer), [n0, ...inShape]);
        const y = tf.tensor(batch.y.subarray(0, n0 * yPer), [n0, ...outShape]);
        return opts.localLoss(y, model.apply(x, { training: true }) as tf.Tensor);
      }, trainable);
      const localLoss = local.value.dataSync()[0];
      local.value.dispose();
      const replies = await Promise.all(pending);

      // Sample-weighted means of the shares' gradients, losses and moving statistics.
      const total = batch.n;
      let loss = (localLoss * n0) / total;
      const sums = trainable.map((v) => tf.mul(local.grads[v.name], n0 / total));
      tf.dispose(Object.values(local.grads));
      const stats = nonTrainable.map((w) => tf.mul(w.read(), n0 / total));
      replies.forEach((reply, i) => {
        if (reply == null || reply.type !== 'done') return;
        const share = shares[i + 1] / total;
        loss += reply.loss * share;
        const res = workers[i].results;
        let off = 0;
        trainable.forEach((v, j) => {
          const next = tf.tidy(() => tf.add(sums[j], tf.mul(tf.tensor(res.subarray(off, off + v.size), v.shape), share)));
          sums[j].dispose();
          sums[j] = next;
          off += v.size;
        });
        nonTrainable.forEach((w, j) => {
          const size = sizeOf(w.shape);
          const next = tf.tidy(() => tf.add(stats[j], tf.mul(tf.tensor(res.subarray(off, off + size), w.shape as number[]), share)));
          stats[j].dispose();
          stats[j] = next;
          off += size;
        });
      });
      nonTrainable.forEach((w, j) => w.write(stats[j]));
      tf.dispose(stats);
      return { loss, grads: sums };
    },
    dispose() {
      for (const w of workers) w.close();
    },
  };
}

function sizeOf(shape: readonly (number | null)[]): number {
  return shape.reduce<number>((a, b) => a * (b ?? 1), 1);
}

/** n samples cut into `parts` contiguous shares, sizes differing by at most one. */
export function split(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

class WorkerClient {
  private waiting: { resolve: (m: FromWorker) => void; reject: (e: Error) => void } | null = null;

  constructor(
    private readonly worker: Worker,
    readonly results: Float32Array,
  ) {
    worker.on('message', (m: FromWorker) => {
      const w = this.waiting;
      this.waiting = null;
      if (w == null) return;
      if (m.type === 'error') w.reject(new Error(`gradient worker: ${m.message}`));
      else w.resolve(m);
    });
    worker.on('error', (e) => {
      this.waiting?.reject(e);
      this.waiting = null;
    });
    worker.on('exit', (code) => {
      this.waiting?.reject(new Error(`gradient worker exited with code ${code}`));
      this.waiting = null;
    });
  }

  call(msg: ToWorker): Promise<FromWorker> {
    if (this.waiting != null) return Promise.reject(new Error('gradient worker is busy'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(msg);
    });
  }

  close(): void {
    this.worker.postMessage({ type: 'close' } satisfies ToWorker);
    this.worker.unref();
  }
}

/**
 * The same engine behind the training loop's synchronous `gradientEngine` option
 * (`(model, vars, loss, config) => GradientEngine`): workers start on the first batch.
 * `vars` must be `model.trainableWeights` read in order, which is what the loop passes.
 *
 *   train({ ..., gradientEngine: dataParallelEngine({
 *     module: fileURLToPath(new URL('./loop.js', import.meta.url)), name: 'lossFor', args: [config, classWeights],
 *   }) })
 */
export function dataParallelEngine(
  loss: LossSpec,
  workers?: number,
): (model: tf.LayersModel, vars: readonly tf.Variable[], localLoss: DataParallelOptions['localLoss']) => GradientEngine {
  return (model, _vars, localLoss) => {
    let engine: Promise<GradientEngine> | null = null;
    return {
      async gradients(batch) {
        engine ??= dataParallelGradients(model, { loss, localLoss, workers });
        return (await engine).gradients(batch);
      },
      dispose() {
        void engine?.then((e) => e.dispose());
      },
    };
  };
}
