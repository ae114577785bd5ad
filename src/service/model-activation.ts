/**
 * Model activation and promotion. models/<name>/ACTIVE names the version a process loads at
 * start (the model store's format); model_versions.active in PostgreSQL names what the
 * deployment serves now. Activating in a running service (admin API) writes ACTIVE through the
 * store, loads a new engine and swaps it in (if the new version does not load, every ACTIVE is
 * put back), which marks it active in the registry. Promoting from the command line
 * (`cxr-triage model promote`) writes ACTIVE and marks the registry in one audited step, with no
 * engine of its own. Every worker follows the registry before each job (RegistryFollower), so
 * an activation made through one process reaches all of them. Either way, a shadow run of the
 * version activated ends: it is the active model now.
 *
 * Once the registry names an active version, it is the source of truth at start too: a process
 * loads the registry's versions from its models folder whatever its ACTIVE file says (a folder
 * shipped before a promotion must not undo it), and only a registry with no active version of a
 * kind takes ACTIVE (registryStartPick, adoptRegistryVersions).
 */
import { join, resolve } from 'node:path';
import type { DataSource, EntityManager } from 'typeorm';
import { activeModels, markActiveIn, registerModel } from '../db/models.js';
import { stopShadowIn } from '../db/shadow.js';
import { CxrError, isCxrError } from '../errors.js';
import { loadServedModel } from '../inference/models.js';
import { recordedVersion, type ModelRef, type TriageEngine } from '../inference/types.js';
import { activateOnDisk, readActive, readManifest, servableVersion, type ModelName } from '../ml/model-store/index.js';
import type { Logger } from './log.js';
import type { ManifestReader, TriageService } from './triage.js';

/** Loads an engine from the models directory as it stands, or from the given version folders. */
export type EngineLoader = (pick?: { segmenterDir?: string; classifierDir?: string }) => Promise<TriageEngine>;

export interface ActivationDeps {
  ds: DataSource;
  modelsDir: string;
  service: TriageService;
  loadEngine: EngineLoader;
}

/** Serialises activations and registry follows in this process: two at once would race on ACTIVE and on the swap. */
let pending: Promise<unknown> = Promise.resolve();

function serially<T>(fn: () => Promise<T>): Promise<T> {
  const run = pending.then(fn);
  pending = run.catch(() => undefined);
  return run;
}

export interface Activated {
  /** the shadow run of this version that activation ended (NAME@VERSION), or null */
  shadowStopped: string | null;
}

export function activateModelVersion(d: ActivationDeps, name: string, version: string, by: string): Promise<Activated> {
  return serially(() => activate(d, name, version, by));
}

function refusal(name: string, version: string) {
  return (e: unknown): never => {
    if (isCxrError(e) && e.code === 'E_NOT_FOUND') throw e;
    const why = isCxrError(e) ? `${e.code}: ${e.message}` : String(e);
    throw new CxrError('E_CONFLICT', `${name}@${version} cannot be served, the active version stays: ${why}`);
  };
}

async function activate(d: ActivationDeps, name: string, version: string, by: string): Promise<Activated> {
  const served = d.service.models;
  const refuse = refusal(name, version);
  // the other model stays what is served now, whatever the folder's newest is
  const { restore } = await activateOnDisk(d.modelsDir, name, version, { segmenter: served.segmenter.version, classifier: served.classifier.version }).catch(
    refuse,
  );
  let engine: TriageEngine;
  try {
    engine = await d.loadEngine();
  } catch (e) {
    await restore();
    return refuse(e);
  }
  try {
    await d.service.swapEngine(engine);
  } catch (e) {
    // refused by the registry (its rule on disk differs from the registered one): ACTIVE goes back
    await restore();
    return refuse(e);
  }
  const stopped = await d.ds.transaction((m) => stopShadowIn(m, by, { name, version }));
  return { shadowStopped: stopped ? `${stopped.name}@${stopped.version}` : null };
}

export interface Promoted {
  /** the version ACTIVE named before (null: none, the newest was served) */
  from: string | null;
  to: string;
  /** as registered (`+int8` when the int8 file is what is served) */
  registered: string;
  shadowStopped: string | null;
}

