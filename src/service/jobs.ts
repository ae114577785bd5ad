/**
 * Scoring jobs in PostgreSQL, through pg-boss. A job is sent in the transaction that records
 * its study (so an accepted study always has one, and a rolled-back one never does), fetched
 * with SKIP LOCKED by any worker process, retried with exponential back-off when scoring fails
 * for a reason that may pass (a lost database connection, a crashed engine), and moved to a
 * dead-letter queue when the retries run out or a worker died holding it past its time limit.
 */
import PgBoss from 'pg-boss';
import type { DataSource, EntityManager } from 'typeorm';
import { JOB_SCHEMA } from '../../migrations/1796160000000-JobsAndObjectStore.js';
import type { Logger } from './log.js';

export const SCORE_QUEUE = 'score-study';
export const DEAD_LETTER_QUEUE = 'score-study-dead';

/**
 * What a job names. The job id is the study id, so sending twice for one study is a no-op;
 * a per-instance job later adds its instance and takes the instance's id.
 */
export interface ScoreJob {
  studyId: string;
}

export interface JobSettings {
  /** retries after the first attempt */
  retryLimit: number;
  /** first retry delay; doubles (with jitter) each retry */
  retryDelaySeconds: number;
  /** a job active longer than this is taken to have died with its worker, and retried */
  expireInSeconds: number;
  /** how often some process runs pg-boss maintenance (expiry, archiving) */
  maintenanceIntervalSeconds: number;
}

export const DEFAULT_JOB_SETTINGS: JobSettings = { retryLimit: 5, retryDelaySeconds: 2, expireInSeconds: 300, maintenanceIntervalSeconds: 30 };

export type FetchedJob = PgBoss.JobWithMetadata<ScoreJob>;

export interface JobCounts {
  /** waiting to run (created, or waiting out a retry delay) */
  waiting: number;
  retrying: number;
  active: number;
  /** jobs that ran out of retries and are not yet settled, plus those settled (studies marked failed) */
  deadLetter: number;
  /** age of the oldest waiting job, seconds (0 when none) */
  oldestWaitingSeconds: number;
}

interface Executor {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** pg-boss's statements on the connection of a TypeORM transaction, so they commit with it. */
function executorFor(m: EntityManager): Executor {
  const qr = m.queryRunner;
  if (!qr) throw new Error('enqueue needs a transaction (an EntityManager from ds.transaction)');
  return { executeSql: async (text, values) => ({ rows: (await qr.query(text, values, true)).records as unknown[] }) };
}

/** pg-boss's own statements on the service's connection pool: no second pool to size or configure. */
function poolExecutor(ds: DataSource): Executor {
  return {
    executeSql: async (text, values) => {
      const qr = ds.createQueryRunner();
      try {
        return { rows: (await qr.query(text, values, true)).records as unknown[] };
      } finally {
        await qr.release();
      }
    },
  };
}

export class JobQueue {
  private readonly boss: PgBoss;
  private readonly listeners = new Set<() => void>();
  private started = false;

  constructor(
    private readonly ds: DataSource,
    private readonly settings: JobSettings,
    private readonly log: Logger,
  ) {
    this.boss = new PgBoss({
      db: poolExecutor(ds),
      schema: JOB_SCHEMA,
      // the schema comes from migrations/, never from pg-boss at start
      migrate: false,
      supervise: true,
      schedule: false,
      maintenanceIntervalSeconds: settings.maintenanceIntervalSeconds,
    });
    // pg-boss reports maintenance failures (e.g. the database went away) as events: log, never crash.
    this.boss.on('error', (e) => this.log.warn('job queue maintenance failed', { error: String((e as Error)?.message ?? e) }));
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.boss.start();
    this.started = true;
    const retry = { retryLimit: this.settings.retryLimit, retryDelay: this.settings.retryDelaySeconds, retryBackoff: true };
    // Settled dead letters are kept two weeks for the operators; the dead-letter queue itself does not retry forever.
    await this.ensureQueue(DEAD_LETTER_QUEUE, { retryLimit: 10, retryDelay: 5, retryBackoff: true, expireInSeconds: 60, retentionMinutes: 14 * 24 * 60 });
    await this.ensureQueue(SCORE_QUEUE, { ...retry, expireInSeconds: this.settings.expireInSeconds, deadLetter: DEAD_LETTER_QUEUE });
  }

  private async ensureQueue(name: string, options: Omit<PgBoss.Queue, 'name'>): Promise<void> {
    // create_queue is ON CONFLICT DO NOTHING, but processes starting together can still
    // deadlock on its partition DDL: a deadlock victim simply tries again.
    await retryOnDeadlock(async () => {
      await this.boss.createQueue(name, { name, ...options });
      // applies this process's settings to a queue another process created
      await this.boss.updateQueue(name, { name, ...options });
    });
  }

