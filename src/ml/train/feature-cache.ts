/**
 * refit-head's feature cache: one JSON line per image with its label, set, split and each
 * TTA view's pooled features (float32, base64). Extraction appends to it, so an interrupted
 * run resumes; fit-population reads the same files.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { SplitName } from '../../data/split.js';
import { base64ToFloat32, float32ToBase64 } from '../float32-base64.js';

export interface FeatureRow {
  id: string;
  label: number;
  source: string;
  split: SplitName;
  /** pooled features per view, identity first */
  views: Float32Array[];
  /** the intensity reference the crops were matched to (refit-head's tag; absent: none, as before it existed) */
  intensity?: string;
}

/** One cache line for a row. */
export function featureCacheLine(row: FeatureRow): string {
  return JSON.stringify({ ...row, views: row.views.map(float32ToBase64) });
}

/** Features already extracted (one JSON line per image); the row with the most views wins. */
export async function readFeatureCache(path: string, into: Map<string, FeatureRow>): Promise<void> {
  if (!existsSync(path)) return;
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Omit<FeatureRow, 'views'> & { views?: string[]; f?: string };
      const views = r.views ? r.views.map(base64ToFloat32) : [base64ToFloat32(r.f!)];
      const prev = into.get(r.id);
      if (!prev || prev.views.length < views.length)
        into.set(r.id, { id: r.id, label: r.label, source: r.source, split: r.split, views, ...(r.intensity ? { intensity: r.intensity } : {}) });
    } catch {
      // a line cut short by an interrupted run: recomputed
    }
  }
}
