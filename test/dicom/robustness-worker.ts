/**
 * Runs the robustness cases for robustness.test.ts in a worker thread, so the test can
 * terminate it if a case hangs (a synchronous loop cannot be interrupted otherwise).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { applyWindow, decodeModality, readMetadata } from '../../src/dicom/index.js';
import { CxrError } from '../../src/errors.js';
import { rng } from '../support/dicom.js';

interface Source {
  name: string;
  bytes: Uint8Array;
}

export interface RobustnessSummary {
  cases: number;
  decoded: number;
  codes: Record<string, number>;
  untyped: string[];
  slowestMs: number;
  slowestCase: string;
}

function* cases(src: Source, seed: number): Generator<[string, Uint8Array]> {
  const n = src.bytes.length;
  // Every offset through the preamble, meta and the first elements, then a stride to the end.
  for (let cut = 0; cut < n; cut += cut < 700 ? 1 : 61) yield [`${src.name} truncated at ${cut}`, src.bytes.subarray(0, cut)];
  const rand = rng(seed);
  for (let k = 0; k < 300; k++) {
    const copy = src.bytes.slice();
    const flips = 1 + Math.floor(rand() * 4);
    const where: number[] = [];
    for (let f = 0; f < flips; f++) {
      // Half the cases hit the header region, where one byte changes the meaning of everything after it.
      const limit = k % 2 === 0 ? Math.min(n, 800) : n;
      const i = Math.floor(rand() * limit);
      copy[i] ^= 1 + Math.floor(rand() * 255);
      where.push(i);
    }
    yield [`${src.name} bytes flipped at ${where.join(',')}`, copy];
  }
}

async function run(): Promise<RobustnessSummary> {
  const sources = workerData.sources as Source[];
  const summary: RobustnessSummary = { cases: 0, decoded: 0, codes: {}, untyped: [], slowestMs: 0, slowestCase: '' };
  for (const [i, src] of sources.entries()) {
    for (const [label, bytes] of cases(src, 1000 + i)) {
      parentPort!.postMessage({ type: 'case', label });
      const t0 = performance.now();
      summary.cases++;
      try {
        readMetadata(bytes);
        const img = await decodeModality(bytes);
        applyWindow(img, { kind: 'auto' });
        summary.decoded++;
      } catch (e) {
        if (e instanceof CxrError) summary.codes[e.code] = (summary.codes[e.code] ?? 0) + 1;
        else summary.untyped.push(`${label}: ${(e as Error)?.stack ?? String(e)}`);
      }
      const ms = performance.now() - t0;
      if (ms > summary.slowestMs) {
        summary.slowestMs = ms;
        summary.slowestCase = label;
      }
    }
  }
  return summary;
}

run().then(
  (summary) => parentPort!.postMessage({ type: 'done', summary }),
  (e) => parentPort!.postMessage({ type: 'crash', error: (e as Error)?.stack ?? String(e) }),
);
