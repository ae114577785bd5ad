/**
 * A contact sheet of a dataset folder's first images (any dataset: synthetic DICOM with
 * masks, or PNG/JPEG without), windowed as the models see them, mask outlines drawn.
 */
import { contactSheetPng, type SheetOptions } from './contact-sheet.js';
import { loadDataset, readSample } from './dataset.js';

export async function previewDataset(dir: string, opts: SheetOptions & { count?: number } = {}): Promise<Buffer> {
  const ds = await loadDataset(dir, { checkMaskSizes: false });
  const tiles = [];
  for (const item of ds.items.slice(0, opts.count ?? 16)) {
    const { image, mask } = await readSample(item);
    tiles.push({ image, mask, label: item.label });
  }
  return contactSheetPng(tiles, opts);
}
