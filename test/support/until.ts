/**
 * Waiting in tests for something another process or thread does: `check` is polled until it
 * holds. The timeout only bounds the wait (a generous one costs nothing when all is well); it is
 * never a measured time.
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
