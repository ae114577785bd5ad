/**
 * The service core, below HTTP: accept a DICOM instance (validate, store durably, record,
 * queue), score queued studies with the engine, recover unfinished ones after a restart,
 * and render a study's images for review.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { decodeModality, readMetadata, type DicomMetadata } from '../dicom/index.js';
import { CxrError, isCxrError, httpStatusFor } from '../errors.js';
import type { ModelVersionRow, PredictionRow, ReviewRow, StudyRow } from '../db/entities.js';
import { registerModel, markActive, type ModelToRegister } from '../db/models.js';
import {
  findPrediction,
  findStudy,
  findStudyBySop,
  insertStudyOnce,
  listQueuedStudyIds,
  listReviews,
  recordFailure,
  recordPrediction,
  type NewPrediction,
} from '../db/studies.js';
import type { ModelRef, TriageEngine, TriageReport } from '../inference/types.js';
import type { DicomStore } from './dicom-store.js';
import { sha256Hex } from './dicom-store.js';
import type { Logger } from './log.js';
import { pseudonymisePatientId } from './pseudonym.js';
import { InferenceQueue } from './queue.js';
import { renderStudyImages, type StudyImages } from './study-images.js';

export interface ServiceHooks {
  study?: (outcome: 'accepted' | 'duplicate' | 'rejected' | 'scored' | 'failed') => void;
  inferenceSeconds?: (s: number) => void;
  queue?: (waiting: number, running: number) => void;
}

/** Describes how to find a model version's manifest, for the model_versions table. */
export type ManifestReader = (ref: ModelRef) => Promise<{ kind: 'segmenter' | 'classifier'; manifest: Record<string, unknown> }>;

export interface TriageServiceOptions {
  ds: DataSource;
  store: DicomStore;
  engine: TriageEngine;
  hmacKey: Buffer;
  queueCapacity: number;
  inferConcurrency: number;
  log: Logger;
  hooks?: ServiceHooks;
  readManifest?: ManifestReader;
  /** largest decoded image accepted, in pixels */
  maxPixels?: number;
  /** studies whose rendered images are kept in memory */
  imageCacheSize?: number;
}

export interface AcceptResult {
  study: StudyRow;
  /** false when this SOP Instance UID was already stored: the existing study is returned */
  created: boolean;
}

export interface StudyView {
  study: StudyRow;
  prediction: PredictionRow | null;
  reviews: ReviewRow[];
}

export class TriageService {
  readonly queue: InferenceQueue;
  private engine: TriageEngine;
  private readonly inUse = new Map<TriageEngine, { count: number; retired: boolean }>();
  private modelIds = new Map<string, number>();
  private readonly imageCache = new Map<string, Promise<StudyImages>>();
  /** full-size renders hold several image-sized buffers each: a few at a time, a few more waiting */
  private readonly renders = new Limiter(2, 8);
  private closed = false;

  constructor(private readonly o: TriageServiceOptions) {
    this.engine = o.engine;
    this.queue = new InferenceQueue({
      capacity: o.queueCapacity,
      concurrency: o.inferConcurrency,
      run: (id) => this.score(id),
      onChange: (w, r) => o.hooks?.queue?.(w, r),
      onError: (id, e) => o.log.error('scoring crashed', { studyId: id, error: String((e as Error)?.stack ?? e) }),
    });
  }

  get models(): { segmenter: ModelRef; classifier: ModelRef } {
    return this.engine.models;
  }

  /** Records the engine's model versions as the active ones (called at start and on activation). */
  async registerEngineModels(): Promise<ModelVersionRow[]> {
    const rows: ModelVersionRow[] = [];
    for (const kind of ['segmenter', 'classifier'] as const) {
      const ref = this.engine.models[kind];
      const row = await this.registerRef(ref, kind);
      await markActive(this.o.ds, row.id);
      rows.push(row);
    }
    return rows;
  }

  private async registerRef(ref: ModelRef, kind: 'segmenter' | 'classifier'): Promise<ModelVersionRow> {
    const info = this.o.readManifest ? await this.o.readManifest(ref) : { kind, manifest: {} };
    const m: ModelToRegister = { kind, name: ref.name, version: ref.version, sha256: ref.sha256, manifest: info.manifest };
    const row = await registerModel(this.o.ds, m);
    this.modelIds.set(`${ref.name}@${ref.version}`, row.id);
    return row;
  }

