/**
 * Setting a site's own drift baseline: an operator accepts a window of one classifier version's
 * predictions here (after the site's own review of that period) as what "no drift" looks like,
 * and /metrics compares recent predictions with it instead of with validation.
 */
import type { DataSource, EntityManager } from 'typeorm';
import { CxrError } from '../errors.js';
import { countBaselineWindow, deleteBaseline, readBaseline, saveBaseline, type StoredBaseline } from '../db/drift-baselines.js';
import { findModel } from '../db/models.js';
import type { ModelVersionRow } from '../db/entities.js';

/** Fewer predictions than this make histograms of 10 bins too noisy to hold others against. */
export const DEFAULT_BASELINE_MIN = 200;
export const DEFAULT_BASELINE_DAYS = 30;

export interface BaselineTarget {
  ds: DataSource;
  name: string;
  version: string;
  by: string;
  /** writes the audit row inside the transaction that changes the baseline */
  audit: (m: EntityManager, detail: Record<string, unknown>) => Promise<void>;
}

async function registeredClassifier(ds: DataSource, name: string, version: string): Promise<ModelVersionRow> {
  if (name !== 'classifier') throw new CxrError('E_BAD_ARGUMENT', `a drift baseline belongs to a classifier version, not to ${name}@${version}`);
  const row = await findModel(ds, name, version);
  if (!row) throw new CxrError('E_NOT_FOUND', `${name}@${version} is not in this service's registry: it has scored nothing here`);
  return row;
}

export async function setDriftBaseline(
  o: BaselineTarget & { from: Date; to: Date; minStudies: number },
): Promise<{ baseline: StoredBaseline; previous: StoredBaseline | null }> {
  if (!(o.to.getTime() > o.from.getTime()))
    throw new CxrError('E_BAD_ARGUMENT', `the window must end after it starts (${o.from.toISOString()} to ${o.to.toISOString()})`);
  const row = await registeredClassifier(o.ds, o.name, o.version);
  return o.ds.transaction(async (m) => {
    const counts = await countBaselineWindow(m, row.id, o.from, o.to);
    if (counts.n < o.minStudies)
      throw new CxrError(
        'E_BAD_ARGUMENT',
        `${o.name}@${o.version} made ${counts.n} predictions from ${o.from.toISOString()} to ${o.to.toISOString()}; a baseline needs at least ${o.minStudies} (--min)`,
      );
    const previous = await readBaseline(m, row.id);
    const baseline: StoredBaseline = { ...counts, from: o.from, to: o.to, setBy: o.by, setAt: new Date() };
    await saveBaseline(m, row.id, baseline);
    await o.audit(m, {
      model: `${o.name}@${o.version}`,
      from: o.from.toISOString(),
      to: o.to.toISOString(),
      n: counts.n,
      positive: counts.positive,
      replaced: previous !== null,
    });
    return { baseline, previous };
  });
}

/** Back to validation's reference; whether there was a baseline to remove. */
export async function clearDriftBaseline(o: BaselineTarget): Promise<boolean> {
  const row = await registeredClassifier(o.ds, o.name, o.version);
  return o.ds.transaction(async (m) => {
    const removed = await deleteBaseline(m, row.id);
    if (removed) await o.audit(m, { model: `${o.name}@${o.version}` });
    return removed;
  });
}

export async function showDriftBaseline(ds: DataSource, name: string, version: string): Promise<StoredBaseline | null> {
  const row = await registeredClassifier(ds, name, version);
  return readBaseline(ds, row.id);
}
