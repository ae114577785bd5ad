/**
 * The engine `serve` and `worker` start with, loaded the same way by both: the registry's active
 * versions when it names them (the folder's ACTIVE only for a new registry), the configured
 * threads and TTA views. When it cannot load, the database is closed before the error goes on,
 * so the process can exit.
 */
import { loadEngine, type OnnxTriageEngine } from '../inference/engine.js';
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
  onLoad: () => void = () => {},
): Promise<{ engine: OnnxTriageEngine; load: EngineLoader }> {
  const options = {
    modelsDir: cfg.modelsDir,
    threads: cfg.inferThreads ?? undefined,
    tta: cfg.tta ?? undefined,
    onWarning: (m: string) => log.warn(m),
  };
  const load: EngineLoader = (pick) => loadEngine({ ...options, ...pick });
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
