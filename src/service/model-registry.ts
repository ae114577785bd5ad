/**
 * The registry (model_versions in PostgreSQL) and the version folders must never disagree:
 * predictions name a registered version, and an auditor reads its rule from the row while the
 * service applies the files. Every process that scores (serve, worker) checks all registered
 * versions against the models folder before it takes work, and refuses to start naming each
 * disagreement, so a rewritten or deleted version is found at start instead of by an auditor.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DataSource } from 'typeorm';
import type { ModelVersionRow } from '../db/entities.js';
import { listModels } from '../db/models.js';
import { CxrError } from '../errors.js';
import { decisionDifferences, MANIFEST_FILE, ONNX_FILE, readManifest, verifyManifest, type ModelManifest } from '../ml/model-store/index.js';

/** `+int8` rows record a version's quantized file (see inference/types.ts recordedVersion). */
const INT8_SUFFIX = '+int8';

/** The sha256 the row's file has according to the manifest on disk (null: the manifest lists none). */
function servedSha256(m: ModelManifest, int8: boolean): string | null {
  const q = m.quantization;
  if (int8) return q ? (m.files[q.file] ?? null) : null;
  return m.files[ONNX_FILE] ?? q?.float?.sha256 ?? null;
}

type FolderCheck = { manifest: ModelManifest; check: Awaited<ReturnType<typeof verifyManifest>> } | { error: string };

/** Reads and hashes a version folder once, however many rows (float and `+int8`) name it. */
function checkFolder(checked: Map<string, Promise<FolderCheck>>, dir: string): Promise<FolderCheck> {
  let c = checked.get(dir);
  if (!c) {
    c = readManifest(dir).then(
      async (manifest): Promise<FolderCheck> => ({ manifest, check: await verifyManifest(dir) }),
      (e): FolderCheck => ({ error: (e as Error).message }),
    );
    checked.set(dir, c);
  }
  return c;
}

/** What is wrong with one registered version on disk, in words (empty: it agrees). */
async function disagreements(modelsDir: string, row: ModelVersionRow, checked: Map<string, Promise<FolderCheck>>): Promise<string[]> {
  const int8 = row.version.endsWith(INT8_SUFFIX);
  const version = int8 ? row.version.slice(0, -INT8_SUFFIX.length) : row.version;
  const dir = join(modelsDir, row.name, version);
  const at = `${row.name}@${row.version}`;
  if (!existsSync(join(dir, MANIFEST_FILE))) return [`${at} is registered but its folder ${dir} (with ${MANIFEST_FILE}) is gone`];
  const folder = await checkFolder(checked, dir);
  if ('error' in folder) return [`${at}: ${folder.error}`];
  const { manifest, check } = folder;
  const out: string[] = [];
  if (check.modified.length > 0) out.push(`${at}: files changed since the manifest was written: ${check.modified.join(', ')}`);
  if (check.missing.length > 0) out.push(`${at}: files listed in the manifest are missing: ${check.missing.join(', ')}`);
  const sha = servedSha256(manifest, int8);
  if (sha !== row.sha256) {
    out.push(
      `${at}: registered with ${int8 ? 'int8 model' : ONNX_FILE} sha256 ${row.sha256.slice(0, 12)}…, the folder has ${sha ? `${sha.slice(0, 12)}…` : 'none'}`,
    );
  }
  const recorded = row.manifest as Partial<ModelManifest>;
  if (Object.keys(recorded).length > 0) {
    const diff = decisionDifferences(recorded, manifest);
    if (diff.length > 0) out.push(`${at}: decision rule on disk differs from the registered one (${diff.join('; ')})`);
  }
  return out;
}

/** Every disagreement between the registry and `modelsDir`, in words (empty: they agree). */
export async function registryDisagreements(ds: DataSource, modelsDir: string): Promise<string[]> {
  const root = resolve(modelsDir);
  const out: string[] = [];
  const checked = new Map<string, Promise<FolderCheck>>();
  for (const row of await listModels(ds)) out.push(...(await disagreements(root, row, checked)));
  return out;
}

/**
 * Throws E_MODEL_INVALID naming every disagreement. Versions are immutable: the cure is to put
 * the registered files back (a backup, the shipped folder), never to edit the row.
 */
export async function assertRegistryAgrees(ds: DataSource, modelsDir: string): Promise<void> {
  const found = await registryDisagreements(ds, modelsDir);
  if (found.length === 0) return;
  throw new CxrError(
    'E_MODEL_INVALID',
    `the model registry (model_versions in PostgreSQL) and the files under ${resolve(modelsDir)} disagree; predictions name these versions, ` +
      `so the service will not start until the registered files are back (restore them from a backup or the shipped folder; ` +
      `ship changes as new versions: \`cxr-triage calibrate\` and \`cxr-triage export-onnx\` write one). ` +
      `\`cxr-triage models list --registry\` shows both sides:\n  ${found.join('\n  ')}`,
    { disagreements: found },
  );
}
