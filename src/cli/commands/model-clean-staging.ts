/** `cxr-triage models clean-staging`: staging folders that interrupted publishes left (src/ml/model-store/staging.ts has the rule). */
import type { Command } from 'commander';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CxrError } from '../../errors.js';
import { cleanStaging, cleanupLines, DEFAULT_STALE_AFTER_MS, formatBytes, type StagingCleanup, type StagingEntry } from '../../ml/model-store/index.js';
import { action } from '../run.js';

/** `30m`, `6h`, `2d`, `90s` or `0` as milliseconds. */
export function parseAge(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$/.exec(value.trim());
  if (value.trim() === '0') return 0;
  if (!m) throw new CxrError('E_BAD_ARGUMENT', `${flag} must be a duration such as 30m, 6h or 2d (or 0), got '${value}'`);
  const unit = { s: 1000, m: 60_000, min: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'min' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** The folders a publish may have staged in: the models folder itself and each folder in it (models/<name>, or a --out of one's own). */
function stagingParents(modelsDir: string): string[] {
  const root = resolve(modelsDir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new CxrError('E_NOT_FOUND', `no models folder ${root} (give --models DIR)`);
  const subs = readdirSync(root, { withFileTypes: true })
    .filter(
      (e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && statSync(join(root, e.name), { throwIfNoEntry: false })?.isDirectory())),
    )
    .map((e) => join(root, e.name))
    .sort();
  return [root, ...subs];
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** `2 stale staging folders and 1 stray owner file` */
function countEntries(entries: StagingEntry[], what: string): string {
  const files = entries.filter((e) => e.kind === 'owner file').length;
  const folders = entries.length - files;
  return [
    folders || !files ? plural(folders, `${what} staging folder`, `${what} staging folders`) : '',
    files ? plural(files, 'stray owner file', 'stray owner files') : '',
  ]
    .filter(Boolean)
    .join(' and ');
}

export function registerCleanStaging(models: Command): void {
  models
    .command('clean-staging')
    .description(
      'remove the staging folders (<model>/.staging-<version>-…) that interrupted publishes (train, refit-head, import-weights, calibrate, quantize, ' +
        'export-onnx, fit-population, fit-population-head, models repack) left behind, and say how much space that frees; a publish still in progress keeps its folder',
    )
    .option('--models <dir>', 'models folder: its model folders (and the folder itself) are searched', 'models')
    .option('--dry-run', 'list what would be removed and what is kept, remove nothing')
    .option(
      '--older-than <duration>',
      `a folder whose owner this machine cannot ask (another machine or container, or no owner file) is stale after this long without a sign of life (e.g. 30m, 6h, 2d)`,
      `${DEFAULT_STALE_AFTER_MS / 3600_000}h`,
    )
    .option('--json', 'print {dryRun, removed, kept, failed, freedBytes} as JSON')
    .addHelpText(
      'after',
      '\nEvery publish writes <folder>.owner beside its staging folder (pid, hostname, machine and boot id, process start time) and touches it\n' +
        'every minute. A folder whose owner ran on this machine is stale once that process is gone (or the machine restarted); while the\n' +
        'process lives the folder is kept, however long it takes. An owner on another machine sharing the folder cannot be asked: its\n' +
        'folder is stale after --older-than without a heartbeat or a file written. Every publish also does this first in its own model\n' +
        'folder, so leftovers go by themselves; this command is for doing it now, or for seeing what is there (--dry-run).',
    )
    .action(
      action(async (o: { models: string; dryRun?: boolean; olderThan: string; json?: boolean }) => {
        const olderThanMs = parseAge('--older-than', o.olderThan);
        const parents = stagingParents(o.models);
        const total: StagingCleanup = { removed: [], kept: [], failed: [], freedBytes: 0 };
        for (const dir of parents) {
          const r = await cleanStaging(dir, { olderThanMs, dryRun: o.dryRun });
          total.removed.push(...r.removed);
          total.kept.push(...r.kept);
          total.failed.push(...r.failed);
          total.freedBytes += r.freedBytes;
        }
        const root = resolve(o.models);
        if (o.json) {
          const entry = (e: StagingEntry) => ({ path: e.path, kind: e.kind, reason: e.reason, bytes: e.bytes, owner: e.owner });
          process.stdout.write(
            `${JSON.stringify({
              dryRun: Boolean(o.dryRun),
              removed: total.removed.map(entry),
              kept: total.kept.map(entry),
              failed: total.failed.map((f) => ({ ...entry(f.entry), error: f.error })),
              freedBytes: total.freedBytes,
            })}\n`,
          );
        } else {
          for (const line of cleanupLines(total, { dryRun: o.dryRun })) process.stdout.write(`${line}\n`);
          for (const e of total.kept) process.stdout.write(`kept staging ${e.kind} ${e.path} (${e.reason})\n`);
          const kept = total.kept.length ? `; kept ${countEntries(total.kept, 'live')}` : '';
          if (total.removed.length === 0) process.stdout.write(`no stale staging folders under ${root}${kept}\n`);
          else if (o.dryRun)
            process.stdout.write(
              `would remove ${countEntries(total.removed, 'stale')} under ${root}, freeing ${formatBytes(total.freedBytes)}${kept} (dry run: nothing was removed)\n`,
            );
          else process.stdout.write(`removed ${countEntries(total.removed, 'stale')} under ${root}, freed ${formatBytes(total.freedBytes)}${kept}\n`);
        }
        if (total.failed.length > 0)
          throw new CxrError(
            'E_CONFLICT',
            `could not remove ${countEntries(
              total.failed.map((f) => f.entry),
              'stale',
            )}: ${total.failed.map((f) => `${f.entry.path} (${f.error})`).join(', ')}`,
          );
      }),
    );
}
