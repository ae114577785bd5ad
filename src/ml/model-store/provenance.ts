/**
 * Portable provenance: a manifest says where its data came from relative to a named root
 * (`{"root":"shared","path":"data/nih-cxr8-pneumonia"}`), never as an absolute path of the
 * training machine, and records the code and library versions that produced it.
 *
 * Roots: `repo` (this checkout), `shared` (CXR_SHARED_DIR, else the checkout's ../shared),
 * `models` (the models folder a version lives in), `version` (the version folder itself),
 * and any a site names in CXR_DATA_ROOTS=name=/path,other=/path. A path under none of them is
 * recorded as `{"root":"external","path":"<folder name>"}`: the data hash still identifies it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CxrError } from '../../errors.js';

export interface PortablePath {
  /** a named root: repo, shared, models, version, external, or one of CXR_DATA_ROOTS */
  root: string;
  /** '/'-separated, relative to the root */
  path: string;
}

export interface RunEnvironment {
  /** git commit of the checkout that trained (with '-dirty' when it had uncommitted changes), null outside git */
  gitCommit: string | null;
  node: string;
  tfjs: string | null;
  onnxruntime: string | null;
  platform: string;
  /** the command line, absolute paths written as {root}/path */
  command: string[];
}

/** The checkout this code runs from (src/ml/model-store/ is three levels down). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** realpath of the nearest existing ancestor, with the rest appended (so links resolve for paths not yet made). */
function real(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(real(parent), basename(abs));
  }
}

/** The named roots of this machine, most specific first when one lies inside another. */
export function dataRoots(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const roots: Record<string, string> = {
    repo: REPO_ROOT,
    shared: env.CXR_SHARED_DIR ? resolve(env.CXR_SHARED_DIR) : join(REPO_ROOT, '..', 'shared'),
  };
  for (const part of (env.CXR_DATA_ROOTS ?? '').split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    const dir = part.slice(at + 1).trim();
    if (!/^[a-z][a-z0-9_-]*$/i.test(name) || !isAbsolute(dir)) {
      throw new CxrError('E_BAD_ARGUMENT', `CXR_DATA_ROOTS: '${part}' is not NAME=/absolute/path`);
    }
    roots[name] = dir;
  }
  return { ...roots, ...extra };
}

/** `abs` relative to the most specific named root that holds it. */
export function portablePath(abs: string, extra: Record<string, string> = {}): PortablePath {
  const target = real(abs);
  let best: PortablePath | null = null;
  let bestDepth = -1;
  for (const [root, dir] of Object.entries(dataRoots(extra))) {
    const base = real(dir);
    const rel = relative(base, target);
    if (rel.startsWith('..') || isAbsolute(rel)) continue;
    const depth = base.split(sep).length;
    if (depth > bestDepth) {
      best = { root, path: rel.split(sep).join('/') || '.' };
      bestDepth = depth;
    }
  }
  return best ?? { root: 'external', path: basename(target) };
}

/** Where a portable path is on this machine, or null when its root is not known here. */
export function resolvePortablePath(p: PortablePath, extra: Record<string, string> = {}): string | null {
  const dir = dataRoots(extra)[p.root];
  return dir ? join(dir, ...p.path.split('/')) : null;
}

export function formatPortablePath(p: PortablePath | string): string {
  return typeof p === 'string' ? p : `{${p.root}}/${p.path}`;
}

const ABSOLUTE = /^(\/|[A-Za-z]:[\\/]|\\\\)/;

/** JSON paths (e.g. training.dataDir) of string values that look like absolute file paths. */
export function findAbsolutePaths(v: unknown, at = ''): string[] {
  if (typeof v === 'string') return ABSOLUTE.test(v) ? [at || '(root)'] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => findAbsolutePaths(x, `${at}[${i}]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => findAbsolutePaths(x, at ? `${at}.${k}` : k));
  return [];
}

function packageVersion(name: string): string | null {
  const path = join(REPO_ROOT, 'node_modules', ...name.split('/'), 'package.json');
  if (!existsSync(path)) return null;
  return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? null;
}

function gitCommit(): string | null {
  try {
    const opts = { cwd: REPO_ROOT, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'] };
    const head = execFileSync('git', ['rev-parse', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim().length > 0;
    return dirty ? `${head}-dirty` : head;
  } catch {
    return null;
  }
}

/** Absolute paths in a command line written as {root}/path. */
export function portableCommand(argv: readonly string[], extra: Record<string, string> = {}): string[] {
  return argv.map((a) => {
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0 && isAbsolute(a.slice(eq + 1))) return `${a.slice(0, eq + 1)}${formatPortablePath(portablePath(a.slice(eq + 1), extra))}`;
    return isAbsolute(a) ? formatPortablePath(portablePath(a, extra)) : a;
  });
}

/** What produced a version: code commit, Node, tfjs and onnxruntime versions, the command. */
export function runEnvironment(argv: readonly string[] = process.argv.slice(2)): RunEnvironment {
  return {
    gitCommit: gitCommit(),
    node: process.version,
    tfjs: packageVersion('@tensorflow/tfjs'),
    onnxruntime: packageVersion('onnxruntime-node'),
    platform: `${process.platform}-${process.arch}`,
    command: ['cxr-triage', ...portableCommand(argv)],
  };
}
