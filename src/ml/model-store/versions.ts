/**
 * Version resolution and the ACTIVE file.
 *
 * `models/<name>/ACTIVE` names the version the service serves. Format: UTF-8 text whose first
 * line that is neither empty nor a `#` comment is the version folder name (e.g.
 * `v20261129-152734`); anything after it is ignored. Without the file the newest version (by
 * createdAt, then name) is served. It is written atomically (temp file + rename).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { CxrError } from '../../errors.js';
import { assertManifest, MANIFEST_FILE, MODEL_NAMES, ONNX_FILE, readManifest, type ModelManifest, type ModelName } from './manifest.js';

export const ACTIVE_FILE = 'ACTIVE';

/** Version folder names: what ACTIVE and the API accept (no path separators, no dot files). */
export const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A sortable version name from a date: 2025-01-31T12:34:56Z → v20250131-123456. */
export function versionFromDate(d: Date): string {
  const iso = d.toISOString();
  return `v${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}`;
}

export interface VersionEntry {
  name: ModelName;
  version: string;
  dir: string;
  manifest: ModelManifest;
}

/** Every published version of `name` under a models folder, oldest first (createdAt, then name). */
export async function listVersions(modelsDir: string, name: ModelName): Promise<VersionEntry[]> {
  const base = join(resolve(modelsDir), name);
  if (!existsSync(base) || !(await stat(base)).isDirectory()) return [];
  const out: VersionEntry[] = [];
  for (const entry of await readdir(base, { withFileTypes: true })) {
    const dir = join(base, entry.name);
    // a version may be a symlink to a folder elsewhere (deployments often link the shipped ones);
    // dot folders are versions being written (see stage.ts)
    if (entry.name.startsWith('.') || !(entry.isDirectory() || entry.isSymbolicLink()) || !existsSync(join(dir, MANIFEST_FILE))) continue;
    out.push({ name, version: entry.name, dir, manifest: await readManifest(dir) });
  }
  return out.sort((a, b) =>
    a.manifest.createdAt === b.manifest.createdAt ? a.version.localeCompare(b.version) : a.manifest.createdAt.localeCompare(b.manifest.createdAt),
  );
}

/**
 * Finds a model version folder. `root` may be a version folder itself (it holds
 * manifest.json), or a models folder holding `<name>/<version>/`; then `version` picks one,
 * or the newest by createdAt (ties by version name) is taken.
 */
export async function resolveModelVersion(root: string, name: ModelName, version?: string): Promise<string> {
  if (existsSync(join(root, MANIFEST_FILE))) return root;
  const base = join(root, name);
  if (version) {
    const dir = join(base, version);
    if (!VERSION_NAME.test(version) || !existsSync(join(dir, MANIFEST_FILE)))
      throw new CxrError('E_MODEL_MISSING', `no ${name} version '${version}' in ${root}`);
    return dir;
  }
  if (!existsSync(base) || !(await stat(base)).isDirectory()) throw new CxrError('E_MODEL_MISSING', `no ${name} models in ${root}`);
  const all = await listVersions(root, name);
  if (all.length === 0) throw new CxrError('E_MODEL_MISSING', `no ${name} version with a ${MANIFEST_FILE} in ${base}`);
  return all[all.length - 1].dir;
}

/** ACTIVE's text; a folder or an unreadable file in its place is E_MODEL_INVALID naming it. */
async function readActiveText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new CxrError('E_MODEL_INVALID', `${path} cannot be read as the ACTIVE file (${e.code ?? e.message}): it must be a text file naming a version`);
  });
}

/** The version ACTIVE names, or null without the file. */
export async function readActive(modelsDir: string, name: ModelName): Promise<string | null> {
  const path = join(resolve(modelsDir), name, ACTIVE_FILE);
  if (!existsSync(path)) return null;
  const line = (await readActiveText(path))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0 && !l.startsWith('#'));
  if (!line) throw new CxrError('E_MODEL_INVALID', `${path} is empty: write the version to serve into it`);
  if (!VERSION_NAME.test(line)) throw new CxrError('E_MODEL_INVALID', `${path} names '${line}', which is not a version folder name`);
  return line;
}

/**
 * Writes ACTIVE atomically (null removes it). Returns the previous text (null: there was no
 * file), which restoreActive puts back.
 */
export async function writeActive(modelsDir: string, name: ModelName, version: string | null): Promise<string | null> {
  const path = join(resolve(modelsDir), name, ACTIVE_FILE);
  const previous = existsSync(path) ? await readActiveText(path) : null;
  if (version !== null && !VERSION_NAME.test(version)) throw new CxrError('E_BAD_ARGUMENT', `'${version}' is not a version folder name`);
  await restoreActive(modelsDir, name, version === null ? null : `${version}\n`);
  return previous;
}

