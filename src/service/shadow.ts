/**
 * Shadow models: a candidate version scores a deterministic sample of studies as well as the
 * active model. Which candidate and what fraction live in PostgreSQL (`shadow_settings`), so
 * every worker process of a deployment follows one setting; the sample is a hash of the
 * StudyInstanceUID against the fraction, so reruns and other processes pick the same studies
 * (and every instance of a study goes the same way). A candidate's results go to their own
 * table and are never shown, sent or counted as the study's result; a failure of the candidate
 * is logged and counted, never the study's.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { DataSource, EntityManager } from 'typeorm';
import type { ModelKind } from '../db/entities.js';
import { activeModels } from '../db/models.js';
import {
  recordShadowPrediction,
  runningShadow,
  shadowCandidates,
  shadowComparison,
  startShadowIn,
  stopShadowIn,
  type ShadowComparison,
  type ShadowSetting,
} from '../db/shadow.js';
import { CxrError, isCxrError } from '../errors.js';
import type { ModelRef, TriageEngine, TriageReport } from '../inference/types.js';
import { readActive, servableVersion, type ModelName } from '../ml/model-store/index.js';
import type { EngineLoader } from './model-activation.js';
import type { Logger } from './log.js';

export type ShadowOutcome = 'scored' | 'failed';

/**
 * Whether a study is in a candidate's sample: the first 32 bits of sha256(StudyInstanceUID)
 * as a fraction of 2^32, below `fraction`. Independent of the candidate, so raising the fraction
 * keeps every study sampled before.
 */
export function inShadowSample(studyInstanceUid: string, fraction: number): boolean {
  if (fraction >= 1) return true;
  const h = createHash('sha256').update(studyInstanceUid).digest();
  return h.readUInt32BE(0) / 2 ** 32 < fraction;
}

/** A fraction as given on a command line or in a request: a number in (0, 1]. */
export function parseFraction(v: unknown): number {
  const f = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!(f > 0 && f <= 1)) throw new CxrError('E_BAD_ARGUMENT', `the fraction must be a number in (0, 1], got '${String(v)}'`);
  return f;
}

/** Sets the candidate (replacing any running one); `audit` writes the audit row in the same transaction. */
export async function startShadow(
  ds: DataSource,
  s: { kind: ModelKind; name: string; version: string; fraction: number; by: string },
  audit: (m: EntityManager, detail: Record<string, unknown>) => Promise<void>,
): Promise<{ started: ShadowSetting; replaced: ShadowSetting | null }> {
  return ds.transaction(async (m) => {
    const r = await startShadowIn(m, s);
    await audit(m, { candidate: `${s.name}@${s.version}`, fraction: s.fraction, replaced: r.replaced ? `${r.replaced.name}@${r.replaced.version}` : null });
    return r;
  });
}

/** The version a model serves for the deployment: the registry's active one, else (a new registry) the folder's ACTIVE. */
async function activeVersionOf(ds: DataSource, modelsDir: string, name: ModelName): Promise<string | null> {
  const row = (await activeModels(ds)).find((r) => r.name === name);
  if (row) return row.version.replace(/\+int8$/, '');
  return readActive(modelsDir, name).catch(() => null);
}

/**
 * Starts a shadow run of `name@version` (the step `cxr-triage model shadow` and
 * POST /v1/admin/models/{name}/{version}/shadow share): the fraction must be in (0, 1], the
 * version servable from `modelsDir` (the workers load it from their models folder: its files
 * must verify and it needs its ONNX model; else E_CONFLICT, E_NOT_FOUND when there is no such
 * folder), and not the active version (nothing to compare it with). Replaces a running
 * candidate; `audit` writes the row in the same transaction.
 */
export async function startShadowRun(
  ds: DataSource,
  modelsDir: string,
  s: { name: string; version: string; fraction: unknown; by: string },
  audit: (m: EntityManager, detail: Record<string, unknown>) => Promise<void>,
): Promise<{ started: ShadowSetting; replaced: ShadowSetting | null }> {
  const fraction = parseFraction(s.fraction);
  const entry = await servableVersion(modelsDir, s.name, s.version).catch((e: unknown) => {
    if (isCxrError(e) && (e.code === 'E_NOT_FOUND' || e.code === 'E_BAD_ARGUMENT')) throw e;
    const why = isCxrError(e) ? `${e.code}: ${e.message}` : String(e);
    throw new CxrError('E_CONFLICT', `${s.name}@${s.version} cannot be served, so it cannot run in shadow: ${why}`);
  });
  if ((await activeVersionOf(ds, modelsDir, entry.name)) === entry.version)
    throw new CxrError('E_CONFLICT', `${entry.name}@${entry.version} is the active version: there is nothing to compare it with`);
  return startShadow(ds, { kind: entry.name, name: entry.name, version: entry.version, fraction, by: s.by }, audit);
}

/** Stops the running candidate (if any), audited in the same transaction; returns what was stopped. */
export async function stopShadow(
  ds: DataSource,
  by: string,
  audit: (m: EntityManager, detail: Record<string, unknown>) => Promise<void>,
): Promise<ShadowSetting | null> {
  return ds.transaction(async (m) => {
    const stopped = await stopShadowIn(m, by);
    await audit(m, { stopped: stopped ? `${stopped.name}@${stopped.version}` : null });
    return stopped;
  });
}

