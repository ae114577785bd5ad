/** Waiting on the PostgreSQL job queue in tests. */
import type { DataSource } from 'typeorm';
import { JOB_SCHEMA } from '../../migrations/1796160000000-JobsAndObjectStore.js';

/**
 * Waits until no scoring job is left open. A study's status turns `scored` before its job
 * completes (the shadow step runs inside the job, after the study's own result), so a test that
 * reads what the job does last waits for this, not for the study.
 */
export async function waitJobsDone(ds: DataSource, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const [{ n }]: { n: number }[] = await ds.query(`SELECT count(*)::int AS n FROM ${JOB_SCHEMA}.job WHERE name = 'score-study' AND state < 'completed'`);
    if (n === 0) return;
    if (Date.now() > end) throw new Error(`${n} scoring jobs still open after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
