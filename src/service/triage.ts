/**
 * The service core, below HTTP: accept a DICOM instance (validate, store durably, record and
 * enqueue its job in one transaction), score jobs with the engine in this process's workers,
 * settle jobs that ran out of attempts, and render a study's images for review.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { checkDecodable, isValidUid, MAX_UID_LENGTH, readInstance, type DicomInstance, type DicomMetadata } from '../dicom/index.js';
import { CxrError, isCxrError, httpStatusFor } from '../errors.js';
import type { ModelVersionRow, PredictionRow, ReviewRow, StudyRow } from '../db/entities.js';
import { registerModel, markActive, markActiveIfNone, type ModelToRegister } from '../db/models.js';
import { isConnectionLost } from '../db/data-source.js';
import { lockObject } from '../db/objects.js';
import {
  countQueuedStudies,
  findPrediction,
  findStudy,
  findStudyBySop,
  insertStudyOnce,
  listReviews,
  recordFailure,
  recordNotScored,
  recordPrediction,
  settledStudies,
  type NewPrediction,
} from '../db/studies.js';
import { recordedVersion, type ModelRef, type TriageEngine, type TriageReport } from '../inference/types.js';
import type { FetchedJob, JobQueue } from './jobs.js';
import { classifyView, viewCheckFailure } from '../inference/view.js';
import { renderStoredImages } from './stored-images.js';
import type { Logger } from './log.js';
import { collectGarbage, discardIfUnreferenced, readHead, sha256Hex, type ObjectStore } from './object-store.js';
import { pseudonymisePatientId } from './pseudonym.js';
import { enqueueResults, type ResultsSettings } from './results.js';
import { resultSummary, type ResultSummary } from '../db/results.js';
import { sentBy } from './study-access.js';
import type { StudyImages } from './study-images.js';
import { RecentFilms } from './recent-films.js';
import { WorkerPool } from './workers.js';

/** How often waiters look for studies that another process finished. */
const WAITER_POLL_MS = 250;

export type StudyOutcome = 'accepted' | 'duplicate' | 'rejected' | 'scored' | 'failed' | 'retried' | 'dead_letter';

export interface ServiceHooks {
  study?: (outcome: StudyOutcome) => void;
  inferenceSeconds?: (s: number) => void;
  /** scoring jobs running in this process */
  running?: (n: number) => void;
  /** a result object send attempt ended (results outbox) */
  resultSend?: (outcome: 'delivered' | 'retry' | 'failed') => void;
  /** a shadow candidate scored a sampled study, or failed to */
  shadow?: (outcome: 'scored' | 'failed') => void;
}

/** Describes how to find a model version's manifest, for the model_versions table. */
export type ManifestReader = (ref: ModelRef) => Promise<{ kind: 'segmenter' | 'classifier'; manifest: Record<string, unknown> }>;

export interface TriageServiceOptions {
  ds: DataSource;
  store: ObjectStore;
  jobs: JobQueue;
  engine: TriageEngine;
  hmacKey: Buffer;
  /** accepted studies waiting for a result, across all processes, beyond which new ones are refused */
  queueCapacity: number;
  /** scoring workers in this process (0: an API-only process) */
  workers: number;
  /**
   * loops per worker taking jobs (default 1). With the engine in threads, a second loop gets the
   * next study ready (its job, row and file) while the first is scored, and records the first's
   * result while the second is: the engine does not wait on the database between studies.
   */
  loopsPerWorker?: number;
  log: Logger;
  hooks?: ServiceHooks;
  readManifest?: ManifestReader;
  /** largest decoded image accepted, in pixels */
  maxPixels?: number;
  /** studies whose rendered images are kept in memory */
  imageCacheSize?: number;
  /** bytes of accepted films kept in memory for this process's workers (default 128 MiB; recent-films.ts) */
  recentFilmBytes?: number;
  /** idle workers look for jobs this often (ms) */
  pollMs?: number;
  /** destinations and retry policy of the AI result objects; absent: none are made */
  results?: ResultsSettings;
  /** a prediction with result objects was recorded (the outbox looks at once) */
  onResultsQueued?: () => void;
  /** runs before each study is scored (a worker follows the registry's active versions); a failure is logged, the study scored */
  beforeScore?: () => Promise<void>;
  /**
   * runs after a study's result is recorded and its waiters told (shadow scoring), inside the
   * job; must not throw
   */
  afterScore?: (study: StudyRow, film: () => Promise<Uint8Array>, models: TriageReport['models']) => Promise<void>;
}

