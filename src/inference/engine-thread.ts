/**
 * One scoring engine in a worker thread (engine-pool.ts starts it). ONNX Runtime's node binding
 * runs a session synchronously on the calling thread, so an engine on the main thread stops the
 * process's HTTP, database and queue work for the whole of every study; here it stops only this
 * thread. Messages are described in engine-pool.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isCxrError } from '../errors.js';
import { loadEngine, type EngineOptions, type OnnxTriageEngine } from './engine.js';
import type { FromEngineThread, ToEngineThread } from './engine-pool.js';

const port = parentPort!;
const post = (m: FromEngineThread) => port.postMessage(m);

function errorOf(e: unknown): Extract<FromEngineThread, { type: 'failed' }>['error'] {
  if (isCxrError(e)) return { code: e.code, message: e.message, details: e.details };
  return { message: String((e as Error)?.message ?? e) };
}

async function main(): Promise<void> {
  let engine: OnnxTriageEngine;
  try {
    engine = await loadEngine({ ...(workerData as EngineOptions), onWarning: (message) => post({ type: 'warning', message }) });
  } catch (e) {
    post({ type: 'failed', id: -1, error: errorOf(e) });
    return;
  }
  post({ type: 'ready', engine: { models: engine.models, providers: engine.providers, settings: engine.settings, threshold: engine.threshold } });
  port.on('message', (m: ToEngineThread) => {
    if (m.type === 'close') {
      void engine.close().finally(() => port.close());
      return;
    }
    if (m.type === 'exit') process.exit(m.code);
    const work = m.type === 'analyze' ? engine.analyze(m.bytes, m.options) : engine.scoreImage(m.image, m.options);
    work.then(
      (result) => post({ type: 'done', id: m.id, result }),
      (e: unknown) => post({ type: 'failed', id: m.id, error: errorOf(e) }),
    );
  });
}

void main();