/**
 * Promotion without a running engine (the command line): checks the version can be served
 * (files match the manifest, the ONNX model is there), writes ACTIVE, and in one transaction
 * marks it active in the registry, ends its shadow run and writes the audit row. Running workers
 * follow the registry before their next job; a process started later loads the registry's version.
 */
export function promoteModelVersion(o: {
  ds: DataSource;
  modelsDir: string;
  name: string;
  version: string;
  by: string;
  audit: (m: EntityManager, detail: Record<string, unknown>) => Promise<void>;
}): Promise<Promoted> {
  return serially(async () => {
    const refuse = refusal(o.name, o.version);
    const from = (await readActive(o.modelsDir, o.name as ModelName).catch(() => null)) ?? null;
    const { entry, restore } = await activateOnDisk(o.modelsDir, o.name, o.version).catch(refuse);
    try {
      // the ref a worker will record, hash-checked the way a worker loads it
      const servedModel = await loadServedModel(o.modelsDir, entry.name, entry.dir).catch(refuse);
      const ref = servedModel.ref;
      const row = await registerModel(o.ds, {
        kind: entry.name,
        name: entry.name,
        version: recordedVersion(ref),
        sha256: ref.sha256,
        manifest: entry.manifest as unknown as Record<string, unknown>,
      });
      return await o.ds.transaction(async (m) => {
        await markActiveIn(m, row.id);
        const stopped = await stopShadowIn(m, o.by, { name: entry.name, version: entry.version });
        const result: Promoted = {
          from,
          to: entry.version,
          registered: `${row.name}@${row.version}`,
          shadowStopped: stopped ? `${stopped.name}@${stopped.version}` : null,
        };
        await o.audit(m, { model: `${entry.name}@${entry.version}`, from, registered: result.registered, shadowStopped: result.shadowStopped });
        return result;
      });
    } catch (e) {
      await restore();
      throw e;
    }
  });
}

/**
 * Keeps a process's engine on the versions the registry marks active: before each job a worker
 * reads model_versions (one indexed query), and when another process activated or promoted a
 * version, loads it from the models directory and swaps it in. A version that does not load here
 * is logged once and not tried again for every job; the engine stays.
 */
export class RegistryFollower {
  private readonly failed = new Set<string>();

  constructor(private readonly d: ActivationDeps & { log: Logger }) {}

  async sync(): Promise<void> {
    const rows: { kind: 'segmenter' | 'classifier'; name: string; version: string }[] = await this.d.ds.query(
      `SELECT kind, name, version FROM model_versions WHERE active`,
    );
    const served = this.d.service.models;
    const want = { segmenter: served.segmenter.version, classifier: served.classifier.version };
    let differs = false;
    for (const r of rows) {
      // the int8 file of a version is the same version: another process may serve it, this one the float
      const v = r.version.replace(/\+int8$/, '');
      if (r.name === served[r.kind].name && v !== served[r.kind].version) {
        want[r.kind] = v;
        differs = true;
      }
    }
    if (!differs) return;
    const key = `${want.segmenter}|${want.classifier}`;
    if (this.failed.has(key)) return;
    await serially(async () => {
      const now = this.d.service.models;
      if (now.segmenter.version === want.segmenter && now.classifier.version === want.classifier) return;
      try {
        const engine = await this.d.loadEngine({
          segmenterDir: join(this.d.modelsDir, served.segmenter.name, want.segmenter),
          classifierDir: join(this.d.modelsDir, served.classifier.name, want.classifier),
        });
        await this.d.service.swapEngine(engine, 'record');
        this.d.log.info('serving the versions the registry marks active', { segmenter: want.segmenter, classifier: want.classifier });
      } catch (e) {
        this.failed.add(key);
        this.d.log.error('the registry marks versions active that this process cannot load; it keeps serving its own', {
          ...want,
          error: String((e as Error)?.message ?? e),
        });
      }
    });
  }
}

/** The version folders to load: the registry's active versions, per kind (absent: the registry names none, ACTIVE decides). */
export type EnginePick = { segmenterDir?: string; classifierDir?: string };

/** The registry's versions are registered as served: `+int8` rows name the int8 file of the same version folder. */
const folderVersion = (registered: string) => registered.replace(/\+int8$/, '');