/** Every candidate ever set (newest first), each with its comparison; or the one named. */
export async function shadowComparisons(ds: DataSource, only?: { name: string; version: string }): Promise<ShadowComparison[]> {
  const out: ShadowComparison[] = [];
  for (const s of await shadowCandidates(ds, only)) out.push(await shadowComparison(ds, s.kind, s.name, s.version, s));
  if (only && out.length === 0) {
    // results without a setting row still compare (a candidate named in the URL that never ran has none: 404)
    const kind: ModelKind = only.name === 'segmenter' ? 'segmenter' : 'classifier';
    const c = await shadowComparison(ds, kind, only.name, only.version, null);
    if (c.scored === 0) throw new CxrError('E_NOT_FOUND', `${only.name}@${only.version} never ran as a shadow candidate`);
    out.push(c);
  }
  return out;
}

export interface ShadowScorerOptions {
  ds: DataSource;
  modelsDir: string;
  /** loads an engine from the given version folders */
  loadEngine: EngineLoader;
  /** the model_versions id of a served model (registering it the first time) */
  modelId(ref: ModelRef, kind: ModelKind): Promise<number>;
  log: Logger;
  onOutcome?(o: ShadowOutcome): void;
}

/** What a worker holds for the candidate: one engine, built for the candidate plus the active version of the other model. */
interface Loaded {
  key: string;
  engine: Promise<TriageEngine>;
  uses: number;
  retired: boolean;
}

export class ShadowScorer {
  private loaded: Loaded | null = null;
  /** a candidate that would not load is not tried again for every study */
  private failedKey: string | null = null;

  constructor(private readonly o: ShadowScorerOptions) {}

  /**
   * Scores the study with the running candidate when the study is in its sample. Never throws:
   * the study's own result is already recorded when this runs.
   */
  async score(
    study: { id: string; studyInstanceUid: string },
    film: () => Promise<Uint8Array>,
    served: { segmenter: ModelRef; classifier: ModelRef },
  ): Promise<void> {
    let setting: ShadowSetting | null;
    try {
      setting = await runningShadow(this.o.ds);
    } catch (e) {
      this.o.log.warn('reading the shadow setting failed; this study is not shadow-scored', { studyId: study.id, error: String(e) });
      this.o.onOutcome?.('failed');
      return;
    }
    if (!setting) {
      this.release();
      return;
    }
    // promoted (or the active one all along): there is nothing to compare
    if (served[setting.kind].version === setting.version) return;
    if (!inShadowSample(study.studyInstanceUid, setting.fraction)) return;
    const other: ModelKind = setting.kind === 'segmenter' ? 'classifier' : 'segmenter';
    const key = `${setting.id}:${setting.kind}:${setting.name}@${setting.version}|${other}:${served[other].name}@${served[other].version}`;
    if (key === this.failedKey) {
      this.o.onOutcome?.('failed');
      return;
    }
    const slot = this.engineFor(key, setting, other, served[other]);
    slot.uses++;
    try {
      const engine = await slot.engine;
      // read only for a study in the sample: the served engine took the film it scored
      const { report } = await engine.analyze(await film(), { artifacts: false, handOver: true });
      await this.record(study.id, report);
      this.o.onOutcome?.('scored');
    } catch (e) {
      if (slot === this.loaded && !(await slot.engine.then(() => true).catch(() => false))) {
        this.failedKey = key;
        this.loaded = null;
      }
      this.o.log.warn('shadow scoring failed; the study keeps its result', {
        studyId: study.id,
        candidate: `${setting.name}@${setting.version}`,
        error: String((e as Error)?.message ?? e),
      });
      this.o.onOutcome?.('failed');
    } finally {
      slot.uses--;
      if (slot.retired && slot.uses === 0) this.closeSlot(slot);
    }
  }

  private engineFor(key: string, s: ShadowSetting, other: ModelKind, otherRef: ModelRef): Loaded {
    if (this.loaded?.key === key) return this.loaded;
    this.release();
    const dirs = {
      [`${s.kind}Dir`]: join(this.o.modelsDir, s.name, s.version),
      [`${other}Dir`]: join(this.o.modelsDir, otherRef.name, otherRef.version),
    } as { segmenterDir: string; classifierDir: string };
    const slot: Loaded = { key, engine: this.o.loadEngine(dirs), uses: 0, retired: false };
    slot.engine.catch(() => undefined);
    this.loaded = slot;
    return slot;
  }

  private async record(studyId: string, r: TriageReport): Promise<void> {
    await recordShadowPrediction(this.o.ds, {
      studyId,
      segmenterId: await this.o.modelId(r.models.segmenter, 'segmenter'),
      classifierId: await this.o.modelId(r.models.classifier, 'classifier'),
      probability: r.probability,
      threshold: r.threshold,
      decision: r.decision,
      flagged: r.flagged,
      flagReasons: [...r.flagReasons],
      qcFlags: [...r.qcFlags],
      ttaSpread: r.tta.spread,
      lungAreaFraction: r.lungAreaFraction,
    });
  }

  /** Lets go of the candidate's engine (closed once no study is using it). */
  private release(): void {
    const slot = this.loaded;
    if (!slot) return;
    this.loaded = null;
    slot.retired = true;
    if (slot.uses === 0) this.closeSlot(slot);
  }

  private closeSlot(slot: Loaded): void {
    slot.engine.then(
      (e) => e.close().catch((err) => this.o.log.warn('closing a shadow engine failed', { error: String(err) })),
      () => undefined,
    );
  }

  async close(): Promise<void> {
    this.release();
  }
}