export interface AcceptResult {
  study: StudyRow;
  /** false when this SOP Instance UID was already stored: the existing study is returned */
  created: boolean;
}

/** Writes the request's audit row in the transaction that records the study: both or neither. */
export type AcceptAudit = (m: EntityManager, r: AcceptResult) => Promise<void>;

export interface StudyView {
  study: StudyRow;
  prediction: PredictionRow | null;
  reviews: ReviewRow[];
  /** its AI result objects and where their deliveries stand */
  results: ResultSummary;
}

/** Arbitrary constant naming the queue-capacity lock (advisory locks are per database). */
const QUEUE_LOCK_KEY = 0x6378_7271_7565_7565n; // "cxrqueue"

/** What registering the engine's versions does to the registry's active ones (see registerEngineModels). */
export type EngineMark = 'activate' | 'if-none' | 'record';

export class TriageService {
  readonly workers: WorkerPool;
  private engine: TriageEngine;
  private readonly inUse = new Map<TriageEngine, { count: number; retired: boolean }>();
  private modelIds = new Map<string, number>();
  private readonly imageCache = new Map<string, Promise<StudyImages>>();
  private readonly recentFilms: RecentFilms;
  /** full-size renders hold several image-sized buffers each: a few at a time, a few more waiting */
  private readonly renders = new Limiter(2, 8);
  /**
   * Ingestion parses and decodes in memory (a deflated file is inflated up to the largest
   * accepted image): four at a time bound that memory whatever many clients send at once.
   * Two left the engines waiting on fsyncs and commits (bench/throughput.ts: 5.2-5.9 studies/s
   * against 6.4 with four, and no more with eight).
   */
  private readonly ingests = new Limiter(4, 64);
  /** requests waiting (?wait=true) for a study this process may finish */
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(private readonly o: TriageServiceOptions) {
    this.engine = o.engine;
    this.recentFilms = new RecentFilms(o.workers > 0 ? (o.recentFilmBytes ?? 128 * 1024 * 1024) : 0);
    this.workers = new WorkerPool({
      jobs: o.jobs,
      concurrency: o.workers * (o.loopsPerWorker ?? 1),
      score: (job) => this.scoreJob(job),
      settleDead: (job) => this.settleDead(job),
      log: o.log,
      pollMs: o.pollMs,
      onChange: (n) => o.hooks?.running?.(n),
      canScore: () => this.engineAvailable,
    });
  }

  /** Whether the engine in use can score now (an engine pool with no thread left cannot until one is replaced). */
  get engineAvailable(): boolean {
    return (this.engine.threadsReady ?? 1) > 0;
  }

  /** Starts this process's scoring workers (none when it was built with workers: 0). */
  startWorkers(): void {
    this.workers.start();
  }

  get models(): { segmenter: ModelRef; classifier: ModelRef } {
    return this.engine.models;
  }