  /** Sends the study's job in the caller's transaction: it exists exactly when the study does. */
  async enqueue(m: EntityManager, job: ScoreJob): Promise<void> {
    await this.boss.send(SCORE_QUEUE, job, { id: job.studyId, db: executorFor(m) });
  }

  /** Sends a job outside any transaction (recovery of a study without one); a live job of that id makes it a no-op. */
  async enqueueNow(job: ScoreJob): Promise<void> {
    const id = await this.boss.send(SCORE_QUEUE, job, { id: job.studyId });
    // An id already used by a finished job: a fresh id makes a new attempt, unless that job
    // scored the study meanwhile (another process recovering at the same time sent and ran it).
    if (id === null && !(await this.hasLiveJob(job.studyId)) && (await this.stillQueued(job.studyId))) await this.boss.send(SCORE_QUEUE, job);
    this.notify();
  }

  private async stillQueued(studyId: string): Promise<boolean> {
    const rows: unknown[] = await this.ds.query(`SELECT 1 FROM studies WHERE id = $1 AND status = 'queued'`, [studyId]);
    return rows.length > 0;
  }

  private async hasLiveJob(studyId: string): Promise<boolean> {
    const rows: unknown[] = await this.ds.query(`SELECT 1 FROM ${JOB_SCHEMA}.job WHERE name = $1 AND data->>'studyId' = $2 AND state < 'completed' LIMIT 1`, [
      SCORE_QUEUE,
      studyId,
    ]);
    return rows.length > 0;
  }

  /** Queued studies with no job that could still run (accepted before jobs lived in PostgreSQL, or whose job was lost). */
  async studiesWithoutJob(): Promise<string[]> {
    const rows: { id: string }[] = await this.ds.query(
      `SELECT s.id FROM studies s
        WHERE s.status = 'queued'
          AND NOT EXISTS (SELECT 1 FROM ${JOB_SCHEMA}.job j WHERE j.name = $1 AND j.data->>'studyId' = s.id::text AND j.state < 'completed')
        ORDER BY s.seq`,
      [SCORE_QUEUE],
    );
    return rows.map((r) => r.id);
  }

  /** Takes up to n jobs; [] when none is due (or the database cannot be reached: pg-boss swallows that). */
  fetch(n = 1): Promise<FetchedJob[]> {
    return this.boss.fetch<ScoreJob>(SCORE_QUEUE, { batchSize: n, includeMetadata: true });
  }

  fetchDead(n = 1): Promise<FetchedJob[]> {
    return this.boss.fetch<ScoreJob>(DEAD_LETTER_QUEUE, { batchSize: n, includeMetadata: true });
  }

  async complete(job: FetchedJob): Promise<void> {
    await this.boss.complete(job.name, job.id);
  }

  /** Fails the attempt; pg-boss schedules the retry or, when none is left, the dead letter. */
  async fail(job: FetchedJob, reason: { code: string; message: string }): Promise<void> {
    await this.boss.fail(job.name, job.id, reason);
  }

  /** Called (in this process) when a job was sent, so idle local workers look at once. */
  onSent(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(): void {
    for (const l of this.listeners) l();
  }

  /** Job counts for /metrics, read from the table every process shares. */
  async counts(): Promise<JobCounts> {
    const rows: { name: string; state: string; n: number; oldest: number | null }[] = await this.ds.query(
      `SELECT name, state::text AS state, count(*)::int AS n,
              EXTRACT(EPOCH FROM now() - min(created_on) FILTER (WHERE state IN ('created', 'retry')))::float8 AS oldest
         FROM ${JOB_SCHEMA}.job
        WHERE name IN ($1, $2) AND (name = $2 OR state < 'completed')
        GROUP BY name, state`,
      [SCORE_QUEUE, DEAD_LETTER_QUEUE],
    );
    const c: JobCounts = { waiting: 0, retrying: 0, active: 0, deadLetter: 0, oldestWaitingSeconds: 0 };
    for (const r of rows) {
      if (r.name === DEAD_LETTER_QUEUE) {
        c.deadLetter += r.n;
        continue;
      }
      if (r.state === 'created' || r.state === 'retry') {
        c.waiting += r.n;
        c.oldestWaitingSeconds = Math.max(c.oldestWaitingSeconds, r.oldest ?? 0);
      }
      if (r.state === 'retry') c.retrying += r.n;
      if (r.state === 'active') c.active += r.n;
    }
    return c;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    // Our workers are not pg-boss's (see workers.ts): stopping only ends its maintenance timers.
    await this.boss.stop({ graceful: false, wait: true, close: false });
  }
}

/** Runs fn again (a few times, after a short random pause) when PostgreSQL picked it as a deadlock or serialization victim. */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 6): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: string; driverError?: { code?: string } }).driverError?.code ?? (e as { code?: string }).code;
      if (i >= attempts || (code !== '40P01' && code !== '40001')) throw e;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 100 * i));
    }
  }
}
