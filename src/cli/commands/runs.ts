import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { CxrError } from '../../errors.js';
import { formatChange, valueChanges } from '../../ml/model-store/index.js';
import type { EpochRecord } from '../../ml/train/types.js';
import { action } from '../run.js';

/** What a run folder (runs/<id>/) says about itself: config.json, metrics.jsonl, checkpoint/, version.json. */
interface RunSummary {
  id: string;
  dir: string;
  task: string;
  config: Record<string, unknown>;
  data: string | null;
  epochs: EpochRecord[];
  plannedEpochs: number | null;
  best: EpochRecord | null;
  /** the version it produced, or whether it can be resumed */
  status: string;
}

/** A JSON file's value, or why it cannot be read (a run killed mid-write leaves such files). */
async function readJsonFile(path: string): Promise<{ value: unknown } | { error: string }> {
  try {
    return { value: JSON.parse(await readFile(path, 'utf8')) as unknown };
  } catch (e) {
    return { error: `${basename(path)}: ${(e as Error).message}` };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One run folder. A damaged one (a config.json that is not an object, a metrics.jsonl cut by a
 * killed run) is listed with what could be read and why the rest could not, never the reason
 * the other runs are not listed.
 */
async function readRun(dir: string): Promise<RunSummary> {
  const problems: string[] = [];
  const read = await readJsonFile(join(dir, 'config.json'));
  if ('error' in read) problems.push(read.error);
  else if (!isObject(read.value)) problems.push('config.json: not a JSON object');
  const saved = ('value' in read && isObject(read.value) ? read.value : {}) as { config?: unknown; data?: { dataDir?: string } };
  const config = isObject(saved.config) ? saved.config : {};
  const epochs: EpochRecord[] = [];
  if (existsSync(join(dir, 'metrics.jsonl'))) {
    const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean);
    lines.forEach((l, i) => {
      try {
        const e = JSON.parse(l) as unknown;
        if (isObject(e)) epochs.push(e as unknown as EpochRecord);
        else problems.push(`metrics.jsonl line ${i + 1}: not a JSON object`);
      } catch {
        problems.push(`metrics.jsonl line ${i + 1}: ${i === lines.length - 1 ? 'cut short (the run was stopped while writing it)' : 'not JSON'}`);
      }
    });
  }
  const best = epochs.filter((e) => e.best).pop() ?? null;
  let status = existsSync(join(dir, 'checkpoint', 'state.json')) ? 'resumable' : 'no checkpoint';
  if (existsSync(join(dir, 'version.json'))) {
    const v = await readJsonFile(join(dir, 'version.json'));
    if ('value' in v && isObject(v.value) && typeof v.value.version === 'string') status = `version ${v.value.version}`;
    else problems.push('version.json: unreadable');
  }
  if (problems.length > 0) status = `${status}; damaged: ${problems.join('; ')}`;
  return {
    id: basename(dir),
    dir,
    task: String(config.task ?? '?'),
    config,
    data: typeof saved.data?.dataDir === 'string' ? saved.data.dataDir : null,
    epochs,
    plannedEpochs: typeof config.epochs === 'number' ? config.epochs : null,
    best,
    status,
  };
}

/** Run folders under the given runs folders (those holding config.json), oldest first. */
async function findRuns(dirs: string[]): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    if (!(await stat(d)).isDirectory()) throw new CxrError('E_BAD_ARGUMENT', `${d} is not a folder of training runs`);
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory() && existsSync(join(d, e.name, 'config.json'))) out.push(await readRun(resolve(d, e.name)));
    }
  }
  const started = (r: RunSummary) => r.epochs[0]?.time ?? '';
  return out.sort((a, b) => started(a).localeCompare(started(b)) || a.id.localeCompare(b.id));
}

const f4 = (v: number | null | undefined) => (v == null ? 'n/a' : v.toFixed(4));
const DEFAULT_RUNS = ['models/segmenter/runs', 'models/classifier/runs'];