/** Puts ACTIVE's text back as it was (null: no file). */
export async function restoreActive(modelsDir: string, name: ModelName, text: string | null): Promise<void> {
  const path = join(resolve(modelsDir), name, ACTIVE_FILE);
  if (text === null) {
    await rm(path, { force: true });
    return;
  }
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new CxrError('E_CONFLICT', `cannot record the active version in ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function howToShip(name: ModelName, modelsDir: string): string {
  return (
    `train one with \`cxr-triage train ${name} --data DIR --out ${join(modelsDir, name)}\`, ` +
    `then \`cxr-triage export-onnx --model ${join(modelsDir, name, '<version>')}\` writes a revision of it with model.onnx`
  );
}

/** The version folder to serve: the one ACTIVE names, else the newest. */
export async function locateModelVersion(modelsDir: string, name: ModelName): Promise<string> {
  const root = resolve(modelsDir);
  const activeFile = join(root, name, ACTIVE_FILE);
  const version = (await readActive(root, name)) ?? undefined;
  try {
    return await resolveModelVersion(root, name, version);
  } catch (e) {
    if (e instanceof CxrError && e.code === 'E_MODEL_MISSING') {
      const what = version ? `the ${name} version '${version}' named in ${activeFile} is not` : `no ${name} model version is`;
      throw new CxrError('E_MODEL_MISSING', `${what} under ${root} (a folder with model.json, model.onnx and manifest.json): ${howToShip(name, modelsDir)}`);
    }
    throw e;
  }
}

/** The not-a-version-folder message, with how to make one. */
export function notAVersion(dir: string, name: ModelName, modelsDir: string): CxrError {
  return new CxrError('E_MODEL_MISSING', `${dir} is not a model version folder (no ${MANIFEST_FILE}): ${howToShip(name, modelsDir)}`);
}

/**
 * Checks that `<modelsDir>/<name>/<version>` can be served: a name the service knows, a
 * published version whose files match its manifest, with model.onnx (or only its int8 model).
 */
export async function servableVersion(modelsDir: string, name: string, version: string): Promise<VersionEntry> {
  if (!(MODEL_NAMES as readonly string[]).includes(name)) throw new CxrError('E_NOT_FOUND', `no model '${name}' (models are ${MODEL_NAMES.join(', ')})`);
  const dir = join(resolve(modelsDir), name, version);
  if (!VERSION_NAME.test(version) || !existsSync(join(dir, MANIFEST_FILE)))
    throw new CxrError('E_NOT_FOUND', `no ${name} version '${version}' in ${modelsDir}`);
  const manifest = await assertManifest(dir);
  // a version shipped with only its int8 model (quantize --drop-float) rebuilds float on demand
  const q = manifest.quantization;
  const int8Only = q !== undefined && Boolean(manifest.files[q.file]) && q.float?.shipped === false;
  if (!manifest.files[ONNX_FILE] && !int8Only)
    throw new CxrError(
      'E_MODEL_MISSING',
      `${dir} has no ${ONNX_FILE}: run \`cxr-triage export-onnx --model ${dir}\` (it writes a revision of it with model.onnx) and activate that`,
    );
  return { name: name as ModelName, version, dir, manifest };
}

/**
 * Makes `version` the active `name` on disk, the one step the CLI (`models activate`) and the
 * admin API share. Every model's ACTIVE is written: without one the newest version would
 * load, and activating the classifier must not quietly change the segmenter too; `pinned`
 * gives the others' versions (default: what they resolve to now). Returns a function that
 * puts every ACTIVE back as it was.
 */
export async function activateOnDisk(
  modelsDir: string,
  name: string,
  version: string,
  pinned: Partial<Record<ModelName, string>> = {},
): Promise<{ entry: VersionEntry; restore: () => Promise<void> }> {
  const entry = await servableVersion(modelsDir, name, version);
  const wanted = new Map<ModelName, string>();
  for (const n of MODEL_NAMES) {
    if (n === entry.name) wanted.set(n, version);
    else if (pinned[n]) wanted.set(n, pinned[n]);
    else if (existsSync(join(resolve(modelsDir), n))) {
      const current = await locateModelVersion(modelsDir, n).catch(() => null);
      if (current) wanted.set(n, basename(current));
    }
  }
  const previous = new Map<ModelName, string | null>();
  const restore = async () => {
    for (const [n, text] of previous) await restoreActive(modelsDir, n, text);
  };
  try {
    for (const [n, v] of wanted) previous.set(n, await writeActive(modelsDir, n, v));
  } catch (e) {
    await restore();
    throw e;
  }
  return { entry, restore };
}
