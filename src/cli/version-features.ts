/**
 * A classifier version's own served features from refit-head caches, as fit-population and
 * fit-population-head read them: every cache merged, refused when empty, when its width is not
 * what the version's graph serves (`pooled` for a multi-scale head, else the final features), or
 * when its crops were matched to another intensity reference than the version's.
 */
import { resolve } from 'node:path';
import type { DatasetSplit } from '../data/split.js';
import { CxrError } from '../errors.js';
import type { ModelManifest } from '../ml/model-store/index.js';
import { readFeatureCache, type FeatureRow } from '../ml/train/feature-cache.js';
import { intensityTag } from './intensity-reference.js';

/**
 * `split`: the version's split.csv, which decides each film's subset (a cache keeps the subset it
 * was extracted under, which another split may call otherwise: fitting on the cache's would train
 * on films the version calls test). Films the split does not name are left out.
 */
export async function readVersionFeatures(manifest: ModelManifest, caches: readonly string[], split: DatasetSplit | null): Promise<Map<string, FeatureRow>> {
  const rows = new Map<string, FeatureRow>();
  for (const c of caches) await readFeatureCache(resolve(c), rows);
  if (rows.size === 0) throw new CxrError('E_BAD_ARGUMENT', `no feature rows in ${caches.join(', ')}`);
  for (const [id, r] of rows)
    if (!Array.isArray(r.views) || r.views.length === 0) throw new CxrError('E_BAD_ARGUMENT', `feature cache row '${id}' holds no views: extract it again`);
  // crops matched to another reference (or to none) give other features than the version serves
  const tag = intensityTag(manifest.intensity);
  const foreign = [...rows.values()].filter((r) => (r.intensity ?? 'none') !== tag).length;
  if (foreign > 0)
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `${foreign} cached feature rows were extracted with ${tag === 'none' ? 'an intensity reference' : 'another intensity reference or none'}, and ${manifest.version} ${tag === 'none' ? 'matches none' : `matches its crops to reference ${tag}`}: extract with this version`,
    );
  const outputs = manifest.onnx?.outputs ?? [];
  const served = outputs.find((x) => x.name === 'pooled') ?? outputs.find((x) => x.name === 'features');
  const cacheWidth = rows.values().next().value!.views[0].length;
  if (served && cacheWidth !== Number(served.shape[1]))
    throw new CxrError(
      'E_BAD_ARGUMENT',
      `the cache holds ${cacheWidth} features per view, ${manifest.version} serves ${served.shape[1]} (${served.name}): extract with this version`,
    );
  if (split) {
    const subset = new Map(split.assignments.map((a) => [a.file, a.split]));
    for (const [id, r] of rows) {
      const s = subset.get(id);
      if (s === undefined) rows.delete(id);
      else r.split = s;
    }
    if (rows.size === 0) throw new CxrError('E_BAD_ARGUMENT', `no cached film is in the version's split.csv: extract with this version's split`);
  }
  return rows;
}
