/**
 * A content hash of a dataset for model manifests: SHA-256 over its labels (file, label,
 * patient) and the SHA-256 of every image and mask file, in file-name order. Renaming a
 * column order or re-saving labels.csv does not change it; changing a pixel, a label or a
 * patient does.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { loadDataset, type DatasetItem } from './dataset.js';

export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function hashItems(items: readonly DatasetItem[]): Promise<{ sha256: string; count: number }> {
  const sorted = [...items].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const h = createHash('sha256');
  for (const it of sorted) {
    const img = await fileSha256(it.path);
    const mask = it.mask ? await fileSha256(it.mask) : '';
    h.update(`${it.file}\t${it.label}\t${it.patientId}\t${img}\t${mask}\n`);
  }
  return { sha256: h.digest('hex'), count: sorted.length };
}

export async function datasetHash(dir: string): Promise<{ sha256: string; count: number }> {
  const ds = await loadDataset(dir, { checkMaskSizes: false });
  return hashItems(ds.items);
}