/**
 * At start, before the engine loads: the folders of the versions the registry marks active, each
 * checked to be servable from this models folder (manifest files verify, model.onnx there).
 *
 * A version the registry marks active that this folder lacks or cannot serve stops the start
 * (E_MODEL_MISSING / E_MODEL_INVALID naming it) rather than serving another version: the
 * deployment decided what scores studies, predictions record it, and a process quietly scoring
 * with something else would mix two decision rules into one worklist; an unstarted worker
 * leaves its jobs to the others, and the error says what to ship. `notes` says where ACTIVE
 * disagrees with the registry (logged: the folder is stale, the registry wins).
 */
export async function registryStartPick(ds: DataSource, modelsDir: string): Promise<{ pick: EnginePick; notes: string[] }> {
  const pick: EnginePick = {};
  const notes: string[] = [];
  for (const row of await activeModels(ds)) {
    const version = folderVersion(row.version);
    const dir = join(resolve(modelsDir), row.name, version);
    try {
      await servableVersion(modelsDir, row.name, version);
    } catch (e) {
      const missing = isCxrError(e) && e.code === 'E_NOT_FOUND';
      const why = isCxrError(e) ? `${e.code}: ${e.message}` : String(e);
      throw new CxrError(
        missing ? 'E_MODEL_MISSING' : 'E_MODEL_INVALID',
        `the registry (model_versions in PostgreSQL) marks ${row.name}@${row.version} active for the whole deployment, but this process cannot serve it ` +
          `from ${dir} (${why}). It will not start with another version: ship that version folder to this process (shared volume or image), ` +
          `or make a version it has the active one: \`cxr-triage model promote ${row.name}@VERSION\``,
        { model: `${row.name}@${row.version}`, dir },
      );
    }
    pick[row.kind === 'segmenter' ? 'segmenterDir' : 'classifierDir'] = dir;
    const onDisk = await readActive(modelsDir, row.name as ModelName).catch(() => null);
    if (onDisk !== version) {
      notes.push(
        `${join(resolve(modelsDir), row.name, 'ACTIVE')} names ${onDisk ?? '(none: the newest)'}, the registry ${row.name}@${version}: serving the registry's (\`cxr-triage model promote\` changes it)`,
      );
    }
  }
  return { pick, notes };
}

/**
 * At start, after the engine loaded: if the registry marks other versions active than the engine
 * runs (an engine loaded from ACTIVE by a caller that did not ask registryStartPick, or a promotion
 * that landed while it loaded), loads the registry's and swaps them in without marking anything.
 */
export async function adoptRegistryVersions(d: {
  ds: DataSource;
  modelsDir: string;
  service: TriageService;
  loadEngine?: EngineLoader;
  log: Logger;
}): Promise<void> {
  const { pick, notes } = await registryStartPick(d.ds, d.modelsDir);
  const served = d.service.models;
  const differs = (['segmenter', 'classifier'] as const).filter((k) => {
    const dir = pick[`${k}Dir`];
    return dir !== undefined && dir !== join(resolve(d.modelsDir), served[k].name, served[k].version);
  });
  if (differs.length === 0) return;
  if (!d.loadEngine) {
    throw new CxrError(
      'E_MODEL_INVALID',
      `the registry marks other versions active than this process loaded (${differs.join(', ')}), and it was built without a model loader to switch`,
    );
  }
  for (const n of notes) d.log.warn(n);
  await serially(async () => d.service.swapEngine(await d.loadEngine!(pick), 'record'));
  const now = d.service.models;
  d.log.info('serving the versions the registry marks active', { segmenter: now.segmenter.version, classifier: now.classifier.version });
}

/** Reads a served model's manifest for the model_versions table. */
export function manifestReader(modelsDir: string): ManifestReader {
  return async (ref: ModelRef) => {
    const kind: ModelName = ref.name === 'segmenter' ? 'segmenter' : 'classifier';
    try {
      const m = await readManifest(join(modelsDir, ref.name, ref.version));
      return { kind, manifest: m as unknown as Record<string, unknown> };
    } catch {
      return { kind, manifest: {} };
    }
  };
}
