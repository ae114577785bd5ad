#!/usr/bin/env node
/**
 * fixtures/real-contact-sheet.png: six real films of each shared data set (adult NIH, pediatric
 * Kermany; half normal, half pneumonia, seeded) through the served models, with the lung
 * outline and the CAM heatmap (`cxr-triage contact-sheet`). The films live in ../shared
 * (or $CXR_SHARED_DIR), outside the repository: without them this says so and exits 0.
 * Usage: node scripts/real-contact-sheet.mjs [extra contact-sheet options]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const shared = process.env.CXR_SHARED_DIR ?? join(root, '..', 'shared');
const sets = ['nih-cxr8-pneumonia', 'kermany-pediatric-pneumonia'].map((s) => join(shared, 'data', s));
const missing = sets.filter((d) => !existsSync(join(d, 'labels.csv')));
if (missing.length > 0) {
  process.stdout.write(`skipped: ${missing.join(', ')} absent (set CXR_SHARED_DIR to the folder holding data/)\n`);
  process.exit(0);
}
const args = [join(root, 'bin', 'cxr-triage.js'), 'contact-sheet', ...sets.flatMap((d) => ['--data', d])];
args.push(
  '--models',
  join(root, 'models'),
  '--per-set',
  '6',
  '--side',
  '144',
  '--out',
  join(root, 'fixtures', 'real-contact-sheet.png'),
  ...process.argv.slice(2),
);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
