/**
 * The engine `serve` and `worker` start with, loaded the same way by both: the registry's active
 * versions when it names them (the folder's ACTIVE only for a new registry), the configured
 * threads and TTA views. A process that scores gets one engine thread per scoring loop
 * (inference/engine-pool.ts), each with its share of the cores unless CXR_INFER_THREADS says
 * otherwise; an API-only process keeps one engine on its main thread for what it renders.
 * When it cannot load, the database is closed before the error goes on, so the process can exit.
 */
import { availableParallelism } from 'node:os';
import { loadEngine, type OnnxTriageEngine } from '../inference/engine.js';
import { loadEnginePool } from '../inference/engine-pool.js';
import type { Logger } from '../service/log.js';
import { registryStartPick, type EnginePick } from '../service/model-activation.js';
import type { ServiceConfig } from './config.js';
import type { ServiceDatabase } from './database.js';

/** Loads an engine from the models folder as it stands, with the given versions picked. */
export type EngineLoader = (pick?: EnginePick) => Promise<OnnxTriageEngine>;

export async function openServiceEngine(
  db: ServiceDatabase,
  cfg: Pick<ServiceConfig, 'modelsDir' | 'inferThreads' | 'tta'>,
  log: Logger,
  /** scoring loops in this process: as many engine threads (0: one engine on the main thread) */
  scoringLoops: number,
  onLoad: () => void = () => {},
): Promise<{ engine: OnnxTriageEngine; load: EngineLoader }> {
  const options = {
    modelsDir: cfg.modelsDir,
    tta: cfg.tta ?? undefined,
    onWarning: (m: string) => log.warn(m),
  };
  const load: EngineLoader =
    scoringLoops > 0
      ? (pick) =>
          loadEnginePool({
            ...options,
            ...pick,
            engines: scoringLoops,
            threads: cfg.inferThreads ?? Math.max(1, Math.floor(availableParallelism() / scoringLoops)),
          })
      : (pick) => loadEngine({ ...options, ...pick, threads: cfg.inferThreads ?? undefined });
  try {
    const { pick, notes } = await registryStartPick(db.ds, cfg.modelsDir);
    for (const n of notes) log.warn(n);
    onLoad();
    return { engine: await load(pick), load };
  } catch (e) {
    await db.close();
    throw e;
  }
}
