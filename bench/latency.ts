/**
 * Per-study triage latency, ours next to the PyTorch reference, in one run on the same files.
 *
 *   npx tsx bench/latency.ts [--files 3] [--repeat 10] [--tta 4] [--models DIR] [--work DIR] [--precision float,auto] [--rounds 1]
 *
 * - Studies: --files synthetic phantoms of 2048x2048 (`cxr-triage synth`, 16-bit CR/DX) in
 *   --work (default /tmp/cxr-latency).
 * - Models: --models, else models/ when it holds a segmenter and a classifier with
 *   model.onnx or model.int8.onnx (a version shipped int8 only rebuilds float from its
 *   weights), else random-weight full-size versions built once under --work/models
 *   (same architectures and shapes; timing does not depend on the weights).
 * - Ours: `cxr-triage bench latency --json` (models loaded and warmed once, every file
 *   analysed --repeat times; the file read is inside the timing), once per --precision
 *   (default float,auto: model.onnx, then what the service serves, int8 where a version's
 *   quantization says so; `int8` asks for int8 of both networks; see `cxr-triage quantize`),
 *   one after the other.
 * - Reference: ../shared/bench/reference_pipeline.py (PyTorch eager, 2 threads) on the
 *   same files with the same --tta and --repeat, run after ours, never at the same time.
 * - --rounds N repeats (ours, then the reference) N times and ends with the median ratio per
 *   precision: this shared machine's speed drifts by half within minutes, and only the ratio
 *   inside a round compares like with like.
 * Prints both JSON lines and the ratio. Needs /usr/bin/python3 with torch, torchvision and
 * pydicom for the reference (skipped with a message when missing).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chestDicom } from '../src/data/simple-chest-dicom.js';
import { helpFromHeader } from './usage.js';

helpFromHeader(import.meta.url);

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '10' },
    tta: { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    models: { type: 'string' },
    work: { type: 'string', default: '/tmp/cxr-latency' },
    precision: { type: 'string', default: 'float,auto' },
    rounds: { type: 'string', default: '1' },
  },
});

const repo = resolve(import.meta.dirname, '..');
const work = resolve(args.work!);
mkdirSync(work, { recursive: true });
const log = (s: string) => process.stderr.write(`${s}\n`);

/** A version of `name` the engine can serve: model.onnx, or model.int8.onnx (float is then rebuilt from its weights). */
function hasOnnx(root: string, name: string): boolean {
  const dir = join(root, name);
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { withFileTypes: true }).some(
    (d) => d.isDirectory() && (existsSync(join(dir, d.name, 'model.onnx')) || existsSync(join(dir, d.name, 'model.int8.onnx'))),
  );
}

let models = args.models ? resolve(args.models) : join(repo, 'models');
if (!args.models && !(hasOnnx(models, 'segmenter') && hasOnnx(models, 'classifier'))) {
  models = join(work, 'models');
  if (!(hasOnnx(models, 'segmenter') && hasOnnx(models, 'classifier'))) {
    log(`no shipped models with model.onnx or model.int8.onnx: building random-weight full-size versions in ${models}`);
    const { initBackend } = await import('../src/ml/backend.js');
    const { createRandomModels } = await import('../src/ml/random-models.js');
    await initBackend({ log });
    await createRandomModels(models, { size: 'full', log });
  }
}

// Studies: synthetic radiograph phantoms at 2048 px (16-bit CR/DX, like a real study), or
// the simple chest-like image when the generator is unavailable.
const studyDir = join(work, `studies-${args.files}`);
let files: string[] = [];
if (!existsSync(join(studyDir, 'labels.csv'))) {
  const r = spawnSync(
    process.execPath,
    [join(repo, 'bin', 'cxr-triage.js'), 'synth', '--out', studyDir, '--count', args.files!, '--seed', '4242', '--size', '2048', '--force', '--quiet'],
    {
      cwd: repo,
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) log(`synth failed (${r.stderr.trim().split('\n').pop()}); using simple generated studies`);
}
if (existsSync(join(studyDir, 'images'))) {
  files = readdirSync(join(studyDir, 'images'))
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => join(studyDir, 'images', f));
}
if (files.length === 0) {
  for (let i = 0; i < Number(args.files); i++) {
    const f = join(work, `study-2048-${i + 1}.dcm`);
    if (!existsSync(f)) writeFileSync(f, chestDicom({ size: 2048, seed: i + 1 }));
    files.push(f);
  }
}
log(`${files.length} studies of 2048x2048 16-bit in ${work}; models ${models}`);