export function register(program: Command): void {
  const runs = program
    .command('runs')
    .description('training runs (runs/<id>/: config.json, metrics.jsonl, TensorBoard event files, checkpoints): list, compare')
    .addHelpText('after', '\nTensorBoard reads the same folders: tensorboard --logdir models/classifier/runs');

  runs
    .command('list')
    .description('every run: task, epochs done, best validation metric, and the version it produced (or whether it can be resumed)')
    .argument('[dirs...]', `runs folders (default ${DEFAULT_RUNS.join(', ')})`)
    .option('--json', 'print one JSON array')
    .action(
      action(async (dirs: string[], o: { json?: boolean }) => {
        const found = await findRuns(dirs.length ? dirs : DEFAULT_RUNS);
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify(found.map((r) => ({ id: r.id, dir: r.dir, task: r.task, epochs: r.epochs.length, plannedEpochs: r.plannedEpochs, best: r.best && { epoch: r.best.epoch, [r.best.valMetricName]: r.best.valMetric }, status: r.status, data: r.data })))}\n`,
          );
          return;
        }
        if (found.length === 0) process.stderr.write(`no runs in ${(dirs.length ? dirs : DEFAULT_RUNS).join(', ')}\n`);
        for (const r of found) {
          const best = r.best ? `best epoch ${r.best.epoch}: val ${r.best.valMetricName} ${f4(r.best.valMetric)}` : 'no epoch yet';
          process.stdout.write(
            `${r.id.padEnd(30)} ${r.task.padEnd(10)} ${String(r.epochs.length).padStart(3)}/${r.plannedEpochs ?? '?'} epochs  ${best}  [${r.status}]\n`,
          );
        }
      }),
    );

  runs
    .command('compare')
    .description('two or more runs side by side: what differs in their configuration, and the loss and validation metric of every epoch')
    .argument('<runs...>', 'run folders, or run ids under --runs')
    .option('--runs <dir>', 'where run ids are looked up', 'models/classifier/runs')
    .option('--json', 'print {configChanges, epochs} as JSON')
    .action(
      action(async (refs: string[], o: { runs: string; json?: boolean }) => {
        if (refs.length < 2) throw new CxrError('E_BAD_ARGUMENT', 'give at least two runs to compare');
        const list: RunSummary[] = [];
        for (const ref of refs) {
          const dir = existsSync(join(ref, 'config.json')) ? resolve(ref) : resolve(o.runs, ref);
          if (!existsSync(join(dir, 'config.json'))) throw new CxrError('E_NOT_FOUND', `no run '${ref}' (a folder with config.json, or an id under ${o.runs})`);
          list.push(await readRun(dir));
        }
        const base = list[0];
        const changes = list
          .slice(1)
          .map((r) => ({ run: r.id, changes: valueChanges({ config: base.config, data: base.data }, { config: r.config, data: r.data }) }));
        const maxEpochs = Math.max(...list.map((r) => r.epochs.length));
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ base: base.id, configChanges: changes, epochs: list.map((r) => ({ run: r.id, epochs: r.epochs })) })}\n`);
          return;
        }
        for (const c of changes) {
          process.stdout.write(`${base.id} -> ${c.run}: ${c.changes.length} setting${c.changes.length === 1 ? ' differs' : 's differ'}\n`);
          for (const ch of c.changes) process.stdout.write(`  ${formatChange(ch)}\n`);
        }
        const metric = base.epochs[0]?.valMetricName ?? 'metric';
        const w = Math.max(...list.map((r) => r.id.length), 24);
        process.stdout.write(`\nepoch  ${list.map((r) => r.id.padEnd(w)).join('  ')}\n`);
        process.stdout.write(`       ${list.map(() => `train loss / val ${metric}`.padEnd(w)).join('  ')}\n`);
        for (let e = 0; e < maxEpochs; e++) {
          const cells = list.map((r) => {
            const x = r.epochs[e];
            return (x ? `${f4(x.trainLoss)} / ${f4(x.valMetric)}${x.best ? ' *' : ''}` : '').padEnd(w);
          });
          process.stdout.write(`${String(e + 1).padStart(5)}  ${cells.join('  ')}\n`);
        }
      }),
    );
}
