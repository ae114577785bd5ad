/**
 * Phantom generation speed: seconds per study (render, encode DICOM, rasterise mask; no disk
 * I/O) at fixed native sizes. Usage: node --import tsx bench/synth.ts [count-per-size] [sizes...]
 * e.g. `node --import tsx bench/synth.ts 10 512 1024 2048 3000`.
 */
import { generateStudy } from '../src/data/phantom/study.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const args = process.argv.slice(2).map(Number);
const count = args[0] > 0 ? args[0] : 8;
const sizes = args.length > 1 ? args.slice(1) : [512, 1024, 2048, 3000];

// Warm the JIT so the first size is not charged for compilation.
for (let i = 0; i < 8; i++) generateStudy(999, i, { sizeMin: 512, sizeMax: 1024 });

// CPU seconds are reported next to wall seconds: on a shared machine the wall clock also
// counts other processes' turns.
console.log(`size   wall s/image (mean of ${count})   min     max     cpu s/image`);
for (const size of sizes) {
  const times: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    generateStudy(1, i, { sizeMin: size, sizeMax: size });
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const cpu = process.cpuUsage(c0);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const cpuMean = (cpu.user + cpu.system) / 1e6 / count;
  console.log(
    `${String(size).padEnd(6)} ${mean.toFixed(3).padEnd(32)} ${Math.min(...times).toFixed(3)}   ${Math.max(...times).toFixed(3)}   ${cpuMean.toFixed(3)}`,
  );
}
