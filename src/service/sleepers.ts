/**
 * Polling loops' sleeps that can be cut short: a loop waits its interval unless work arrives
 * in this process (or it is stopping) and someone wakes every sleeper at once.
 */
export class Sleepers {
  private readonly waiting = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiting.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.waiting]) wake();
  }
}
