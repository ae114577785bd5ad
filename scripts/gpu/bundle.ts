/**
 * Usage: npx tsx scripts/gpu/bundle.ts --version DIR --crops DIR --runs JSON_FILE --out DIR [--splits train,validation] [--keep 3]
 *   [--teacher CSV]
 * Writes DIR, one folder to copy to a GPU machine: finetune.py, version/ (the version's
 * model.json and weights.bin), crops/ (the export-crops rows of --splits; with --teacher, an
 * `evaluate --per-image` CSV of another version, each row's probability in a `teacher` column
 * for runs that distil it), reference.json (the
 * tfjs probabilities `--check` compares with), runs.json and run.sh, which checks the graph,
 * trains within a time budget and leaves results.json, the logs and the --keep best runs'
 * weights in $OUT (default ./out). On the GPU machine: BUDGET=400 OUT=out bash DIR/run.sh
 */
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/ml/backend.js';
import { MODEL_JSON, WEIGHTS_BIN } from '../../src/ml/model-io.js';
import { readPerImageCsv } from '../../src/ml/evaluation-files.js';
import { scriptArgs } from './cli-args.js';
import { referenceProbabilities } from './reference.js';

const here = dirname(fileURLToPath(import.meta.url));
const o = scriptArgs(
  import.meta.url,
  { version: {}, crops: {}, runs: {}, out: {}, splits: { default: 'train,validation' }, keep: { default: '3' }, teacher: {} },
  ['version', 'crops', 'runs', 'out'],
);
const out = resolve(o.one('out'));
if (existsSync(out)) {
  process.stderr.write(`error E_CONFLICT: ${out} already exists\n`);
  process.exit(2);
}
const runs = await readFile(o.one('runs'), 'utf8');
try {
  if (!Array.isArray(JSON.parse(runs))) throw new Error('not a list');
} catch (e) {
  process.stderr.write(`error E_BAD_ARGUMENT: --runs ${o.one('runs')} must hold a JSON list of runs: ${(e as Error).message}\n`);
  process.exit(2);
}
const crops = resolve(o.one('crops'));
const version = resolve(o.one('version'));
await mkdir(join(out, 'crops', 'img'), { recursive: true });
await mkdir(join(out, 'version'));
for (const f of [MODEL_JSON, WEIGHTS_BIN]) await copyFile(join(version, f), join(out, 'version', f));
await copyFile(join(here, 'finetune.py'), join(out, 'finetune.py'));
await writeFile(join(out, 'runs.json'), runs);

await initBackend();
const reference = await referenceProbabilities(version, crops, 16);
await writeFile(join(out, 'reference.json'), `${JSON.stringify(reference)}\n`);
const referenced = new Set(reference.map((r) => r.name));

const wanted = new Set(o.one('splits').split(','));
const [header, ...rows] = (await readFile(join(crops, 'index.csv'), 'utf8')).trimEnd().split('\n');
const kept = rows.filter((r) => {
  const [name, , , split] = r.split(',');
  return wanted.has(split) || referenced.has(name);
});
for (const r of kept) {
  const name = r.split(',')[0];
  await copyFile(join(crops, 'img', name), join(out, 'crops', 'img', name));
}
const teacherCsv = o.has('teacher') ? o.one('teacher') : undefined;
const teacher = teacherCsv ? new Map((await readPerImageCsv(teacherCsv)).map((r) => [r.file, r.probability])) : undefined;
const rowsOut = teacher ? [`${header},teacher`, ...kept.map((r) => `${r},${teacher.get(r.split(',')[1]) ?? ''}`)] : [header, ...kept];
if (teacher) {
  const have = kept.filter((r) => teacher.has(r.split(',')[1])).length;
  process.stderr.write(`teacher probabilities for ${have} of ${kept.length} crops (${teacherCsv})\n`);
}
await writeFile(join(out, 'crops', 'index.csv'), `${rowsOut.join('\n')}\n`);

const keep = Number(o.one('keep'));
await writeFile(
  join(out, 'run.sh'),
  `#!/bin/bash
# Written by scripts/gpu/bundle.ts: check the graph, train the runs of runs.json within
# \${BUDGET:-400} seconds, keep results.json, the logs and the ${keep} best runs' weights in \${OUT:-./out}
# (\${PYTHON:-python3} must have torch, numpy and PIL).
set -o pipefail
cd "$(dirname "$0")"
OUT=\${OUT:-$PWD/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=\${PYTHON:-python3}
WORK=$(mktemp -d)
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY finetune.py --version version --crops crops --out "$WORK/check" --check reference.json 2>&1 | tee "$OUT/check.log" || exit 3
$PY finetune.py --version version --crops crops --out "$WORK/runs" --budget-seconds "\${BUDGET:-400}" --runs "$(cat runs.json)" 2>&1 | tee "$OUT/train.log" || exit 4
cp "$WORK/runs/results.json" "$OUT/"
$PY - "$OUT" "$WORK/runs" ${keep} <<'PY'
import json, shutil, sys
out, work, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [r for r in json.load(open(f'{work}/results.json')) if r['best']]
for r in sorted(runs, key=lambda r: -r['best']['score'])[:keep]:
    shutil.copy(f"{work}/{r['run']['name']}.weights.bin", out)
    print('kept', r['run']['name'], 'epoch', r['best']['epoch'], 'score', round(r['best']['score'], 4))
PY
`,
);
await chmod(join(out, 'run.sh'), 0o755);
const bytes = spawnSync('du', ['-sb', out], { encoding: 'utf8' }).stdout.split('\t')[0];
process.stderr.write(`${out}: ${kept.length} crops, ${(Number(bytes) / 1048576).toFixed(1)} MiB\n`);
