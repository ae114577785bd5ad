/**
 * A gradient worker: its own tfjs + wasm heap (4 GiB of its own) and onnxruntime threads,
 * a replica of the model built from its topology, and on each step the gradients of the
 * loss over its share of the batch with the weights the trainer sent.
 */
import { parentPort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { backendDescription, initBackend } from '../backend.js';
import { seedDropout } from '../layers/dropout-seed.js';
import type { FromWorker, InitMessage, StepMessage, ToWorker } from './protocol.js';

type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

interface Replica {
  model: tf.LayersModel;
  loss: LossFn;
  vars: tf.Variable[];
  weights: Float32Array;
  results: Float32Array;
}

const port = parentPort;
if (port == null) throw new Error('parallel/worker.ts must run in a worker thread');

let replica: Replica | null = null;

function send(msg: FromWorker): void {
  port!.postMessage(msg);
}

async function init(msg: InitMessage): Promise<Replica> {
  await initBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  const model = await tf.models.modelFromJSON({ modelTopology: JSON.parse(msg.topology) as tf.io.ModelJSON['modelTopology'] });
  const url = msg.loss.module.startsWith('file:') ? msg.loss.module : pathToFileURL(msg.loss.module).href;
  const mod = (await import(url)) as Record<string, (...args: unknown[]) => LossFn>;
  const factory = mod[msg.loss.name];
  if (typeof factory !== 'function') throw new Error(`${msg.loss.module} has no export ${msg.loss.name}`);
  return {
    model,
    loss: factory(...(msg.loss.args ?? [])),
    vars: model.trainableWeights.map((w) => w.read() as tf.Variable),
    weights: new Float32Array(msg.weights),
    results: new Float32Array(msg.results),
  };
}

function step(r: Replica, msg: StepMessage): number {
  // Weights as the trainer has them now (trainable and moving statistics alike).
  let offset = 0;
  const values = r.model.weights.map((w) => {
    const shape = w.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(r.weights.subarray(offset, offset + size), shape);
    offset += size;
    return t;
  });
  r.model.setWeights(values);
  tf.dispose(values);

  const inShape = (r.model.inputs[0].shape as (number | null)[]).slice(1) as number[];
  const outShape = (r.model.outputs[0].shape as (number | null)[]).slice(1) as number[];
  seedDropout(r.model, msg.seed);
  const { value, grads } = tf.variableGrads(() => {
    const x = tf.tensor(msg.x, [msg.n, ...inShape]);
    const y = tf.tensor(msg.y, [msg.n, ...outShape]);
    return r.loss(y, r.model.apply(x, { training: true }) as tf.Tensor);
  }, r.vars);
  const loss = value.dataSync()[0];
  offset = 0;
  for (const v of r.vars) {
    const g = grads[v.name];
    r.results.set(g.dataSync(), offset);
    offset += v.size;
  }
  for (const w of r.model.nonTrainableWeights) {
    const t = w.read();
    r.results.set(t.dataSync(), offset);
    offset += t.size;
  }
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

port.on('message', (msg: ToWorker) => {
  void (async () => {
    try {
      if (msg.type === 'init') {
        replica = await init(msg);
        send({ type: 'ready', backend: backendDescription() });
      } else if (msg.type === 'step') {
        if (replica == null) throw new Error('step before init');
        send({ type: 'done', id: msg.id, loss: step(replica, msg) });
      } else {
        replica?.model.dispose();
        port.close();
      }
    } catch (e) {
      send({ type: 'error', id: msg.type === 'step' ? msg.id : null, message: e instanceof Error ? e.message : String(e) });
    }
  })();
});
