/**
 * Writing versions. A version is built in a hidden staging folder next to where it goes and
 * renamed into place only when complete (manifest written and verified), so a failure at any
 * point leaves no half-written version; versions are never rewritten after that. A publish that
 * is killed leaves its staging folder behind (never listed or served): the next publish into the
 * same model folder removes it, and `cxr-triage models clean-staging` does so on demand. Each
 * staging folder has an owner file beside it that tells a leftover from a publish still in
 * progress, in this process or another, on this machine or another (staging.ts has the rule).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CxrError } from '../../errors.js';
import { assertManifest, manifestDigest, readManifest, writeManifest, type ModelManifest } from './manifest.js';
import { claimStaging, removeStaleStaging, STAGING_PREFIX } from './staging.js';
import { VERSION_NAME } from './versions.js';

export interface StagedVersion {
  /** where to write the version's files now */
  dir: string;
  /** where publish() puts it */
  final: string;
  /** verifies the manifest against the files and renames the folder into place */
  publish(): Promise<string>;
  /** removes the staging folder (safe to call after publish) */
  discard(): Promise<void>;
}

export interface StageOptions {
  /** where the removal of stale staging folders is reported (default: stderr) */
  log?: (line: string) => void;
}

const toStderr = (line: string) => {
  process.stderr.write(`${line}\n`);
};

/**
 * A staging folder for `<modelDir>/<version>/`; refuses a version that already exists. First it
 * removes the staging folders that interrupted publishes left in `modelDir` (never one whose
 * publish is still running: see staging.ts).
 */
export async function stageVersion(modelDir: string, version: string, o: StageOptions = {}): Promise<StagedVersion> {
  if (!VERSION_NAME.test(version)) throw new CxrError('E_BAD_ARGUMENT', `'${version}' is not a valid version name (letters, digits, . _ -)`);
  const base = resolve(modelDir);
  const final = join(base, version);
  if (existsSync(final)) throw new CxrError('E_CONFLICT', `model version ${final} already exists: versions are never rewritten`);
  await mkdir(base, { recursive: true });
  await removeStaleStaging(base, o.log ?? toStderr);
  const dir = join(base, `${STAGING_PREFIX}${version}-${randomBytes(4).toString('hex')}`);
  // the owner file first: a staging folder never exists without one
  const owner = await claimStaging(dir, version);
  await mkdir(dir).catch(async (e) => {
    await owner.stop();
    throw e;
  });
  let published = false;
  return {
    dir,
    final,
    async publish() {
      await assertManifest(dir);
      const appeared = () =>
        new CxrError('E_CONFLICT', `model version ${final} appeared while this one was written (another run published it first): run again for the next name`);
      if (existsSync(final)) throw appeared();
      // another writer can publish the same name between the check and the rename: its folder is not empty
      await rename(dir, final).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'ENOTEMPTY' || e.code === 'EEXIST' ? appeared() : e;
      });
      published = true;
      await owner.stop();
      return final;
    },
    async discard() {
      if (!published) await rm(dir, { recursive: true, force: true });
      await owner.stop();
    },
  };
}

/** Runs `fill` on a staging folder and publishes it; on any failure the folder is removed. */
export async function writeVersion<T>(
  modelDir: string,
  version: string,
  fill: (dir: string) => Promise<T>,
  o: StageOptions = {},
): Promise<{ dir: string; result: T }> {
  const staged = await stageVersion(modelDir, version, o);
  try {
    const result = await fill(staged.dir);
    return { dir: await staged.publish(), result };
  } finally {
    await staged.discard();
  }
}

/** `v20261129-152734` → `v20261129-152734-r1`, `-r1` → the next free `-rN` in the same model folder. */
export async function nextRevisionName(modelDir: string, version: string): Promise<string> {
  const stem = version.replace(/-r\d+$/, '');
  let n = 0;
  if (existsSync(modelDir)) {
    for (const e of await readdir(modelDir)) {
      const m = e.startsWith(`${stem}-r`) ? /^-r(\d+)$/.exec(e.slice(stem.length)) : null;
      if (m) n = Math.max(n, Number(m[1]));
    }
  }
  return `${stem}-r${n + 1}`;
}

export interface DeriveOptions {
  /** new version name (default: the next `-rN` revision of the source) */
  version?: string;
  /** why: 'calibrate', 'quantize', ... */
  reason: string;
  /**
   * Called on the staging folder holding a copy of the source's files, with the source's
   * manifest (version, createdAt and derivedFrom already set for the new one); returns the
   * manifest to write. It may add or replace files in the folder.
   */
  change: (dir: string, manifest: Omit<ModelManifest, 'files'>) => Promise<Omit<ModelManifest, 'files'>>;
  now?: Date;
  /** where the removal of stale staging folders is reported (default: stderr) */
  log?: (line: string) => void;
}

/**
 * A new version from an existing one, which stays byte for byte as it was: the files are
 * copied, the change applied, `derivedFrom` records the source (with its digest), and the
 * new folder is published atomically beside the source.
 */
export async function deriveVersion(sourceDir: string, o: DeriveOptions): Promise<{ dir: string; manifest: ModelManifest }> {
  const src = resolve(sourceDir);
  const source = await assertManifest(src);
  const modelDir = dirname(src);
  const version = o.version ?? (await nextRevisionName(modelDir, basename(src)));
  const now = o.now ?? new Date();
  const { dir } = await writeVersion(
    modelDir,
    version,
    async (stage) => {
      for (const rel of Object.keys(source.files)) {
        await mkdir(dirname(join(stage, rel)), { recursive: true });
        await copyFile(join(src, rel), join(stage, rel));
      }
      const { files: _files, ...rest } = source;
      const base: Omit<ModelManifest, 'files'> = {
        ...rest,
        version,
        createdAt: now.toISOString(),
        derivedFrom: { name: source.name, version: source.version, digest: manifestDigest(source), reason: o.reason, at: now.toISOString() },
      };
      return writeManifest(stage, await o.change(stage, base));
    },
    { log: o.log },
  );
  return { dir, manifest: await readManifest(dir) };
}
