/**
 * Scoring engines in worker threads, behind the engine interface the service already uses.
 * ONNX Runtime's node binding runs a session synchronously on its caller's thread: with the
 * engine on the main thread, a process could neither take uploads nor write results while it
 * scored, and its other work ran between studies on one core. Each engine here is a whole
 * loaded engine (engine-thread.ts) with its own sessions; a study goes to the first idle one,
 * so N engines of one ONNX thread each score N studies at once, which on this project's CPUs
 * does more studies a second than one study on N threads.
 */
import { Worker } from 'node:worker_threads';
import { CxrError, type ErrorCode } from '../errors.js';
import type { GrayImage } from '../imaging/types.js';
import { siblingModule, workerBoot } from '../worker-boot.js';
import type { EngineOptions, ImageScore, OnnxTriageEngine } from './engine.js';
import type { AnalyzeOptions, TriageResult } from './types.js';

export type ToEngineThread =
  | { type: 'analyze'; id: number; bytes: Uint8Array; options?: AnalyzeOptions }
  | { type: 'score'; id: number; image: GrayImage; options?: { tta?: number; features?: boolean } }
  | { type: 'close' }
  /** ends the thread at once, as a crash would (how a test sees the pool replace a thread) */
  | { type: 'exit'; code: number };

type EngineInfo = Pick<OnnxTriageEngine, 'models' | 'providers' | 'settings' | 'threshold'>;

export type FromEngineThread =
  | { type: 'ready'; engine: EngineInfo }
  | { type: 'warning'; message: string }
  | { type: 'done'; id: number; result: TriageResult | ImageScore }
  /** id -1: the engine did not load */
  | { type: 'failed'; id: number; error: { code?: ErrorCode; message: string; details?: Record<string, unknown> } };

/** The pool is an engine, plus what its threads are doing. */
export interface EnginePool extends OnnxTriageEngine {
  /** engine threads loaded and taking studies now */
  readonly threadsReady: number;
  /** ends one engine thread at once, as a crash would (how a test sees the pool replace it) */
  stopOneThread(): void;
}

export interface EnginePoolOptions extends EngineOptions {
  /** engines (threads), each scoring one study at a time with `threads` ONNX Runtime threads */
  engines: number;
}

interface Task {
  msg: ToEngineThread & { id: number };
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
  alive: boolean;
}

/** The film's memory when its caller handed it over and it is the whole of its buffer (else it is copied). */
function transferable(msg: ToEngineThread): ArrayBuffer[] {
  if (msg.type !== 'analyze' || !msg.options?.handOver) return [];
  const b = msg.bytes;
  return b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? [b.buffer] : [];
}

function rebuilt(e: Extract<FromEngineThread, { type: 'failed' }>['error']): Error {
  return e.code ? new CxrError(e.code, e.message, e.details) : new Error(e.message);
}

