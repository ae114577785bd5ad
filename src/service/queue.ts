/**
 * The bounded in-process inference queue. A request first reserves a slot (refused when the
 * queue is full, before anything is stored), then commits the study id once it is durably
 * accepted. The database remains the source of truth: a study id that was committed but not
 * finished when the process died is still `queued` there and is re-enqueued at start.
 */

export interface QueueOptions {
  /** waiting + reserved slots; running jobs do not count */
  capacity: number;
  /** jobs run at once (each may use several intra-op threads) */
  concurrency: number;
  run: (id: string) => Promise<void>;
  onChange?: (waiting: number, running: number) => void;
  onError?: (id: string, e: unknown) => void;
}

export interface Reservation {
  /** hands the accepted id to the queue; the slot is used by it */
  commit(id: string): void;
  /** gives the slot back (the request failed, or the study was a duplicate) */
  release(): void;
}

export class InferenceQueue {
  private readonly waiting: string[] = [];
  private readonly known = new Set<string>();
  private readonly finished = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private reserved = 0;
  private active = 0;
  private stopped = false;
  private idle: (() => void)[] = [];

  constructor(private readonly opts: QueueOptions) {
    if (!(opts.capacity >= 1) || !(opts.concurrency >= 1)) throw new RangeError('queue capacity and concurrency must be >= 1');
  }

  get depth(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active;
  }

  /** null when the queue is full or stopping: the caller answers "busy, retry later". */
  reserve(): Reservation | null {
    if (this.stopped || this.waiting.length + this.reserved >= this.opts.capacity) return null;
    this.reserved++;
    let used = false;
    const take = () => {
      if (used) return false;
      used = true;
      this.reserved--;
      return true;
    };
    return {
      commit: (id) => {
        if (take()) this.push(id);
      },
      release: () => {
        take();
      },
    };
  }

  /** Re-enqueues a study found unfinished at start; recovery is never refused for lack of room. */
  enqueueRecovered(id: string): void {
    this.push(id);
  }

  /** Resolves when the id's job has ended (immediately if it is not in the queue). */
  whenDone(id: string): Promise<void> {
    return this.finished.get(id)?.promise ?? Promise.resolve();
  }

  isPending(id: string): boolean {
    return this.known.has(id);
  }

  /** Stops taking work and waits for running jobs; waiting ids stay `queued` in the database. */
  async stop(): Promise<void> {
    this.stopped = true;
    // Waiters are released (they then read the study as still queued); the ids stay queued in the database.
    for (const id of this.waiting.splice(0)) {
      this.known.delete(id);
      this.finished.get(id)?.resolve();
      this.finished.delete(id);
    }
    this.changed();
    if (this.active === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private push(id: string): void {
    if (this.stopped || this.known.has(id)) return;
    this.known.add(id);
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.finished.set(id, { promise, resolve });
    this.waiting.push(id);
    this.changed();
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.concurrency && this.waiting.length > 0) {
      const id = this.waiting.shift()!;
      this.active++;
      this.changed();
      void this.opts
        .run(id)
        .catch((e) => this.opts.onError?.(id, e))
        .finally(() => {
          this.active--;
          this.known.delete(id);
          const f = this.finished.get(id);
          this.finished.delete(id);
          f?.resolve();
          this.changed();
          if (this.active === 0 && this.stopped) for (const r of this.idle.splice(0)) r();
          this.pump();
        });
    }
  }

  private changed(): void {
    this.opts.onChange?.(this.waiting.length, this.active);
  }
}