  /**
   * Records the engine's model versions in the registry. `mark` says what becomes of the
   * registry's active versions: 'activate' makes these the active ones (an admin's activation),
   * 'if-none' only where the registry names no active version of the kind yet (a process's
   * start: the registry, not a models folder that may be stale, says what the deployment
   * serves), 'record' leaves them alone (following the registry: marking could undo a promotion
   * that landed while the engine was loading).
   */
  async registerEngineModels(mark: EngineMark = 'activate', engine: TriageEngine = this.engine): Promise<ModelVersionRow[]> {
    // both registered (and checked against what was registered before) before either is marked
    const rows: ModelVersionRow[] = [];
    for (const kind of ['segmenter', 'classifier'] as const) rows.push(await this.registerRef(engine.models[kind], kind));
    for (const row of rows) {
      if (mark === 'activate') await markActive(this.o.ds, row.id);
      else if (mark === 'if-none') await markActiveIfNone(this.o.ds, row.id);
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
   * before anything is written, so a refused instance leaves no file and no row behind; the
   * study row, its job (and with `audit`, the request's audit row) commit together.
   */
  /**
   * `onlyStudy`: the instance must belong to this StudyInstanceUID (STOW-RS to
   * /dicomweb/studies/{uid}), checked on the same single parse; refused with E_BAD_REQUEST.
   */
  async accept(bytes: Uint8Array, submittedBy: string, audit?: AcceptAudit, onlyStudy?: string): Promise<AcceptResult> {
    let res: AcceptResult;
    try {
      res = await this.acceptChecked(bytes, submittedBy, audit, onlyStudy);
    } catch (e) {
      this.afterAccept('count the refusal', () => this.o.hooks?.study?.('rejected'));
      throw e;
    }
    this.afterAccept('count the study', () => this.o.hooks?.study?.(res.created ? 'accepted' : 'duplicate'));
    return res;
  }

  /**
   * Work that follows an accept's outcome (a metric, handing the film to this process's
   * workers): once the study and its audit row have committed, a failure here is logged, never
   * the accept's answer, or a stored, audited instance would be reported to its sender as
   * failed.
   */
  private afterAccept(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.o.log.error(`after an accept, could not ${what}`, { error: String((e as Error)?.stack ?? e) });
    }
  }

  private async acceptChecked(bytes: Uint8Array, submittedBy: string, audit?: AcceptAudit, onlyStudy?: string): Promise<AcceptResult> {
    if (this.closed) throw new CxrError('E_QUEUE_FULL', 'the service is shutting down; retry shortly');
    return this.ingests.run(async () => {
      // One parse serves the UIDs, the duplicate check, the row and the pixel check.
      const instance = await readInstance(bytes, { maxPixels: this.o.maxPixels });
      const meta = instance.meta;
      const uids = requireUids(meta);
      try {
        if (onlyStudy !== undefined && uids.study !== onlyStudy)
          throw new CxrError('E_BAD_REQUEST', `the instance belongs to study ${uids.study}, not the study ${onlyStudy} of the request URL`);
        return await this.store(bytes, instance, uids, submittedBy, audit);
      } catch (e) {
        // the UIDs travel with the refusal, so a STOW-RS answer names the instance without parsing it again
        if (isCxrError(e)) throw new CxrError(e.code, e.message, { ...e.details, sopClassUid: meta.sopClassUid, sopInstanceUid: uids.sop });
        throw e;
      }
    });
  }

  private async store(bytes: Uint8Array, instance: DicomInstance, uids: Uids, submittedBy: string, audit?: AcceptAudit): Promise<AcceptResult> {
    const meta = instance.meta;
    const sha256 = sha256Hex(bytes);
    const existing = await whileConnectionsRecover(() => findStudyBySop(this.o.ds, uids.sop));
    if (existing) return { study: sameInstance(existing, sha256, submittedBy), created: false };
    // Counted before the pixels are checked, so an overloaded service refuses cheaply.
    await whileConnectionsRecover(() => this.refuseWhenFull(this.o.ds.manager));
    // Checking the pixels here means an undecodable file is refused now with its code (422),
    // rather than accepted and failed later where the sender never hears of it.
    await checkDecodable(instance, { maxPixels: this.o.maxPixels });
    // A lost connection rolled the transaction back (or committed it unseen: then the retry
    // finds the study and answers as for a re-post), so trying again is safe.
    return whileConnectionsRecover(() => this.record(bytes, meta, uids, sha256, submittedBy, audit));
  }

  private async record(bytes: Uint8Array, meta: DicomMetadata, uids: Uids, sha256: string, submittedBy: string, audit?: AcceptAudit): Promise<AcceptResult> {
    let wroteFile = false;
    let res: AcceptResult;
    try {
      res = await this.o.ds.transaction(async (m) => {
        await lockObject(m, sha256);
        const put = await this.o.store.put(bytes, m, sha256);
        wroteFile = put.created && !this.o.store.transactional;
        const r = await insertStudyOnce(m, {
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
        });
        const result = { study: r.created ? r.study : sameInstance(r.study, sha256, submittedBy), created: r.created };
        if (r.created) {
          // The count before the pixel check only refuses cheaply: several ingests (of this and
          // other processes) passed it at once. Counted again under one lock across processes,
          // held to commit, with this study among them: the queue never holds more than its size.
          await m.query('SELECT pg_advisory_xact_lock($1)', [QUEUE_LOCK_KEY.toString()]);
          await this.refuseWhenFull(m, 1);
          await this.o.jobs.enqueue(m, { studyId: r.study.id });
        }
        await audit?.(m, result);
        return result;
      });
    } catch (e) {
      // The file is stored but the study is not (the transaction failed or the connection
      // died): remove it now if no study names it; if the database cannot say, the garbage
      // collector will.
      if (wroteFile) await this.discardFile(sha256);
      throw e;
    }
    if (res.created) {
      this.afterAccept("keep the film for this process's workers", () => this.recentFilms.keep(sha256, bytes));
      this.afterAccept('wake the workers', () => this.o.jobs.notify());
    }
    return res;
  }

  /**
   * A few tries: after connections were cut, the pool can hand out more dead ones before it
   * has noticed them all. Past that the garbage collector removes the file.
   */
  private async discardFile(sha256: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await discardIfUnreferenced(this.o.ds, this.o.store, sha256);
        return;
      } catch (d) {
        if (attempt >= 4) {
          this.o.log.warn('could not remove the file of a failed accept; the garbage collector will', { sha256, error: String(d) });
          return;
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  /**
   * For an upload about to be read: refuses it (E_QUEUE_FULL) when the queue is already full,
   * before its body is buffered and parsed. A burst against a full queue was otherwise read
   * whole, up to CXR_MAX_BODY_MB per connection, only to be refused after.
   */
  async refuseIfQueueFull(): Promise<void> {
    if (this.closed) throw new CxrError('E_QUEUE_FULL', 'the service is shutting down; retry shortly');
    await whileConnectionsRecover(() => this.refuseWhenFull(this.o.ds.manager));
  }

  /** `counted`: studies of the caller's own transaction already among the queued rows. */
  private async refuseWhenFull(m: EntityManager, counted = 0): Promise<void> {
    const waiting = (await countQueuedStudies(m)) - counted;
    if (waiting >= this.o.queueCapacity) {
      throw new CxrError('E_QUEUE_FULL', `the inference queue is full (${waiting} studies waiting); retry shortly`);
    }
  }

  /** Enqueues every accepted study that has no live job (e.g. accepted before an upgrade); returns how many. */
  async recover(): Promise<number> {
    const ids = await this.o.jobs.studiesWithoutJob();
    for (const id of ids) await this.o.jobs.enqueueNow({ studyId: id });
    if (ids.length > 0) this.o.log.info('queued jobs for accepted but unscored studies', { count: ids.length });
    return ids.length;
  }

  /** Removes stored objects no study names that are older than graceMs; returns how many. */
  collectGarbage(graceMs: number): Promise<number> {
    return collectGarbage(this.o.ds, this.o.store, graceMs);
  }

  /**
   * Resolves when the study is no longer queued, or after timeoutMs. A study scored in this
   * process wakes its waiters at once; one scored by another process is seen by one query that
   * looks at every waiting study of this process a few times a second (a query per waiter
   * would be most of the database's work with many clients waiting). `queued`: the caller
   * knows the study is queued (it was just accepted), so there is no first look at it.
   */
  async waitForResult(id: string, timeoutMs: number, queued = false): Promise<void> {
    const end = Date.now() + timeoutMs;
    let wake!: () => void;
    const woken = new Promise<void>((r) => (wake = r));
    const set = this.waiters.get(id) ?? new Set();
    set.add(wake);
    this.waiters.set(id, set);
    try {
      if (!queued) {
        const study = await findStudy(this.o.ds, id).catch(() => null);
        if (study && study.status !== 'queued') return;
      }
      this.watchWaiters();
      const left = end - Date.now();
      let timer: NodeJS.Timeout | undefined;
      // releaseWaiters wakes every registered waiter; a promise that lived as long as the process
      // instead kept a handler of every wait that ever raced against it (about 600 bytes each)
      if (!this.released && left > 0) await Promise.race([woken, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
      if (this.released) await Promise.allSettled([...this.recording]);
    } finally {
      set.delete(wake);
      if (set.size === 0) this.waiters.delete(id);
    }
  }

  private watching = false;

  /** Polls for studies that other processes finished while anyone here waits for them. */
  private watchWaiters(): void {
    if (this.watching) return;
    this.watching = true;
    void (async () => {
      try {
        while (this.waiters.size > 0 && !this.released) {
          await new Promise((r) => setTimeout(r, WAITER_POLL_MS));
          const done = await settledStudies(this.o.ds, [...this.waiters.keys()]).catch(() => []);
          for (const id of done) this.finished(id);
        }
      } finally {
        this.watching = false;
      }
    })();
  }

  private released = false;
  private readonly recording = new Set<Promise<unknown>>();

  /** Answers every waitForResult now, whatever its study's state (a shutdown's drain time is over). */
  releaseWaiters(): void {
    this.released = true;
    for (const set of this.waiters.values()) for (const wake of set) wake();
  }

  /** Hands the jobs this process is scoring back to the queue (the process exits before they finish). */
  releaseRunningJobs(): Promise<void> {
    return this.workers.releaseRunning();
  }

  private finished(id: string): void {
    for (const w of this.waiters.get(id) ?? []) w();
  }

  /**
   * One attempt at a job. A study already finished (a retry after the attempt that finished
   * it lost its connection) is left alone; a file that cannot be read or analysed fails the
   * study at once with its code; anything else throws, so the job is retried.
   */
  private async scoreJob(job: FetchedJob): Promise<void> {
    const id = job.data.studyId;
    const study = await findStudy(this.o.ds, id);
    if (study?.status !== 'queued') return;
    if (job.retryCount > 0) this.o.hooks?.study?.('retried');
    // Only frontal chest images are scored; the others stay in the study, listed with why.
    const view = classifyView(study.viewPosition, study.bodyPart);
    if (view.kind === 'other') {
      await recordNotScored(this.o.ds, id, view.reason);
      this.finished(id);
      return;
    }
    if (this.o.beforeScore) {
      await this.o.beforeScore().catch((e) => this.o.log.warn('following the active model versions failed; scoring with this engine', { error: String(e) }));
    }
    let report: TriageReport;
    const t0 = performance.now();
    try {
      const bytes = this.recentFilms.take(study.sha256) ?? (await this.o.store.get(study.sha256));
      // handed over: an engine thread takes the film without a copy (a step after scoring reads it again)
      report = (await this.analyze(bytes, false, true)).report;
    } catch (e) {
      if (isCxrError(e) && httpStatusFor(e.code) < 500) {
        await this.fail(id, e.code, e.message);
        return;
      }
      throw e;
    }
    this.o.hooks?.inferenceSeconds?.((performance.now() - t0) / 1000);
    // Its waiters were told "still queued" (shutdown): the study stays so, and the job is retried elsewhere.
    const prediction = await this.predictionFrom(report);
    if (this.released) throw new CxrError('E_QUEUE_FULL', 'the service stopped before this study was recorded');
    // checked and registered in one turn of the event loop: a release either comes first (no
    // record) or waits for this record, so a waiter's answer always matches the database
    const excluded = view.kind === 'unknown' ? viewCheckFailure(report) : null;
    // AI result objects (SR, Secondary Capture) and their deliveries go with a result that counts
    const results = this.o.results;
    const recording = recordPrediction(
      this.o.ds,
      id,
      prediction,
      excluded,
      results && !excluded ? (m, pid) => enqueueResults(m, results, study, pid) : undefined,
    );
    this.recording.add(recording);
    try {
      await recording;
    } finally {
      this.recording.delete(recording);
    }
    this.o.hooks?.study?.('scored');
    this.o.onResultsQueued?.();
    this.finished(id);
    // the study's own result is recorded and answered; a candidate's scoring only lengthens this job
    if (this.o.afterScore) {
      await this.o
        .afterScore(study, () => this.o.store.get(study.sha256), report.models)
        .catch((e) => this.o.log.warn('a step after scoring failed; the result stands', { studyId: id, error: String(e) }));
    }
  }

  /** The job ran out of attempts (or its worker died holding it every time): the study fails visibly, with the reason. */
  private async settleDead(job: FetchedJob): Promise<void> {
    const output = (job.output ?? {}) as { code?: string; message?: string; value?: { message?: string } };
    const code = typeof output.code === 'string' ? output.code : 'E_INTERNAL';
    const why = output.message ?? output.value?.message ?? 'no reason recorded';
    const changed = await recordFailure(
      this.o.ds,
      job.data.studyId,
      'E_JOB_DEAD',
      `scoring gave up after ${job.retryLimit + 1} attempts (last: ${code}: ${why})`,
    );
    if (changed) {
      this.o.log.error('scoring job dead-lettered', { studyId: job.data.studyId, code, reason: why });
      this.o.hooks?.study?.('dead_letter');
      this.finished(job.data.studyId);
    }
  }

  private async fail(id: string, code: string, message: string): Promise<void> {
    await recordFailure(this.o.ds, id, code, message);
    this.o.hooks?.study?.('failed');
    this.finished(id);
  }

  /** The model_versions id of a served model, registering it the first time. */
  async modelId(ref: ModelRef, kind: 'segmenter' | 'classifier'): Promise<number> {
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
  async original(study: Pick<StudyRow, 'sha256'>): Promise<Buffer> {
    return this.o.store.get(study.sha256);
  }

  /**
   * The first bytes of a stored original (at least `minBytes`, whole pieces), for what reads
   * only its header (DICOMweb metadata and query attributes) without the pixel data.
   */
  async originalHead(study: Pick<StudyRow, 'sha256'>, minBytes: number): Promise<Buffer> {
    return readHead(this.o.store, study.sha256, minBytes);
  }

  /** The pseudonym a PatientID is stored as here (QIDO-RS matches PatientID through it). */
  patientPseudonym(patientId: string): string | null {
    return pseudonymisePatientId(this.o.hmacKey, patientId);
  }

  async view(id: string): Promise<StudyView | null> {
    const study = await findStudy(this.o.ds, id);
    if (!study) return null;
    const [prediction, reviews, results] = await Promise.all([findPrediction(this.o.ds, id), listReviews(this.o.ds, id), resultSummary(this.o.ds, id)]);
    return { study, prediction, reviews, results };
  }

  /**
   * The windowed image, mask overlay and heatmap overlay of a scored study, drawn from its original
   * bytes and what was stored with its prediction (window, mask, CAM, lung box): no model runs,
   * so the view is the one behind the decision even after another model was activated. The last
   * few studies' renders are kept, since a viewer asks for all three at once.
   */
  async images(study: StudyRow, prediction: PredictionRow): Promise<StudyImages> {
    const key = `${study.id}:${prediction.id}`;
    const hit = this.imageCache.get(key);
    if (hit) {
      this.imageCache.delete(key);
      this.imageCache.set(key, hit);
      return hit;
    }
    const p = this.renders.run(async () => renderStoredImages(await this.o.store.get(study.sha256), prediction.report as unknown as TriageReport));
    this.imageCache.set(key, p);
    p.catch(() => this.imageCache.delete(key));
    const max = this.o.imageCacheSize ?? 8;
    while (this.imageCache.size > max) this.imageCache.delete(this.imageCache.keys().next().value as string);
    return p;
  }

  /** Runs the current engine, counting uses so that a swapped-out engine closes only when idle. */
  private async analyze(bytes: Uint8Array, artifacts: boolean, handOver = false) {
    const engine = this.engine;
    const use = this.inUse.get(engine) ?? { count: 0, retired: false };
    this.inUse.set(engine, use);
    use.count++;
    try {
      return await engine.analyze(bytes, { artifacts, handOver });
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
  async swapEngine(next: TriageEngine, mark: EngineMark = 'activate'): Promise<void> {
    const old = this.engine;
    if (old === next) return;
    // Registered first: a version whose decision rule on disk differs from its registration is
    // refused there, and must never score a study (the prediction would be recorded under the
    // registered rule). The refused engine is closed; the one in use stays.
    try {
      await this.registerEngineModels(mark, next);
    } catch (e) {
      await next.close().catch((c) => this.o.log.warn('closing a refused engine failed', { error: String(c) }));
      throw e;
    }
    this.engine = next;
    this.imageCache.clear();
    const use = this.inUse.get(old);
    if (!use || use.count === 0) this.retire(old);
    else use.retired = true;
  }

  /** Closes the engine in use now (after close(); an engine swapped in by activation belongs to the service). */
  async closeEngine(): Promise<void> {
    await this.engine.close();
  }

  /** Stops taking work and lets running jobs finish; waiting jobs stay in PostgreSQL for any worker. */
  async close(): Promise<void> {
    this.closed = true;
    await this.workers.stop();
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

/** Runs fn again, twice at most, when it failed because a database connection was lost. */
async function whileConnectionsRecover<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= 3 || !isConnectionLost(e)) throw e;
      await new Promise((r) => setTimeout(r, 25 * attempt));
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
