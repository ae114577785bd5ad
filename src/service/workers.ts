/**
 * Scoring loops over the job queue: each takes one job, scores it, marks it done or failed,
 * and takes the next at once; an idle loop polls (or is woken by a job sent in this process).
 * pg-boss's own `work()` sleeps its polling interval after every job, which would cap a
 * worker at a few jobs a second; this loop only sleeps when there was nothing to do.
 * One more loop settles dead letters: the study is marked failed with the reason.
 */
import { isCxrError } from '../errors.js';
import type { FetchedJob, JobQueue } from './jobs.js';
import type { Logger } from './log.js';
import { Sleepers } from './sleepers.js';

export interface WorkerPoolOptions {
  jobs: JobQueue;
  /** loops scoring at once in this process */
  concurrency: number;
  /** scores the job's study; throws when the attempt should be retried */
  score(job: FetchedJob): Promise<void>;
  /** records that the study's job ran out of attempts */
  settleDead(job: FetchedJob): Promise<void>;
  log: Logger;
  /** idle polling interval */
  pollMs?: number;
  /** false while this process cannot score (every engine thread stopped): no job is taken, so other processes score them */
  canScore?(): boolean;
  onChange?(running: number): void;
}

export class WorkerPool {
  private stopping = false;
  private running = 0;
  private readonly loops: Promise<void>[] = [];
  private readonly current = new Set<FetchedJob>();
  private readonly sleepers = new Sleepers();
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly o: WorkerPoolOptions) {}

  get active(): number {
    return this.running;
  }

  start(): void {
    if (this.o.concurrency <= 0 || this.loops.length > 0) return;
    this.unsubscribe = this.o.jobs.onSent(() => this.wake());
    for (let i = 0; i < this.o.concurrency; i++)
      this.loops.push(
        this.loop(
          () => (this.o.canScore?.() === false ? Promise.resolve([]) : this.o.jobs.fetch(1)),
          (j) => this.runOne(j),
        ),
      );
    this.loops.push(
      this.loop(
        () => this.o.jobs.fetchDead(1),
        (j) => this.settle(j),
        5,
      ),
    );
  }

  /** Stops taking jobs and waits for the ones running to finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    this.wake();
    await Promise.all(this.loops);
  }

  /**
   * Hands the jobs running now back to the queue for another attempt (a process that must exit
   * before they finish): otherwise they would wait out their time limit before anyone retried them.
   */
  async releaseRunning(): Promise<void> {
    const jobs = [...this.current];
    this.current.clear();
    await Promise.all(
      jobs.map((job) =>
        this.o.jobs
          .fail(job, { code: 'E_SHUTDOWN', message: 'the worker stopped before the job finished' })
          .catch((e) => this.o.log.warn('could not hand a running job back; it is retried when it expires', { studyId: job.data.studyId, error: String(e) })),
      ),
    );
  }

  private wake(): void {
    this.sleepers.wakeAll();
  }

  private async loop(fetch: () => Promise<FetchedJob[]>, run: (job: FetchedJob) => Promise<void>, slower = 1): Promise<void> {
    while (!this.stopping) {
      let jobs: FetchedJob[] = [];
      try {
        jobs = await fetch();
      } catch (e) {
        this.o.log.warn('fetching jobs failed', { error: String((e as Error)?.message ?? e) });
      }
      if (jobs.length === 0) {
        await this.sleep((this.o.pollMs ?? 500) * slower);
        continue;
      }
      for (const job of jobs) await run(job);
    }
  }

  private sleep(ms: number): Promise<void> {
    return this.stopping ? Promise.resolve() : this.sleepers.sleep(ms);
  }

  private async runOne(job: FetchedJob): Promise<void> {
    this.running++;
    this.current.add(job);
    this.o.onChange?.(this.running);
    try {
      await this.o.score(job);
      // a job handed back at shutdown is not ours to complete any more
      if (this.current.has(job)) await this.o.jobs.complete(job);
    } catch (e) {
      if (!this.current.has(job)) return;
      const reason = { code: isCxrError(e) ? e.code : 'E_INTERNAL', message: String((e as Error)?.message ?? e).slice(0, 500) };
      this.o.log.warn('scoring attempt failed; it will be retried', { studyId: job.data.studyId, attempt: job.retryCount + 1, ...reason });
      // If even this fails (the database is gone), the job stays active until it expires and is retried then.
      await this.o.jobs.fail(job, reason).catch((f) => this.o.log.warn('marking a job failed did not reach the database', { error: String(f) }));
    } finally {
      this.current.delete(job);
      this.running--;
      this.o.onChange?.(this.running);
    }
  }

  private async settle(job: FetchedJob): Promise<void> {
    try {
      await this.o.settleDead(job);
      await this.o.jobs.complete(job);
    } catch (e) {
      await this.o.jobs.fail(job, { code: 'E_INTERNAL', message: String((e as Error)?.message ?? e) }).catch(() => undefined);
    }
  }
}
