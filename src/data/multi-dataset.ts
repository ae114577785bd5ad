/**
 * Several dataset folders as one pool (adult NIH films and pediatric Kermany films, say).
 * With one folder nothing changes. With several, every item is renamed into one namespace so
 * that nothing collides: `file` becomes `<name>/<file>` and `patientId` `<name>:<patient>`,
 * where `<name>` is the folder's base name, and `fields.source` says which folder it came
 * from (sampling weights, per-set metrics and split files all key on it).
 */
import { basename, resolve } from 'node:path';
import { CxrError } from '../errors.js';
import { loadDataset, type DatasetItem, type LoadOptions } from './dataset.js';

export interface DatasetSpec {
  dir: string;
  /** share of this set in a drawn training epoch (relative to the others; default 1) */
  weight?: number;
}

export interface LoadedSource {
  name: string;
  dir: string;
  images: number;
  weight: number;
}

/** A dataset folder's name in a pool: its base name. */
export function datasetName(dir: string): string {
  return basename(resolve(dir));
}

/** The set an item belongs to: labels.csv's `source` column, or the folder in a pool; '' otherwise. */
export function itemSource(item: Pick<DatasetItem, 'fields'>): string {
  return item.fields.source ?? '';
}

/**
 * `DIR` or `DIR:WEIGHT` (a command-line --data value); a trailing `:number` is the weight,
 * anything else is part of the path.
 */
export function parseDatasetSpec(value: string): DatasetSpec {
  const m = /^(.*):([^:/\\]*)$/.exec(value);
  if (m && m[1] !== '' && /^[0-9.eE+-]+$/.test(m[2])) {
    const weight = Number(m[2]);
    if (!(weight > 0) || !Number.isFinite(weight)) throw new CxrError('E_BAD_ARGUMENT', `--data weight must be a positive number, got '${m[2]}' in '${value}'`);
    return { dir: m[1], weight };
  }
  if (value === '') throw new CxrError('E_BAD_ARGUMENT', '--data needs a folder');
  return { dir: value };
}

/** The pooled items of several dataset folders (renamed as above), or one folder's items as they are. */
export async function loadDatasets(specs: readonly DatasetSpec[], opts: LoadOptions = {}): Promise<{ items: DatasetItem[]; sources: LoadedSource[] }> {
  if (specs.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'no dataset folder given');
  const names = specs.map((s) => datasetName(s.dir));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new CxrError('E_BAD_ARGUMENT', `two dataset folders are both named '${dup}': a pool names its sets by folder name`);
  const sources: LoadedSource[] = [];
  const items: DatasetItem[] = [];
  for (const [k, spec] of specs.entries()) {
    const ds = await loadDataset(spec.dir, opts);
    const name = names[k];
    sources.push({ name, dir: ds.dir, images: ds.items.length, weight: spec.weight ?? 1 });
    if (specs.length === 1) {
      items.push(...ds.items);
      continue;
    }
    for (const i of ds.items) {
      items.push({ ...i, file: `${name}/${i.file}`, patientId: `${name}:${i.patientId}`, fields: { ...i.fields, source: name } });
    }
  }
  return { items, sources };
}
