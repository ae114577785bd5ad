/**
 * Parse + window of a 2048x2048 16-bit DICOM: readWindowed (parse, decode, modality LUT,
 * LINEAR window, MONOCHROME1 inversion) against pydicom + numpy doing the same, in one run on
 * the same file. Prints medians of N iterations after a warm-up.
 *
 *   npx tsx bench/dicom-window.ts [ITERATIONS]       (default 15)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeDicom, newUid, readWindowed } from '../src/dicom/index.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const N = Number(process.argv[2] ?? 15);
const SIZE = 2048;

/** A CR-like image: 12 bits stored in 16, MONOCHROME1, smooth structure plus noise. */
function makeFile(): Uint8Array {
  const px = new Uint16Array(SIZE * SIZE);
  let seed = 12345;
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const u = x / SIZE - 0.5;
      const v = y / SIZE - 0.5;
      const body = Math.exp(-(u * u + v * v) * 6);
      px[y * SIZE + x] = Math.min(4095, Math.round(300 + 3300 * body + (seed >>> 24)));
    }
  return encodeDicom({
    rows: SIZE,
    columns: SIZE,
    bitsAllocated: 16,
    bitsStored: 12,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME1',
    pixels: px,
    modality: 'CR',
    studyInstanceUid: newUid(['bench', 'study']),
    seriesInstanceUid: newUid(['bench', 'series']),
    sopInstanceUid: newUid(['bench', 'sop']),
    patientId: 'BENCH',
    rescaleSlope: 1,
    rescaleIntercept: 0,
    windowCenter: 2000,
    windowWidth: 3500,
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const bytes = makeFile();
  const dir = mkdtempSync(join(tmpdir(), 'cxr-bench-dicom-'));
  const path = join(dir, 'cr-2048.dcm');
  writeFileSync(path, bytes);

  await readWindowed(bytes, { window: { kind: 'header' } }); // warm-up (JIT)
  const times: number[] = [];
  let checksum = 0;
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const img = await readWindowed(bytes, { window: { kind: 'header' } });
    times.push(performance.now() - t0);
    if (i === N - 1) for (let j = 0; j < img.data.length; j++) checksum += img.data[j];
  }

  const script = fileURLToPath(new URL('./dicom_window_pydicom.py', import.meta.url));
  const r = spawnSync('/usr/bin/python3', [script, path, '2000', '3500', String(N)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pydicom bench failed: ${r.stderr}`);
  const py = JSON.parse(r.stdout) as { medianMs: number; minMs: number; checksum: number; pydicom: string; numpy: string };

  const ours = median(times);
  console.log(`parse + window, ${SIZE}x${SIZE} 16-bit (12 stored) MONOCHROME1, ${(bytes.length / 1048576).toFixed(1)} MiB, median of ${N}:`);
  console.log(`  cxr-triage readWindowed : ${ours.toFixed(1)} ms (min ${Math.min(...times).toFixed(1)} ms)`);
  console.log(`  pydicom ${py.pydicom} + numpy ${py.numpy}: ${py.medianMs.toFixed(1)} ms (min ${py.minMs.toFixed(1)} ms)`);
  console.log(`  ratio ours/pydicom      : ${(ours / py.medianMs).toFixed(2)}`);
  console.log(`  checksums (sum of [0,1] values): ours ${checksum.toFixed(1)}, pydicom ${py.checksum.toFixed(1)}`);
}

await main();