function run(cmd: string, argv: string[]): Record<string, unknown> | { error: string } {
  const r = spawnSync(cmd, argv, { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || !line) return { error: `${cmd} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(line) as Record<string, unknown>;
}

const loadAvg = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const loadBefore = loadAvg();
const precisions = args
  .precision!.split(',')
  .map((p) => p.trim())
  .filter(Boolean);
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${args.rounds}`);

function runOurs(precision: string): Record<string, unknown> | { error: string } {
  log(`ours (${precision}): cxr-triage bench latency ...`);
  return run(process.execPath, [
    join(repo, 'bin', 'cxr-triage.js'),
    'bench',
    'latency',
    ...files,
    '--tta',
    args.tta!,
    '--repeat',
    args.repeat!,
    '--threads',
    args.threads!,
    '--models',
    models,
    '--precision',
    precision,
    '--json',
  ]);
}

const reference = join(repo, '..', 'shared', 'bench', 'reference_pipeline.py');
function runReference(): Record<string, unknown> | { error: string } {
  if (!existsSync(reference)) return { error: `${reference} not found` };
  log('reference: reference_pipeline.py ...');
  // peak RSS of the reference, read by the same interpreter when the script returns
  const wrapper =
    'import runpy, sys, json, resource\n' +
    'sys.argv = sys.argv[1:]\n' +
    'runpy.run_path(sys.argv[0], run_name="__main__")\n' +
    'print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))\n';
  const r = spawnSync('/usr/bin/python3', ['-c', wrapper, reference, ...files, '--tta', args.tta!, '--repeat', args.repeat!, '--threads', args.threads!], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const lines = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  return r.status === 0 && lines.length >= 2
    ? { ...(JSON.parse(lines[lines.length - 2]) as Record<string, unknown>), ...(JSON.parse(lines[lines.length - 1]) as Record<string, unknown>) }
    : { error: `reference exited ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}` };
}

// Each round runs ours in every precision and then the reference, never at the same time; on a
// shared machine whose speed drifts, the ratio within a round is the figure, and the median
// over rounds the one to quote.
const ratios: Record<string, number[]> = Object.fromEntries(precisions.map((p) => [p, []]));
for (let round = 1; round <= rounds; round++) {
  if (rounds > 1) log(`round ${round} of ${rounds}`);
  const ours: Record<string, Record<string, unknown> | { error: string }> = {};
  for (const precision of precisions) ours[precision] = runOurs(precision);
  const ref = runReference();
  for (const [p, r] of Object.entries(ours)) console.log(JSON.stringify({ ours: r, precision: p, ...(rounds > 1 ? { round } : {}) }));
  console.log(JSON.stringify({ reference: ref, ...(rounds > 1 ? { round } : {}) }));
  for (const [p, r] of Object.entries(ours)) {
    if ('error' in r || 'error' in ref) continue;
    const a = r.per_study_ms_p50 as number;
    const b = ref.per_study_ms_p50 as number;
    ratios[p].push(a / b);
    console.log(
      `per study p50 (${p}): ours ${a} ms vs reference ${b} ms -> ${(a / b).toFixed(2)}x the reference (target <= 0.25); ` +
        `p90 ${r.per_study_ms_p90} vs ${ref.per_study_ms_p90} ms; peak RSS ${r.peak_rss_mb} vs ${ref.peak_rss_mb} MB`,
    );
  }
}
if (rounds > 1) {
  for (const [p, rs] of Object.entries(ratios)) {
    if (rs.length === 0) continue;
    const sorted = [...rs].sort((x, y) => x - y);
    const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    console.log(
      `median ratio over ${rs.length} rounds (${p}): ${mid.toFixed(2)}x the reference (rounds ${sorted.map((x) => x.toFixed(2)).join(', ')}; target <= 0.25)`,
    );
  }
}
console.log(`load average (1/5/15 min) before: ${loadBefore}; after: ${loadAvg()}`);
