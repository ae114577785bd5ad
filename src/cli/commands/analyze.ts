import type { Command } from 'commander';
import { checkOutputFile } from '../output-paths.js';
import { writeFile } from 'node:fs/promises';
import { parseWindowPolicy } from '../../dicom/index.js';
import { readInputFile } from '../../dicom/read-file.js';
import { CxrError } from '../../errors.js';
import { encodeRgbPng } from '../../imaging/png.js';
import { heatmapOverlay, maskOverlay, type RgbImage } from '../../imaging/overlay.js';
import { loadEngine } from '../../inference/engine.js';
import { parsePrecision, PRECISION_ENV } from '../../inference/precision.js';
import { parseProviders } from '../../inference/session.js';
import type { TriageReport } from '../../inference/types.js';
import { action, parseInteger, parseNumber } from '../run.js';

interface AnalyzeCliOptions {
  json?: boolean;
  mask?: string;
  heatmap?: string;
  models: string;
  tta?: string;
  threads?: string;
  providers?: string;
  uncertainBound?: string;
  window?: string;
  precision?: string;
}

async function writePng(path: string, img: RgbImage): Promise<void> {
  try {
    await writeFile(path, await encodeRgbPng(img.data, img.width, img.height));
  } catch (e) {
    throw new CxrError('E_BAD_ARGUMENT', `cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const p3 = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));

export function formatReport(file: string, r: TriageReport): string {
  const lines: string[] = [];
  const head = r.decision === 'positive' ? 'POSITIVE' : 'negative';
  lines.push(`${file}: ${head}${r.flagged ? ` - FLAGGED for review (${r.flagReasons.join(', ')})` : ' - not flagged'}`);
  lines.push(
    `  probability  ${r.probability.toFixed(3)}  threshold ${r.threshold.toFixed(3)} (target recall ${r.targetRecall}; ` +
      `validation sensitivity ${p3(r.validation.sensitivity)}, specificity ${p3(r.validation.specificity)})`,
  );
  if (r.population) lines.push(`  population   ${r.population.name ?? 'unknown'} (${r.population.reason})`);
  lines.push(
    `  TTA          ${r.tta.views} views, spread ${r.tta.spread.toFixed(3)} (uncertain above ${r.tta.uncertainBound.toFixed(3)}): ` +
      r.tta.probabilities.map((p) => p.toFixed(3)).join(' '),
  );
  const box = r.lungBox ? `box x ${r.lungBox.x0}-${r.lungBox.x1}, y ${r.lungBox.y0}-${r.lungBox.y1}` : 'no lungs found';
  lines.push(`  lungs        ${pct(r.lungAreaFraction)} of the frame, ${box}`);
  lines.push(`  QC           ${r.qcFlags.length ? r.qcFlags.join(', ') : 'passed'}`);
  const w = r.window;
  lines.push(`  window       ${w.source}${w.center === null ? '' : ` C${w.center}/W${w.width}`} (${w.reason})`);
  lines.push(`  image        ${r.image.width}x${r.image.height}`);
  const m = r.models;
  const ref = (x: typeof m.segmenter) => `${x.version}${x.precision === 'int8' ? ' int8' : ''} (${x.sha256.slice(0, 12)})`;
  lines.push(`  models       segmenter ${ref(m.segmenter)}, classifier ${ref(m.classifier)}`);
  lines.push(
    `  timings ms   ${Object.entries(r.timingsMs)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('analyze')
    .description('triage one chest X-ray DICOM: segment, crop, classify with TTA, and print the report (not for clinical use)')
    .argument('<file>', 'DICOM Part 10 file (single-frame grayscale)')
    .option('--json', 'print the report as one JSON object')
    .option('--mask <png>', 'write the lung mask outline over the image as PNG')
    .option('--heatmap <png>', 'write the class activation heatmap over the image as PNG')
    .option('--models <dir>', 'models folder with segmenter/ and classifier/ versions', 'models')
    .option('--tta <n>', 'test-time-augmented views (default 4)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default 2)')
    .option('--providers <list>', 'execution providers in order, e.g. cuda,cpu (default cpu)')
    .option('--uncertain-bound <s>', "TTA spread above which a study is uncertain (default: the classifier version's, set on validation with its threshold)")
    .option('--window <policy>', 'auto | lung | header | minmax (default auto)')
    .option('--precision <p>', `auto | float | int8 (default $${PRECISION_ENV} or auto: int8 where its manifest says to serve it)`)
    .action(
      action(async (file: string, opts: AnalyzeCliOptions) => {
        const tta = opts.tta === undefined ? undefined : parseInteger('--tta', opts.tta, 1);
        const threads = opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1);
        const uncertainBound = opts.uncertainBound === undefined ? undefined : parseNumber('--uncertain-bound', opts.uncertainBound);
        const providers = opts.providers === undefined ? undefined : parseProviders(opts.providers);
        const window = parseWindowPolicy(opts.window);
        // both pictures' paths checked before anything is written: never one without the other
        if (opts.mask) await checkOutputFile('--mask', opts.mask);
        if (opts.heatmap) await checkOutputFile('--heatmap', opts.heatmap);
        const bytes = await readInputFile(file);
        const engine = await loadEngine({
          modelsDir: opts.models,
          tta,
          threads,
          providers,
          uncertainBound,
          precision: opts.precision === undefined ? undefined : parsePrecision(opts.precision),
          onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
        });
        try {
          const wantImages = Boolean(opts.mask || opts.heatmap);
          const result = await engine.analyze(bytes, { window, artifacts: wantImages });
          if (result.artifacts) {
            const a = result.artifacts;
            if (opts.mask) await writePng(opts.mask, maskOverlay(a.windowed, a.mask));
            if (opts.heatmap) await writePng(opts.heatmap, heatmapOverlay(a.windowed, a.heatmap));
          }
          process.stdout.write(opts.json ? `${JSON.stringify(result.report)}\n` : formatReport(file, result.report));
        } finally {
          await engine.close();
        }
      }),
    );
}
