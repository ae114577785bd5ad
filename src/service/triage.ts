/**
 * The service core, below HTTP: accept a DICOM instance (validate, store durably, record,
 * queue), score queued studies with the engine, recover unfinished ones after a restart,
 * and render a study's images for review.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { checkDecodable, isValidUid, MAX_UID_LENGTH, readInstance, type DicomInstance, type DicomMetadata } from '../dicom/index.js';
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
  recordNotScored,
  recordPrediction,
  type NewPrediction,
} from '../db/studies.js';
import { recordedVersion, type ModelRef, type TriageEngine, type TriageReport } from '../inference/types.js';
import { classifyView, viewCheckFailure } from '../inference/view.js';
import type { DicomStore } from './dicom-store.js';
import { sha256Hex } from './dicom-store.js';
import type { Logger } from './log.js';
import { pseudonymisePatientId } from './pseudonym.js';
import { InferenceQueue } from './queue.js';
import { sentBy } from './study-access.js';
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
  /**
   * Ingestion parses and decodes in memory (a deflated file is inflated up to the largest
   * accepted image): two at a time bound that memory whatever many clients send at once.
   */
  private readonly ingests = new Limiter(2, 64);
  private closed = false;
  private releaseAll!: () => void;
  private readonly waitersReleased = new Promise<void>((r) => (this.releaseAll = r));

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
    // the int8 file of a version is recorded as its own row (other bytes, other figures)
    const m: ModelToRegister = { kind, name: ref.name, version: recordedVersion(ref), sha256: ref.sha256, manifest: info.manifest };
    const row = await registerModel(this.o.ds, m);
    this.modelIds.set(`${ref.name}@${recordedVersion(ref)}`, row.id);
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
    return this.ingests.run(async () => {
      // One parse serves the UIDs, the duplicate check, the row and the pixel check.
      const instance = await readInstance(bytes, { maxPixels: this.o.maxPixels });
      const meta = instance.meta;
      const uids = requireUids(meta);
      try {
        return await this.store(bytes, instance, uids, submittedBy);
      } catch (e) {
        // the UIDs travel with the refusal, so a STOW-RS answer names the instance without parsing it again
        if (isCxrError(e)) throw new CxrError(e.code, e.message, { ...e.details, sopClassUid: meta.sopClassUid, sopInstanceUid: uids.sop });
        throw e;
      }
    });
  }

  private async store(bytes: Uint8Array, instance: DicomInstance, uids: Uids, submittedBy: string): Promise<AcceptResult> {
    const meta = instance.meta;
    const sha256 = sha256Hex(bytes);
    const existing = await findStudyBySop(this.o.ds, uids.sop);
    if (existing) return { study: sameInstance(existing, sha256, submittedBy), created: false };
    // The slot is taken before the pixels are decoded, so an overloaded service refuses cheaply.
    const slot = this.queue.reserve();
    if (!slot) throw new CxrError('E_QUEUE_FULL', `the inference queue is full (${this.o.queueCapacity} waiting); retry shortly`);
    try {
      // Checking the pixels here means an undecodable file is refused now with its code (422),
      // rather than accepted and failed later where the sender never hears of it.
      await checkDecodable(instance, { maxPixels: this.o.maxPixels });
      await this.o.store.put(bytes);
      const { study, created } = await this.o.ds.transaction((m) =>
        insertStudyOnce(m, {
          id: randomUUID(),
          studyInstanceUid: uids.study,
          seriesInstanceUid: uids.series,
          sopInstanceUid: uids.sop,
          sopClassUid: meta.sopClassUid,
          accessionNumber: meta.accessionNumber,
          studyDate: meta.studyDate,
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
        return { study: sameInstance(study, sha256, submittedBy), created: false };
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

  /** Resolves when the study is no longer waiting or running, after timeoutMs, or when the service releases its waiters (shutdown). */
  async waitForResult(id: string, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.queue.whenDone(id),
      this.waitersReleased,
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Answers every waitForResult now, whatever its study's state (a shutdown's drain time is over). */
  releaseWaiters(): void {
    this.releaseAll();
  }

  private async score(id: string): Promise<void> {
    const study = await findStudy(this.o.ds, id);
    if (!study || study.status !== 'queued') return;
    // Only frontal chest images are scored; the others stay in the study, listed with why.
    const view = classifyView(study.viewPosition, study.bodyPart);
    if (view.kind === 'other') {
      await recordNotScored(this.o.ds, id, view.reason);
      return;
    }
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
    const excluded = view.kind === 'unknown' ? viewCheckFailure(report) : null;
    await recordPrediction(this.o.ds, id, await this.predictionFrom(report), excluded);
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
    const known = this.modelIds.get(`${ref.name}@${recordedVersion(ref)}`);
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

  /** The stored original of an instance, byte for byte as it was received. */
  async original(study: StudyRow): Promise<Buffer> {
    return this.o.store.get(study.sha256);
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

interface Uids {
  study: string;
  series: string;
  sop: string;
}

/** The three identifying UIDs, present and well-formed (PS3.5 9.1), or E_MALFORMED naming the bad ones. */
function requireUids(meta: DicomMetadata): Uids {
  const named: [string, string | null][] = [
    ['SOPInstanceUID', meta.sopInstanceUid],
    ['StudyInstanceUID', meta.studyInstanceUid],
    ['SeriesInstanceUID', meta.seriesInstanceUid],
  ];
  const missing = named.filter(([, v]) => !v).map(([n]) => n);
  if (missing.length > 0) throw new CxrError('E_MALFORMED', `the instance has no ${missing.join(', ')}`);
  const bad = named.filter(([, v]) => !isValidUid(v!)).map(([n]) => n);
  if (bad.length > 0)
    throw new CxrError(
      'E_MALFORMED',
      `${bad.join(', ')} ${bad.length > 1 ? 'are not UIDs' : 'is not a UID'} (digits and dots, at most ${MAX_UID_LENGTH} characters)`,
    );
  if (meta.sopClassUid !== null && !isValidUid(meta.sopClassUid)) throw new CxrError('E_MALFORMED', 'SOPClassUID is not a UID');
  return { study: meta.studyInstanceUid!, series: meta.seriesInstanceUid!, sop: meta.sopInstanceUid! };
}

/**
 * A re-post of a known SOP Instance UID. From its own sender with the same bytes it is the
 * existing study (idempotent retry). From another sender it is refused without a word about
 * the existing study (a sender sees only its own studies). With other bytes, it is a
 * different object claiming an existing identity.
 */
function sameInstance(existing: StudyRow, sha256: string, submittedBy: string): StudyRow {
  if (!sentBy(existing, submittedBy)) {
    throw new CxrError('E_CONFLICT', 'this SOP Instance UID was already received from another sender', { studyId: existing.id });
  }
  if (existing.sha256 !== sha256) {
    throw new CxrError('E_CONFLICT', `SOP Instance ${existing.sopInstanceUid} was already received with different content`, { studyId: existing.id });
  }
  return existing;
}
