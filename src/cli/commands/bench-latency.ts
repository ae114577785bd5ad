import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { readInputFile } from '../../dicom/read-file.js';
import { loadEngine } from '../../inference/engine.js';
import { parsePrecision, PRECISION_ENV } from '../../inference/precision.js';
import { parseProviders } from '../../inference/session.js';
import { action, parseInteger } from '../run.js';

interface LatencyOptions {
  tta: string;
  repeat: string;
  models: string;
  threads: string;
  providers?: string;
  precision?: string;
  json?: boolean;
}

function quantile(sorted: number[], q: number): number {
  // the reference script's convention: element int(q * (n - 1)) of the sorted times
  return sorted[Math.floor(q * (sorted.length - 1))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** `bench` groups benchmark subcommands; whichever module comes first creates it. */
export function benchCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'bench') ??
    program.command('bench').description('benchmarks that print figures (see bench/ for side-by-side runs)')
  );
}

export function register(program: Command): void {
  benchCommand(program)
    .command('latency')
    .description(
      'per-study latency of the triage pipeline (read, decode, window, U-Net, crop, DenseNet x TTA, CAM, report) ' +
        'with models loaded and warmed once, every file analysed --repeat times',
    )
    .argument('<files...>', 'DICOM files')
    .option('--tta <n>', 'test-time-augmented views', '4')
    .option('--repeat <n>', 'times each file is analysed', '10')
    .option('--models <dir>', 'models folder', 'models')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', '2')
    .option('--providers <list>', 'execution providers, e.g. cuda,cpu', 'cpu')
    .option('--precision <p>', `auto | float | int8 (default $${PRECISION_ENV} or auto)`)
    .option('--json', 'print one JSON line')
    .action(
      action(async (files: string[], opts: LatencyOptions) => {
        const tta = parseInteger('--tta', opts.tta, 1);
        const repeat = parseInteger('--repeat', opts.repeat, 1);
        const threads = parseInteger('--threads', opts.threads, 1);
        const providers = parseProviders(opts.providers ?? 'cpu');
        for (const f of files) await readInputFile(f); // typed errors before any timing
        const tLoad = performance.now();
        const precision = opts.precision === undefined ? undefined : parsePrecision(opts.precision);
        const engine = await loadEngine({
          modelsDir: opts.models,
          tta,
          threads,
          providers,
          precision,
          onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
        });
        const loadMs = performance.now() - tLoad;
        try {
          // one untimed pass per file, as the reference does
          for (const f of files) await engine.analyze(new Uint8Array(await readFile(f)), { tta });
          const times: number[] = [];
          const stages: Record<string, number[]> = {};
          const total = repeat * files.length;
          for (let r = 0; r < repeat; r++) {
            for (const f of files) {
              const t = performance.now();
              // the file read is timed too: the reference's pydicom.dcmread reads it each time
              const buf = await readFile(f);
              const { report } = await engine.analyze(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), { tta });
              times.push(performance.now() - t);
              for (const [k, v] of Object.entries(report.timingsMs)) (stages[k] ??= []).push(v);
              if (!opts.json && process.stderr.isTTY) process.stderr.write(`\r${times.length}/${total} studies`);
            }
          }
          if (!opts.json && process.stderr.isTTY) process.stderr.write('\n');
          times.sort((a, b) => a - b);
          const out = {
            impl: 'onnxruntime-node',
            ort: (await import('onnxruntime-node')).env.versions.node,
            providers: engine.providers.classifier,
            threads,
            tta,
            studies: times.length,
            per_study_ms_p50: round1(quantile(times, 0.5)),
            per_study_ms_p90: round1(quantile(times, 0.9)),
            peak_rss_mb: round1(process.resourceUsage().maxRSS / 1024),
            load_ms: round1(loadMs),
            stage_ms_p50: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round1(median(v))])),
            models: { segmenter: engine.models.segmenter.version, classifier: engine.models.classifier.version },
            precision: { segmenter: engine.models.segmenter.precision ?? 'float', classifier: engine.models.classifier.precision ?? 'float' },
          };
          if (opts.json) process.stdout.write(`${JSON.stringify(out)}\n`);
          else {
            process.stdout.write(
              `${out.studies} studies (${files.length} files x ${repeat}), TTA ${tta}, ${threads} threads, ${out.providers.join(',')}\n` +
                `per study: p50 ${out.per_study_ms_p50} ms, p90 ${out.per_study_ms_p90} ms; peak RSS ${out.peak_rss_mb} MB; load ${out.load_ms} ms\n` +
                `stage p50 ms: ${Object.entries(out.stage_ms_p50)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}\n`,
            );
          }
        } finally {
          await engine.close();
        }
      }),
    );
}
