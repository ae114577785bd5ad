/**
 * Staging folders: who owns one, and removing those their publish left behind.
 *
 * stageVersion (stage.ts) builds a version in `<modelDir>/.staging-<version>-<hex>/` and renames
 * it into place when complete. A publish stopped before that (Ctrl-C in a command that does not
 * catch it, SIGTERM, kill -9, a crash, a power cut) leaves the folder behind. It is never listed
 * or served (listVersions skips dot folders, and no version name, ACTIVE line or API path may
 * start with a dot), but it can hold tens of MB inside models/.
 *
 * Before the folder is made, the publish writes an owner file beside it, `<folder>.owner` (JSON:
 * pid, hostname, start time, and where /proc has them, i.e. on Linux: the machine id, the boot
 * id, the pid namespace and the kernel's start time of the process), and touches it every
 * minute while it runs (a heartbeat). The rule, in this order:
 *
 * - `<folder>.removing` is always stale: only a cleanup makes it (it claims a folder by renaming
 *   it first, so that two cleanups never both count it, and a cleanup killed midway leaves it).
 * - An owner on THIS machine (same hostname and machine id) and in this pid namespace (not
 *   another container) is asked directly. Stale when the machine has restarted since (boot id
 *   differs), when no process has its pid (kill(pid, 0) says ESRCH), or when the process with
 *   that pid started at another time (the pid was reused). Otherwise it is live, however long it
 *   has run: a training run's finalize or a quantization can hold the event loop for minutes, and
 *   a heartbeat gap proves nothing while the process still answers. A pid we cannot tell apart
 *   from its owner (no /proc) keeps the folder: a wrong "live" costs disk space until the next
 *   cleanup, a wrong "stale" destroys someone's publish.
 * - An owner on ANOTHER machine sharing the folder (NFS, a volume mounted into several
 *   containers), or a folder without a readable owner file (made before owner files existed):
 *   its pid means nothing here, so only time tells. Stale when nothing shows it alive, neither
 *   the heartbeat nor any file written in the folder, for `olderThanMs` (default 6 hours: the
 *   heartbeat beats every minute, so that is hundreds of missed beats, far beyond any pause a
 *   live publish makes). A publish on another machine that stalls longer than that loses its
 *   folder and fails when it renames; it cannot publish anything half-written.
 *
 * An owner file without its folder (the publish was stopped between the two, or after its
 * rename) goes by the same rule.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

export const STAGING_PREFIX = '.staging-';
export const OWNER_SUFFIX = '.owner';
export const REMOVING_SUFFIX = '.removing';
/** How long a folder whose owner cannot be asked must show no sign of life to count as stale. */
export const DEFAULT_STALE_AFTER_MS = 6 * 3600_000;
/** How often a publish touches its owner file. */
export const HEARTBEAT_MS = 60_000;

