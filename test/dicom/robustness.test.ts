/**
 * Truncated and byte-flipped files (seeded, so every run sees the same cases) end in success
 * or a CxrError, never an untyped exception or a hang. Cases run in a worker that is killed if
 * one case takes longer than a generous bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workerBootFor } from '../support/compiled.js';
import { Worker } from 'node:worker_threads';
import { encodeDicom } from '../../src/dicom/index.js';
import { sources as fixtureSources } from '../../fixtures/dicom/make-fixtures.js';
import { PYDICOM_CORPUS } from '../support/dicom.js';
import type { RobustnessSummary } from './robustness-worker.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/dicom/', import.meta.url));
/** No single case may take this long: a hang bound, not a speed assertion. */
const HANG_BOUND_MS = 30_000;

function sources(): { name: string; bytes: Uint8Array }[] {
  const cr = fixtureSources()['cr-mono1-u12'];
  const list = [
    { name: 'native explicit LE', bytes: new Uint8Array(readFileSync(join(FIXTURES, 'cr-mono1-u12.dcm'))) },
    { name: 'native explicit BE', bytes: encodeDicom(cr, { transferSyntax: 'explicit-be' }) },
    { name: 'native implicit LE', bytes: encodeDicom(fixtureSources()['ct-s16-hu'], { transferSyntax: 'implicit-le' }) },
    { name: 'deflated', bytes: encodeDicom(cr, { transferSyntax: 'deflated-explicit-le' }) },
  ];
  for (const stem of ['cr-mono1-u12.rle', 'cr-mono1-u12.jpeg-lossless-sv1', 'cr-mono1-u12.jpeg-ls', 'dx-u8.jpeg-baseline'])
    list.push({ name: stem, bytes: new Uint8Array(readFileSync(join(FIXTURES, `${stem}.dcm`))) });
  const j2k = join(PYDICOM_CORPUS, 'MR_small_jp2klossless.dcm');
  if (existsSync(j2k)) list.push({ name: 'jpeg2000 lossless (pydicom corpus)', bytes: new Uint8Array(readFileSync(j2k)) });
  else console.log(`robustness: ${j2k} not found, JPEG 2000 cases skipped`);
  return list;
}

test('truncated and byte-flipped files end in success or a typed error, without hanging', { timeout: 600_000 }, async (t) => {
  const boot = await workerBootFor(fileURLToPath(new URL('./robustness-worker.ts', import.meta.url)));
  const worker = new Worker(boot, { eval: true, workerData: { sources: sources() } });
  let lastCase = '(none yet)';
  let timer: NodeJS.Timeout | undefined;
  const summary = await new Promise<RobustnessSummary>((resolve, reject) => {
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void worker.terminate();
        reject(new Error(`no progress for ${HANG_BOUND_MS} ms; hung on: ${lastCase}`));
      }, HANG_BOUND_MS);
    };
    arm();
    worker.on('message', (m: { type: string; label?: string; summary?: RobustnessSummary; error?: string }) => {
      if (m.type === 'case') {
        lastCase = m.label!;
        arm();
      } else if (m.type === 'done') resolve(m.summary!);
      else reject(new Error(`worker crashed: ${m.error}`));
    });
    worker.on('error', (e) => reject(new Error(`worker error during ${lastCase}: ${e.stack ?? e}`)));
  }).finally(() => {
    clearTimeout(timer);
    void worker.terminate();
  });
  const line = `robustness: ${summary.cases} cases, ${summary.decoded} decoded, typed errors ${JSON.stringify(summary.codes)}, slowest ${summary.slowestMs.toFixed(1)} ms (${summary.slowestCase})`;
  t.diagnostic(line);
  console.log(line);
  assert.deepEqual(summary.untyped.slice(0, 20), []);
  assert.ok(summary.cases > 3000);
  assert.ok(summary.decoded > 0 && Object.keys(summary.codes).length > 3, 'the cases must reach both outcomes');
});
