/** Model versions: every prediction names the exact segmenter and classifier that made it. */
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import type { DataSource, EntityManager } from 'typeorm';
import { CxrError } from '../errors.js';
import { canonicalJson, decisionDifferences, type ModelManifest } from '../ml/model-store/index.js';
import { ModelVersionEntity, type ModelKind, type ModelVersionRow } from './entities.js';

export interface ModelToRegister {
  kind: ModelKind;
  name: string;
  version: string;
  sha256: string;
  manifest: Record<string, unknown>;
}

/**
 * Records a model version (once) and returns its row. A version whose model.onnx hash differs
 * from the recorded one is refused: history would otherwise attribute predictions to weights
 * that never made them.
 */
export async function registerModel(ds: DataSource, m: ModelToRegister): Promise<ModelVersionRow> {
  const repo = ds.getRepository(ModelVersionEntity);
  await ds
    .createQueryBuilder()
    .insert()
    .into(ModelVersionEntity)
    .values({ ...m, active: false, registeredAt: new Date(), activatedAt: null } as QueryDeepPartialEntity<ModelVersionRow>)
    .orIgnore()
    .execute();
  const row = await repo.findOneByOrFail({ name: m.name, version: m.version });
  if (row.sha256 !== m.sha256) {
    throw new CxrError(
      'E_MODEL_INVALID',
      `model ${m.name}@${m.version} has sha256 ${m.sha256.slice(0, 12)}… but was recorded with ${row.sha256.slice(0, 12)}…; ship changed weights as a new version`,
    );
  }
  if (row.kind !== m.kind) throw new CxrError('E_MODEL_INVALID', `model ${m.name}@${m.version} was recorded as a ${row.kind}, not a ${m.kind}`);
  return agreeWithFiles(ds, row, m);
}

/**
 * The files are the source of truth and the registry mirrors them: a version whose decision rule
 * (thresholds, calibrations, uncertainty bounds, file hashes, architecture) on disk differs from what was registered is refused,
 * because predictions already made under that name were made by the registered rule. Provenance
 * reworded on disk (e.g. paths made portable) is copied into the row.
 */
async function agreeWithFiles(ds: DataSource, row: ModelVersionRow, m: ModelToRegister): Promise<ModelVersionRow> {
  const recorded = row.manifest as Partial<ModelManifest>;
  const onDisk = m.manifest as Partial<ModelManifest>;
  if (Object.keys(recorded).length === 0 || Object.keys(onDisk).length === 0) return row;
  const diff = decisionDifferences(recorded, onDisk);
  if (diff.length > 0) {
    throw new CxrError(
      'E_MODEL_INVALID',
      `model ${m.name}@${m.version} on disk differs from the registered one (${diff.join('; ')}): versions are immutable, ` +
        'so put the registered files back and ship the change as a new version (`cxr-triage calibrate` writes one)',
    );
  }
  if (canonicalJson(recorded) !== canonicalJson(onDisk)) {
    await ds.query(`UPDATE model_versions SET manifest = $1 WHERE id = $2`, [JSON.stringify(m.manifest), row.id]);
    return { ...row, manifest: m.manifest };
  }
  return row;
}

/** Makes one version the active one of its kind (deactivating the other in the same transaction). */
export async function markActive(ds: DataSource, id: number): Promise<void> {
  await ds.transaction((t) => markActiveIn(t, id));
}

/** markActive inside the caller's transaction (a promotion commits it with its audit row). */
export async function markActiveIn(t: EntityManager, id: number): Promise<void> {
  const row = await t.getRepository(ModelVersionEntity).findOneByOrFail({ id });
  await t.query(`UPDATE model_versions SET active = false WHERE kind = $1 AND active AND id <> $2`, [row.kind, id]);
  await t.query(`UPDATE model_versions SET active = true, activated_at = now() WHERE id = $1 AND NOT active`, [id]);
}

/**
 * Marks a version active only when no version of its kind is: a process starting on a database
 * whose registry already names the active version must not overwrite it (a promotion made while
 * it was down would be undone). Returns whether it marked it. Two processes starting together on
 * an empty registry with different versions: one wins, the other's update breaks the one-active
 * index and is answered false (its workers then follow the registry).
 */
export async function markActiveIfNone(ds: DataSource, id: number): Promise<boolean> {
  try {
    const [rows]: [unknown[], number] = await ds.query(
      `UPDATE model_versions mv SET active = true, activated_at = now()
        WHERE mv.id = $1 AND NOT mv.active
          AND NOT EXISTS (SELECT 1 FROM model_versions o WHERE o.kind = mv.kind AND o.active)
        RETURNING mv.id`,
      [id],
    );
    return rows.length > 0;
  } catch (e) {
    const err = e as { code?: string; driverError?: { code?: string } };
    if ((err.driverError?.code ?? err.code) === '23505') return false;
    throw e;
  }
}

/** The versions the registry marks active (at most one per kind). */
export async function activeModels(q: Pick<DataSource, 'query'>): Promise<{ kind: ModelKind; name: string; version: string }[]> {
  return q.query(`SELECT kind, name, version FROM model_versions WHERE active ORDER BY kind`);
}

export async function listModels(ds: DataSource): Promise<ModelVersionRow[]> {
  return ds.getRepository(ModelVersionEntity).find({ order: { kind: 'ASC', name: 'ASC', registeredAt: 'ASC' } });
}

export async function findModel(ds: DataSource, name: string, version: string): Promise<ModelVersionRow | null> {
  return ds.getRepository(ModelVersionEntity).findOneBy({ name, version });
}