export interface StagingOwner {
  pid: number;
  hostname: string;
  /** ISO time the staging folder was made */
  startedAt: string;
  version: string;
  /** /etc/machine-id: tells two machines that share a hostname apart */
  machineId?: string;
  /** /proc/sys/kernel/random/boot_id: changes at every restart */
  bootId?: string;
  /** /proc/self/ns/pid: containers on one machine have their own pids */
  pidNamespace?: string;
  /** field 22 of /proc/<pid>/stat (clock ticks after boot): tells a reused pid apart */
  processStart?: string;
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The kernel's start time of a process, or undefined without /proc (or without the process). */
function processStartOf(pid: number): string | undefined {
  const stat = readTrimmed(`/proc/${pid}/stat`);
  // the command name (field 2) is in parentheses and may hold spaces: count after the last ')'
  const rest = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest?.[19];
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** This process as the owner of a staging folder for `version`. */
export function currentOwner(version: string, now = new Date()): StagingOwner {
  const owner: StagingOwner = { pid: process.pid, hostname: hostname(), startedAt: now.toISOString(), version };
  const extra = {
    machineId: readTrimmed('/etc/machine-id'),
    bootId: readTrimmed('/proc/sys/kernel/random/boot_id'),
    pidNamespace: pidNamespace(),
    processStart: processStartOf(process.pid),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (owner as unknown as Record<string, string>)[k] = v;
  return owner;
}

/** Writes `<dir>.owner` (refusing one that exists) and starts its heartbeat; stop() ends the beat and removes the file. */
export async function claimStaging(dir: string, version: string): Promise<{ stop: () => Promise<void> }> {
  const file = `${dir}${OWNER_SUFFIX}`;
  await writeFile(file, `${JSON.stringify(currentOwner(version))}\n`, { flag: 'wx', mode: 0o644 });
  const beat = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  beat.unref();
  return {
    async stop() {
      clearInterval(beat);
      await rm(file, { force: true });
    },
  };
}

function parseOwner(text: string): StagingOwner | null {
  try {
    const o = JSON.parse(text) as Partial<StagingOwner>;
    if (!Number.isInteger(o.pid) || (o.pid as number) <= 0 || typeof o.hostname !== 'string' || typeof o.startedAt !== 'string') return null;
    return o as StagingOwner;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists here (EPERM: it does, owned by another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type StagingVerdict = { stale: true; reason: string } | { stale: false; reason: string };

const ago = (ms: number) =>
  ms >= 7200_000 ? `${(ms / 3600_000).toFixed(1)} h` : ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;

/**
 * The rule in the header, for one owner record (null: no readable owner file) and the last sign
 * of life (the newest mtime of the owner file and of everything in the folder).
 */
export function judgeOwner(owner: StagingOwner | null, lastSignOfLife: number, o: { olderThanMs?: number; now?: number } = {}): StagingVerdict {
  const olderThan = o.olderThanMs ?? DEFAULT_STALE_AFTER_MS;
  const quiet = (o.now ?? Date.now()) - lastSignOfLife;
  const me = currentOwner('');
  const sameMachine = owner !== null && owner.hostname === me.hostname && owner.machineId === me.machineId;
  if (owner !== null && sameMachine && owner.pidNamespace === me.pidNamespace) {
    const who = `process ${owner.pid} on ${owner.hostname}`;
    if (owner.bootId && me.bootId && owner.bootId !== me.bootId) return { stale: true, reason: `${who} ran before this machine restarted` };
    if (!pidAlive(owner.pid)) return { stale: true, reason: `${who} is gone` };
    const start = processStartOf(owner.pid);
    if (owner.processStart && start && owner.processStart !== start) return { stale: true, reason: `${who} is gone (its pid now belongs to another process)` };
    return { stale: false, reason: `a publish in progress: ${who}, started ${owner.startedAt}` };
  }
  const who =
    owner === null ? 'no owner file' : `process ${owner.pid} on ${owner.hostname}${sameMachine ? ' (another container)' : ''}, which this machine cannot ask`;
  if (quiet >= olderThan) return { stale: true, reason: `${who}; no sign of life for ${ago(quiet)}` };
  return { stale: false, reason: `${who}; written to ${ago(Math.max(0, quiet))} ago, under ${ago(olderThan)}: perhaps a publish in progress` };
}

/** Bytes and newest mtime of everything under `path` (symbolic links not followed). */
async function measure(path: string): Promise<{ bytes: number; newest: number }> {
  let bytes = 0;
  let newest = 0;
  const walk = async (p: string) => {
    const s = await lstat(p).catch(() => null);
    if (!s) return;
    bytes += s.isDirectory() ? 0 : s.size;
    newest = Math.max(newest, s.mtimeMs);
    if (s.isDirectory()) for (const e of await readdir(p).catch(() => [] as string[])) await walk(join(p, e));
  };
  await walk(path);
  return { bytes, newest };
}

export interface StagingEntry {
  /** the staging folder, or the owner file for one without its folder */
  path: string;
  kind: 'folder' | 'owner file' | 'interrupted removal';
  stale: boolean;
  reason: string;
  /** bytes of its files, owner file included */
  bytes: number;
  owner: StagingOwner | null;
}

/** Every staging folder (and stray owner file) directly in `modelDir`, judged by the rule in the header. */
export async function findStaging(modelDir: string, o: { olderThanMs?: number; now?: number } = {}): Promise<StagingEntry[]> {
  const base = resolve(modelDir);
  if (!existsSync(base) || !(await stat(base)).isDirectory()) return [];
  const names = (await readdir(base)).filter((n) => n.startsWith(STAGING_PREFIX)).sort();
  const out: StagingEntry[] = [];
  for (const name of names) {
    const path = join(base, name);
    if (name.endsWith(REMOVING_SUFFIX)) {
      out.push({ path, kind: 'interrupted removal', stale: true, reason: 'a removal that was interrupted', bytes: (await measure(path)).bytes, owner: null });
      continue;
    }
    const isOwner = name.endsWith(OWNER_SUFFIX);
    const folder = isOwner ? path.slice(0, -OWNER_SUFFIX.length) : path;
    if (isOwner && names.includes(name.slice(0, -OWNER_SUFFIX.length))) continue; // judged with its folder
    const ownerFile = `${folder}${OWNER_SUFFIX}`;
    const owner = parseOwner(await readFile(ownerFile, 'utf8').catch(() => ''));
    const ownerStat = await measure(ownerFile);
    const contents = isOwner ? { bytes: 0, newest: 0 } : await measure(folder);
    const verdict = judgeOwner(owner, Math.max(ownerStat.newest, contents.newest), o);
    out.push({ path, kind: isOwner ? 'owner file' : 'folder', ...verdict, bytes: contents.bytes + ownerStat.bytes, owner });
  }
  return out;
}

export interface StagingCleanup {
  removed: StagingEntry[];
  kept: StagingEntry[];
  /** folders that were stale but could not be removed, with why */
  failed: { entry: StagingEntry; error: string }[];
  freedBytes: number;
}

/**
 * Removes the stale staging folders in `modelDir` (dryRun: only says which) and keeps the live
 * ones. A folder is claimed by renaming it to `<folder>.removing` first: a second cleanup running
 * at once finds it gone and skips it, so nothing is removed or counted twice.
 */
export async function cleanStaging(modelDir: string, o: { olderThanMs?: number; now?: number; dryRun?: boolean } = {}): Promise<StagingCleanup> {
  const report: StagingCleanup = { removed: [], kept: [], failed: [], freedBytes: 0 };
  for (const entry of await findStaging(modelDir, o)) {
    if (!entry.stale) {
      report.kept.push(entry);
      continue;
    }
    if (o.dryRun) {
      report.removed.push(entry);
      report.freedBytes += entry.bytes;
      continue;
    }
    try {
      if (entry.kind === 'folder') {
        const claimed = `${entry.path}${REMOVING_SUFFIX}`;
        const won = await rename(entry.path, claimed).then(
          () => true,
          (e: NodeJS.ErrnoException) => {
            if (e.code === 'ENOENT') return false;
            throw e;
          },
        );
        if (!won) continue;
        await rm(`${entry.path}${OWNER_SUFFIX}`, { force: true });
        await rm(claimed, { recursive: true, force: true });
      } else {
        await rm(entry.path, { recursive: true, force: true });
      }
      report.removed.push(entry);
      report.freedBytes += entry.bytes;
    } catch (e) {
      report.failed.push({ entry, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
    }
  }
  return report;
}

export function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

/** One line per folder removed (or, dry run, to be removed) and per one that failed to go. */
export function cleanupLines(report: StagingCleanup, o: { dryRun?: boolean } = {}): string[] {
  const verb = o.dryRun ? 'would remove' : 'removed';
  return [
    ...report.removed.map((e) => `${verb} stale staging ${e.kind} ${e.path} (${e.reason}): ${formatBytes(e.bytes)}`),
    ...report.failed.map((f) => `could not remove stale staging ${f.entry.kind} ${f.entry.path} (${f.entry.reason}): ${f.error}`),
  ];
}

/**
 * What a publish runs first in its model folder: removes what interrupted publishes left there,
 * reports it through `log`, and never fails the publish (a folder it cannot remove is reported).
 */
export async function removeStaleStaging(modelDir: string, log: (line: string) => void): Promise<StagingCleanup | null> {
  try {
    const report = await cleanStaging(modelDir);
    for (const line of cleanupLines(report)) log(line);
    if (report.removed.length > 1)
      log(`removed ${report.removed.length} stale staging entries in ${resolve(modelDir)}: freed ${formatBytes(report.freedBytes)}`);
    return report;
  } catch (e) {
    log(`could not look for stale staging folders in ${resolve(modelDir)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return null;
  }
}