  /**
   * Validates and accepts one instance. Everything that can be wrong with the bytes is found
   * before anything is written, so a refused instance leaves no file and no row behind.
   */
  async accept(bytes: Uint8Array, submittedBy: string): Promise<AcceptResult> {
    try {
      const res = await this.acceptChecked(bytes, submittedBy);
      this.o.hooks?.study?.(res.created ? 'accepted' : 'duplicate');
      return res;
    } catch (e) {
      this.o.hooks?.study?.('rejected');
      throw e;
    }
  }

  private async acceptChecked(bytes: Uint8Array, submittedBy: string): Promise<AcceptResult> {
    if (this.closed) throw new CxrError('E_QUEUE_FULL', 'the service is shutting down; retry shortly');
    const meta = readMetadata(bytes);
    const uids = requireUids(meta);
    const sha256 = sha256Hex(bytes);
    const existing = await findStudyBySop(this.o.ds, uids.sop);
    if (existing) return { study: sameContentOrConflict(existing, sha256), created: false };
    // The slot is taken before the pixels are decoded, so an overloaded service refuses cheaply.
    const slot = this.queue.reserve();
    if (!slot) throw new CxrError('E_QUEUE_FULL', `the inference queue is full (${this.o.queueCapacity} waiting); retry shortly`);
    try {
      // Decoding the pixels here means an undecodable file is refused now with its code (422),
      // rather than accepted and failed later where the sender never hears of it.
      await decodeModality(bytes, { maxPixels: this.o.maxPixels });
      await this.o.store.put(bytes);
      const { study, created } = await this.o.ds.transaction((m) =>
        insertStudyOnce(m, {
          id: randomUUID(),
          studyInstanceUid: uids.study,
          seriesInstanceUid: uids.series,
          sopInstanceUid: uids.sop,
          sopClassUid: meta.sopClassUid,
          patientPseudonym: pseudonymisePatientId(this.o.hmacKey, meta.patientId),
          modality: meta.modality,
          viewPosition: meta.viewPosition,
          bodyPart: meta.bodyPartExamined,
          transferSyntax: meta.transferSyntaxUid,
          imageRows: meta.rows || null,
          imageColumns: meta.columns || null,
          sha256,
          sizeBytes: String(bytes.length),
          submittedBy,
          receivedAt: new Date(),
        }),
      );
      if (!created) {
        slot.release();
        return { study: sameContentOrConflict(study, sha256), created: false };
      }
      slot.commit(study.id);
      return { study, created: true };
    } catch (e) {
      slot.release();
      throw e;
    }
  }

  /** Re-enqueues every accepted study without a result; returns how many. */
  async recover(): Promise<number> {
    const ids = await listQueuedStudyIds(this.o.ds);
    for (const id of ids) this.queue.enqueueRecovered(id);
    if (ids.length > 0) this.o.log.info('recovered accepted but unscored studies', { count: ids.length });
    return ids.length;
  }

