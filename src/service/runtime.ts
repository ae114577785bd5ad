/**
 * The parts every process of a deployment runs, HTTP or not: the object store, the job queue
 * and the triage service with its scoring workers. `serve` adds the API on top; `worker` runs
 * only this.
 */
import type { DataSource } from 'typeorm';
import type { TriageEngine } from '../inference/types.js';
import { adoptRegistryVersions, RegistryFollower, type EngineLoader } from './model-activation.js';
import { ShadowScorer } from './shadow.js';
import { DEFAULT_JOB_SETTINGS, JobQueue, retryOnDeadlock, type JobSettings } from './jobs.js';
import type { Logger } from './log.js';
import type { StoreKind } from './object-store.js';
import { assertRegistryAgrees } from './model-registry.js';
import { openObjectStore } from './stores.js';
import { ResultsOutbox } from './outbox.js';
import { DEFAULT_RESULTS_SETTINGS, type ResultsSettings } from './results.js';
import { TriageService, type ManifestReader, type ServiceHooks } from './triage.js';

export interface RuntimeSettings {
  hmacKey: Buffer;
  /** the fs store's directory */
  dicomDir: string;
  store?: StoreKind;
  /** accepted-but-unscored studies beyond which new ones are refused */
  queueSize: number;
  /** scoring loops in this process (0: API only) */
  workers: number;
  jobs?: JobSettings;
  /** unreferenced stored objects older than this are collected (default one hour) */
  storeGcGraceMs?: number;
  /** idle workers poll this often (default 500 ms) */
  jobPollMs?: number;
  /** where AI result objects are sent, and the retry policy (default: made and kept, sent nowhere) */
  /** null: no result objects at all (tests that count every decode or file) */
  results?: ResultsSettings | null;
  /** the results outbox looks for work this often when idle (default 1000 ms) */
  outboxPollMs?: number;
}

export interface Runtime {
  service: TriageService;
  jobs: JobQueue;
  /** studies found accepted without a live job at start and queued */
  recovered: number;
  /** stops the workers (running jobs finish) and the queue's maintenance; the database stays open */
  close(): Promise<void>;
}

export async function startRuntime(o: {
  ds: DataSource;
  engine: TriageEngine;
  settings: RuntimeSettings;
  log: Logger;
  hooks?: ServiceHooks;
  readManifest?: ManifestReader;
  /**
   * The models folder: every registered version is checked against it before any work is taken.
   * With loadEngine too, workers follow the versions the registry marks active (another
   * process's activation or `model promote`) and score shadow candidates' samples.
   */
  modelsDir?: string;
  loadEngine?: EngineLoader;
}): Promise<Runtime> {
  const s = o.settings;
  const jobs = new JobQueue(o.ds, s.jobs ?? DEFAULT_JOB_SETTINGS, o.log);
  const store = openObjectStore(s.store ?? 'fs', { dir: s.dicomDir, ds: o.ds });
  const results = s.results === null ? undefined : (s.results ?? DEFAULT_RESULTS_SETTINGS);
  // Worker processes build and send result objects; an API-only process leaves that to them.
  const outbox =
    results && s.workers > 0
      ? new ResultsOutbox({
          ds: o.ds,
          store,
          settings: results,
          log: o.log,
          pollMs: s.outboxPollMs,
          onAttempt: o.hooks?.resultSend,
          busy: () => service.workers.active > 0,
        })
      : null;
  // built after the service, which both act on
  let follower: RegistryFollower | null = null;
  let shadow: ShadowScorer | null = null;
  const service = new TriageService({
    ds: o.ds,
    store,
    results,
    onResultsQueued: () => outbox?.poke(),
    jobs,
    engine: o.engine,
    hmacKey: s.hmacKey,
    queueCapacity: s.queueSize,
    workers: s.workers,
    loopsPerWorker: 2,
    log: o.log,
    hooks: o.hooks,
    readManifest: o.readManifest,
    pollMs: s.jobPollMs,
    beforeScore: () => follower?.sync() ?? Promise.resolve(),
    afterScore: (study, film, models) => shadow?.score(study, film, models) ?? Promise.resolve(),
  });
  if (o.modelsDir && o.loadEngine) {
    const d = { ds: o.ds, modelsDir: o.modelsDir, service, loadEngine: o.loadEngine };
    follower = new RegistryFollower({ ...d, log: o.log });
    shadow = new ShadowScorer({
      ...d,
      modelId: (ref, kind) => service.modelId(ref, kind),
      log: o.log,
      onOutcome: (x) => o.hooks?.shadow?.(x),
    });
  }
  let gc: NodeJS.Timeout | null = null;
  try {
    // before the queue starts: a process whose files disagree with the registry takes no job
    if (o.modelsDir) {
      await assertRegistryAgrees(o.ds, o.modelsDir);
      // the registry's active versions, not this folder's ACTIVE, are what the deployment serves
      await adoptRegistryVersions({ ds: o.ds, modelsDir: o.modelsDir, service, loadEngine: o.loadEngine, log: o.log });
    }
    await jobs.start();
    // marks them active only where the registry names none yet: a stale folder never undoes a promotion
    // (processes starting together race on the same rows)
    await retryOnDeadlock(() => service.registerEngineModels('if-none'));
    const recovered = await service.recover();
    service.startWorkers();
    outbox?.start();
    if (s.workers > 0) {
      // Files stored by a process killed before its transaction committed; a worker sweeps now and then.
      const grace = s.storeGcGraceMs ?? 3_600_000;
      const sweep = () =>
        service
          .collectGarbage(grace)
          .then((n) => n > 0 && o.log.info('removed unreferenced stored objects', { count: n }))
          .catch((e) => o.log.warn('store garbage collection failed', { error: String(e) }));
      gc = setInterval(sweep, Math.max(60_000, Math.min(grace, 15 * 60_000)));
      gc.unref();
    }
    return {
      service,
      jobs,
      recovered,
      close: async () => {
        if (gc) clearInterval(gc);
        await service.close();
        await outbox?.stop();
        await shadow?.close();
        await jobs.stop();
      },
    };
  } catch (e) {
    await jobs.stop().catch(() => undefined);
    throw e;
  }
}
