import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { csvLine } from '../../src/data/csv.js';
import { loadDataset } from '../../src/data/dataset.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cxr-data-${prefix}-`));
}

/** A grey PNG of the given size; value v (0..255) everywhere, or a function of (x, y). */
export async function writePng(path: string, width: number, height: number, v: number | ((x: number, y: number) => number)): Promise<void> {
  const px = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px[y * width + x] = typeof v === 'number' ? v : v(x, y);
  writeFileSync(
    path,
    await sharp(px, { raw: { width, height, channels: 1 } })
      .png()
      .toBuffer(),
  );
}

/** A PNG dataset: rows of [file, label, patient]; images 32x24 with a bright box; masks optional. */
export async function pngDataset(rows: [string, string, string][], opts: { masks?: boolean; csv?: string } = {}): Promise<string> {
  const dir = tempDir('png');
  mkdirSync(join(dir, 'images'));
  if (opts.masks) mkdirSync(join(dir, 'masks'));
  for (const [file] of rows) {
    if (!file.startsWith('images/')) continue;
    await writePng(join(dir, file), 32, 24, (x, y) => (x > 8 && x < 24 && y > 4 && y < 20 ? 200 : 40));
    if (opts.masks)
      await writePng(join(dir, 'masks', file.slice('images/'.length).replace(/\.\w+$/, '.png')), 32, 24, (x, y) =>
        x > 8 && x < 24 && y > 4 && y < 20 ? 255 : 0,
      );
  }
  writeFileSync(join(dir, 'labels.csv'), opts.csv ?? `${['file,label,patient_id', ...rows.map((r) => r.join(','))].join('\n')}\n`);
  return dir;
}

/**
 * A split CSV (file, patient_id, label, split) for a dataset folder: every other image of each
 * label in validation, the rest in train, so a threshold calibrated on validation has both
 * labels to cut between. Written to `out` (its folder is made); returns the validation files
 * and the count of each label.
 */
export async function alternatingSplit(dataDir: string, out: string): Promise<{ validation: Set<string>; counts: { normal: number; pneumonia: number } }> {
  const ds = await loadDataset(dataDir);
  const counts = { normal: 0, pneumonia: 0 };
  const lines = [csvLine(['file', 'patient_id', 'label', 'split'])];
  const validation = new Set<string>();
  for (const i of ds.items) {
    const subset = counts[i.label]++ % 2 === 0 ? 'validation' : 'train';
    if (subset === 'validation') validation.add(i.file);
    lines.push(csvLine([i.file, i.patientId, i.label, subset]));
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${lines.join('\n')}\n`);
  return { validation, counts };
}