  /** Resolves when the study is no longer waiting or running, or after timeoutMs. */
  async waitForResult(id: string, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.queue.whenDone(id),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private async score(id: string): Promise<void> {
    const study = await findStudy(this.o.ds, id);
    if (!study || study.status !== 'queued') return;
    let bytes: Buffer;
    try {
      bytes = await this.o.store.get(study.sha256);
    } catch (e) {
      await this.fail(id, e);
      return;
    }
    const t0 = performance.now();
    let report: TriageReport;
    try {
      report = (await this.analyze(bytes, false)).report;
    } catch (e) {
      await this.fail(id, e);
      return;
    }
    this.o.hooks?.inferenceSeconds?.((performance.now() - t0) / 1000);
    await recordPrediction(this.o.ds, id, await this.predictionFrom(report));
    this.o.hooks?.study?.('scored');
  }

  private async fail(id: string, e: unknown): Promise<void> {
    const code = isCxrError(e) ? e.code : 'E_INTERNAL';
    const message = isCxrError(e) ? e.message : 'internal error while scoring';
    if (!isCxrError(e) || httpStatusFor(e.code) >= 500) this.o.log.error('scoring failed', { studyId: id, code, error: String((e as Error)?.stack ?? e) });
    await recordFailure(this.o.ds, id, code, message);
    this.o.hooks?.study?.('failed');
  }

  private async modelId(ref: ModelRef, kind: 'segmenter' | 'classifier'): Promise<number> {
    const known = this.modelIds.get(`${ref.name}@${ref.version}`);
    if (known !== undefined) return known;
    return (await this.registerRef(ref, kind)).id;
  }

  private async predictionFrom(r: TriageReport): Promise<NewPrediction> {
    return {
      segmenterId: await this.modelId(r.models.segmenter, 'segmenter'),
      classifierId: await this.modelId(r.models.classifier, 'classifier'),
      probability: r.probability,
      threshold: r.threshold,
      targetRecall: r.targetRecall,
      decision: r.decision,
      flagged: r.flagged,
      flagReasons: [...r.flagReasons],
      ttaViews: r.tta.views,
      ttaSpread: r.tta.spread,
      qcFlags: [...r.qcFlags],
      lungAreaFraction: r.lungAreaFraction,
      timingsMs: r.timingsMs,
      report: r as unknown as Record<string, unknown>,
    };
  }

  async view(id: string): Promise<StudyView | null> {
    const study = await findStudy(this.o.ds, id);
    if (!study) return null;
    const [prediction, reviews] = await Promise.all([findPrediction(this.o.ds, id), listReviews(this.o.ds, id)]);
    return { study, prediction, reviews };
  }

  /**
   * The windowed image, mask overlay and heatmap overlay of a stored study, rendered from its
   * original bytes by the active engine; the last few studies' renders are kept, since a
   * viewer asks for all three at once.
   */
  async images(study: StudyRow): Promise<StudyImages> {
    const hit = this.imageCache.get(study.id);
    if (hit) {
      this.imageCache.delete(study.id);
      this.imageCache.set(study.id, hit);
      return hit;
    }
    const p = this.renders.run(async () => {
      const bytes = await this.o.store.get(study.sha256);
      const res = await this.analyze(bytes, true);
      if (!res.artifacts) throw new CxrError('E_BACKEND', 'the engine returned no images');
      return renderStudyImages(res.artifacts);
    });
    this.imageCache.set(study.id, p);
    p.catch(() => this.imageCache.delete(study.id));
    const max = this.o.imageCacheSize ?? 8;
    while (this.imageCache.size > max) this.imageCache.delete(this.imageCache.keys().next().value as string);
    return p;
  }

  /** Runs the current engine, counting uses so that a swapped-out engine closes only when idle. */
  private async analyze(bytes: Uint8Array, artifacts: boolean) {
    const engine = this.engine;
    const use = this.inUse.get(engine) ?? { count: 0, retired: false };
    this.inUse.set(engine, use);
    use.count++;
    try {
      return await engine.analyze(bytes, { artifacts });
    } finally {
      use.count--;
      if (use.count === 0 && use.retired) this.retire(engine);
    }
  }

  private retire(engine: TriageEngine): void {
    this.inUse.delete(engine);
    engine.close().catch((e) => this.o.log.warn('closing a retired engine failed', { error: String(e) }));
  }

  /** Swaps in an engine running other model versions: new work uses it at once, the old one closes when idle. */
  async swapEngine(next: TriageEngine): Promise<void> {
    const old = this.engine;
    if (old === next) return;
    this.engine = next;
    this.imageCache.clear();
    await this.registerEngineModels();
    const use = this.inUse.get(old);
    if (!use || use.count === 0) this.retire(old);
    else use.retired = true;
  }

  /** Closes the engine in use now (after close(); an engine swapped in by activation belongs to the service). */
  async closeEngine(): Promise<void> {
    await this.engine.close();
  }

  /** Stops taking work, lets running jobs finish; queued studies stay queued for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.stop();
  }
}

/** Runs at most `concurrency` jobs at once with at most `waiting` more queued; beyond that, busy. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(
    private readonly concurrency: number,
    private readonly waiting: number,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.queue.length >= this.waiting) throw new CxrError('E_QUEUE_FULL', 'too many images are being rendered; retry shortly');
      await new Promise<void>((r) => this.queue.push(r));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}

function requireUids(meta: DicomMetadata): { study: string; series: string; sop: string } {
  const missing = [
    !meta.sopInstanceUid && 'SOPInstanceUID',
    !meta.studyInstanceUid && 'StudyInstanceUID',
    !meta.seriesInstanceUid && 'SeriesInstanceUID',
  ].filter(Boolean);
  if (missing.length > 0) throw new CxrError('E_MALFORMED', `the instance has no ${missing.join(', ')}`);
  return { study: meta.studyInstanceUid!, series: meta.seriesInstanceUid!, sop: meta.sopInstanceUid! };
}

/** The same SOP Instance UID with different bytes is a different object claiming an existing identity. */
function sameContentOrConflict(existing: StudyRow, sha256: string): StudyRow {
  if (existing.sha256 !== sha256) {
    throw new CxrError('E_CONFLICT', `SOP Instance ${existing.sopInstanceUid} was already received with different content`, { studyId: existing.id });
  }
  return existing;
}