/** Starts `engines` engine threads and waits until every one has loaded and warmed its models. */
export async function loadEnginePool(opts: EnginePoolOptions): Promise<EnginePool> {
  const { engines, onWarning, ...plain } = opts;
  if (!Number.isInteger(engines) || engines < 1) throw new CxrError('E_BAD_ARGUMENT', `engines must be a whole number of at least 1, got ${engines}`);
  const boot = workerBoot(siblingModule(import.meta.url, 'engine-thread'));
  const slots: Slot[] = [];
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;
  let idleWaiters: (() => void)[] = [];
  /** threads loading now (at the start, or replacing one that stopped): queued studies wait for them */
  let starting = 0;
  /** replacements waiting out their back-off: queued studies wait for them too */
  let scheduled = 0;
  const timers = new Set<NodeJS.Timeout>();
  const restarts: number[] = [];

  const dispatch = (): void => {
    for (const slot of slots) {
      if (queue.length === 0) break;
      if (!slot.alive || slot.task) continue;
      slot.task = queue.shift()!;
      slot.worker.postMessage(slot.task.msg, transferable(slot.task.msg));
    }
    if (starting === 0 && scheduled === 0 && !slots.some((s) => s.alive))
      for (const t of queue.splice(0)) t.reject(new CxrError('E_BACKEND', 'every scoring engine thread has stopped'));
    if (queue.length === 0 && slots.every((s) => !s.task)) for (const w of idleWaiters.splice(0)) w();
  };

  function startThread(): Promise<EngineInfo> {
    starting++;
    return new Promise<EngineInfo>((resolve, reject) => {
      const worker = new Worker(boot, { eval: true, workerData: plain });
      // alive: loaded and taking studies, until it stops
      const slot: Slot = { worker, task: null, alive: false };
      slots.push(slot);
      const settle = (ok: boolean) => {
        starting--;
        slot.alive = ok;
        dispatch();
      };
      worker.on('message', (m: FromEngineThread) => {
        if (m.type === 'warning') onWarning?.(m.message);
        else if (m.type === 'ready') {
          settle(true);
          resolve(m.engine);
        } else if (m.type === 'failed' && m.id === -1) reject(rebuilt(m.error));
        else if (slot.task?.msg.id === m.id) {
          const t = slot.task;
          slot.task = null;
          if (m.type === 'done') t.resolve(m.result);
          else t.reject(rebuilt(m.error));
          dispatch();
        }
      });
      let gone = false;
      const stopped = (why: string) => {
        if (gone) return;
        gone = true;
        slots.splice(slots.indexOf(slot), 1);
        if (!slot.alive) {
          settle(false);
          reject(new CxrError('E_BACKEND', `a scoring engine thread did not start: ${why}`));
          return;
        }
        slot.alive = false;
        const t = slot.task;
        slot.task = null;
        t?.reject(new CxrError('E_BACKEND', `the scoring engine thread stopped: ${why}`));
        if (!closed) replace(why);
        dispatch();
      };
      worker.on('error', (e) => stopped(String(e?.message ?? e)));
      worker.on('exit', (code) => stopped(`it exited with code ${code}`));
    });
  }

  /**
   * A thread that stopped while serving is replaced at once; when threads keep stopping (more
   * than `engines` in a minute), or a replacement does not start, after a back-off that doubles
   * up to a minute. Never for good: a pool that gave up left a process taking jobs it could only
   * fail, while saying it was ready.
   */
  function replace(why: string, failures = 0): void {
    const now = Date.now();
    while (restarts.length > 0 && now - restarts[0] > 60_000) restarts.shift();
    const delayMs =
      restarts.length >= engines || failures > 0 ? Math.min(60_000, 1000 * 2 ** Math.min(6, failures + Math.max(0, restarts.length - engines))) : 0;
    restarts.push(now);
    onWarning?.(
      `a scoring engine thread stopped (${why}): starting another${delayMs > 0 ? ` in ${delayMs / 1000} s (${restarts.length} in the last minute)` : ''}`,
    );
    scheduled++;
    // counted until the replacement has started or failed, so studies queued meanwhile wait for it
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (closed) {
        scheduled = Math.max(0, scheduled - 1);
        return dispatch();
      }
      startThread().then(
        () => {
          scheduled = Math.max(0, scheduled - 1);
        },
        (e: unknown) => {
          scheduled = Math.max(0, scheduled - 1);
          const message = String((e as Error)?.message ?? e);
          onWarning?.(`a replacement scoring engine thread did not start: ${message}`);
          if (closed) dispatch();
          else replace(message, failures + 1);
        },
      );
    }, delayMs);
    timers.add(timer);
  }

  const started = Array.from({ length: engines }, () => startThread());
  let info: EngineInfo;
  try {
    [info] = await Promise.all(started);
  } catch (e) {
    await Promise.all(slots.map((s) => s.worker.terminate()));
    throw e;
  }

  function run<T>(msg: ToEngineThread & { id: number }): Promise<T> {
    if (closed) return Promise.reject(new CxrError('E_BACKEND', 'the triage engine is closed'));
    return new Promise<T>((resolve, reject) => {
      queue.push({ msg, resolve: resolve as (r: unknown) => void, reject });
      dispatch();
    });
  }

  return {
    ...info,
    get threadsReady() {
      return slots.filter((s) => s.alive).length;
    },
    stopOneThread() {
      slots.find((s) => s.alive)?.worker.postMessage({ type: 'exit', code: 70 } satisfies ToEngineThread);
    },
    settings: { ...info.settings, engines },
    analyze: (bytes: Uint8Array, options?: AnalyzeOptions) => run<TriageResult>({ type: 'analyze', id: nextId++, bytes, options }),
    scoreImage: (image: GrayImage, options?: { tta?: number; features?: boolean }) => run<ImageScore>({ type: 'score', id: nextId++, image, options }),
    async close() {
      if (closed) return;
      closed = true;
      // no replacement starts any more; what waited for one is refused
      for (const t of timers) clearTimeout(t);
      timers.clear();
      scheduled = 0;
      dispatch();
      // studies already handed over finish; then each thread releases its sessions and exits
      if (queue.length > 0 || slots.some((s) => s.task)) await new Promise<void>((r) => idleWaiters.push(r));
      idleWaiters = [];
      await Promise.all(
        slots
          .filter((s) => s.alive)
          .map(
            (s) =>
              new Promise<void>((r) => {
                const timer = setTimeout(() => void s.worker.terminate(), 10_000);
                s.worker.once('exit', () => {
                  clearTimeout(timer);
                  r();
                });
                s.worker.postMessage({ type: 'close' } satisfies ToEngineThread);
              }),
          ),
      );
    },
  };
}
