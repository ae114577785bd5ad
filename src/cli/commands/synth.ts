import type { Command } from 'commander';
import { checkOutputFile } from '../output-paths.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CxrError } from '../../errors.js';
import { previewDataset } from '../../data/preview.js';
import { writeSynthDataset } from '../../data/synth-dataset.js';
import { action, parseInteger, parseNumber } from '../run.js';

interface SynthCliOptions {
  out: string;
  count: string;
  seed: string;
  size: string;
  pneumoniaRate: string;
  preview?: string;
  workSize: string;
  jobs: string;
  force?: boolean;
  quiet?: boolean;
}

export function parseSizeRange(v: string): { sizeMin: number; sizeMax: number } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v.trim());
  if (!m) throw new CxrError('E_BAD_ARGUMENT', `--size must be N or MIN-MAX pixels, got '${v}'`);
  const sizeMin = Number(m[1]);
  const sizeMax = m[2] === undefined ? sizeMin : Number(m[2]);
  return { sizeMin, sizeMax };
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
      : `${s}s`;
}

export function register(program: Command): void {
  program
    .command('synth')
    .description(
      'generate synthetic chest radiograph phantoms: DIR/images/*.dcm (CR/DX), DIR/masks/*.png (lung fields, 0/255, native size) and DIR/labels.csv; same seed, same bytes',
    )
    .requiredOption('--out <dir>', 'output dataset folder (must be empty, or use --force)')
    .option('--count <n>', 'number of studies', '100')
    .option('--seed <n>', 'seed; the dataset is a function of it', '1')
    .option('--size <min-max>', 'native image size range in pixels (both sides), e.g. 512-3000 or 1024', '512-3000')
    .option('--pneumonia-rate <r>', 'share of pneumonia studies, 0..1', '0.5')
    .option('--preview <sheet.png>', 'also write a contact sheet of the first 16 images with mask outlines')
    .option('--work-size <rows>', 'rows of the internal anatomy render (detail beyond it is resampled)', '512')
    .option('--jobs <n>', 'worker threads generating in parallel (the output is identical for any value)', '1')
    .option('--force', 'replace a synthetic dataset already in --out')
    .option('--quiet', 'no progress output')
    .action(
      action(async (o: SynthCliOptions) => {
        const count = parseInteger('--count', o.count, 1);
        const seed = parseInteger('--seed', o.seed);
        const pneumoniaRate = parseNumber('--pneumonia-rate', o.pneumoniaRate);
        const workSize = parseInteger('--work-size', o.workSize, 64);
        const jobs = parseInteger('--jobs', o.jobs, 1);
        const { sizeMin, sizeMax } = parseSizeRange(o.size);
        if (o.preview) await checkOutputFile('--preview', o.preview);
        const tty = process.stderr.isTTY === true;
        const t0 = Date.now();
        let lastPrint = 0;
        const summary = await writeSynthDataset({
          out: o.out,
          count,
          seed,
          sizeMin,
          sizeMax,
          pneumoniaRate,
          workSize,
          jobs,
          force: o.force,
          onProgress: (done, total) => {
            if (o.quiet) return;
            const now = Date.now();
            if (done !== total && now - lastPrint < (tty ? 250 : 5000)) return;
            lastPrint = now;
            const rate = done / Math.max(1e-3, (now - t0) / 1000);
            const line = `synth: ${done}/${total} (${Math.floor((100 * done) / total)}%) ${rate.toFixed(2)} img/s, eta ${formatEta((total - done) / rate)}`;
            process.stderr.write(tty ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
          },
        });
        if (o.preview) {
          const path = resolve(o.preview);
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, await previewDataset(summary.dir, { count: 16 }));
          if (!o.quiet) process.stderr.write(`synth: contact sheet ${path}\n`);
        }
        process.stdout.write(
          `wrote ${summary.count} studies (${summary.normal} normal, ${summary.pneumonia} pneumonia, ${summary.patients} patients) to ${summary.dir} in ${summary.seconds.toFixed(1)} s\n`,
        );
      }),
    );
}
