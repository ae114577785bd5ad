/**
 * Requests that wait for their result (`?wait=true`) leave nothing behind once answered: before
 * the fix, each wait raced against one promise that lived as long as the process and kept a
 * handler of every wait (about 300 bytes each, 30 MiB per 100,000 waits).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startHarness, type Harness } from '../support/api.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let h: Harness;
before(async () => {
  h = await startHarness({ workers: 0, waitTimeoutMs: 1 });
});
after(async () => {
  await h?.close();
});

test('40,000 answered waits leave the heap where it was (within 4 MiB)', async () => {
  const service = h.parts.service;
  // warm-up: the first waits allocate what every later one reuses
  const waits = async (n: number) => {
    // 200 at a time: each waits out its 1 ms
    for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: 200 }, () => service.waitForResult(randomUUID(), 1, true)));
  };
  await waits(2000);
  gc();
  const before = process.memoryUsage().heapUsed;
  await waits(40_000);
  await new Promise((r) => setTimeout(r, 300));
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB over 40,000 waits`);
});
