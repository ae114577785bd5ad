/**
 * `pseudo-masks` with the shipped segmenter on phantoms: it writes a dataset folder that
 * `train segmenter` can load (every kept film linked, with a mask of its own size), keeps
 * out the films the split does not name, records every verdict, and refuses to write over
 * a folder that is not empty.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsv } from '../../src/data/csv.js';
import { loadDataset, readItemImage, readItemMask } from '../../src/data/dataset.js';
import { fromAssignments, readSplitFile, splitByPatient, writeSplit, type SplitName } from '../../src/data/split.js';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { itemsOfSubset } from '../../src/cli/commands/pseudo-masks.js';
import { locateModelVersion } from '../../src/ml/model-store/index.js';
import { runCli as cli } from '../support/cli.js';

let root: string;
let segmenter: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-pseudo-'));
  await writeSynthDataset({ out: join(root, 'films'), count: 8, seed: 321, sizeMin: 320, sizeMax: 384, workSize: 256 });
  const ds = await loadDataset(join(root, 'films'));
  await writeSplit(join(root, 'split'), splitByPatient(ds.items, { seed: 2, fractions: [0.6, 0.2, 0.2] }));
  segmenter = await locateModelVersion('models', 'segmenter');
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('pseudo-masks writes the kept train films as a segmenter dataset with masks of their own size', async () => {
  const out = join(root, 'pseudo');
  const split = join(root, 'split', 'split.csv');
  const r = await cli(['pseudo-masks', '--data', join(root, 'films'), '--segmenter', segmenter, '--split', split, '--out', out, '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /accepted \d+ of \d+/);

  const verdicts = parseCsv(await readFile(join(out, 'pseudo-masks.csv'), 'utf8'));
  const wanted = itemsOfSubset((await loadDataset(join(root, 'films'))).items, await readSplitFile(split), 'train', 'films');
  // every train film was judged, and only those
  assert.deepEqual(verdicts.rows.map((r) => r.fields[0]).sort(), wanted.map((i) => i.file).sort());
  const kept = verdicts.rows.filter((r) => r.fields[1] === '1').map((r) => r.fields[0]);
  // the shipped segmenter outlines phantoms well: most pass
  assert.ok(kept.length >= Math.ceil(wanted.length / 2), `${kept.length} of ${wanted.length} kept`);

  const ds = await loadDataset(out, { requireMasks: true });
  assert.deepEqual(ds.items.map((i) => i.file).sort(), kept.sort());
  for (const item of ds.items) {
    const source = join(root, 'films', item.file);
    assert.equal(await realpath(item.path), await realpath(source));
    const [image, mask] = await Promise.all([readItemImage(item), readItemMask(item)]);
    assert.ok(mask);
    assert.equal(mask.width, image.width);
    assert.equal(mask.height, image.height);
    const inside = mask.data.reduce((s, v) => s + v, 0) / mask.data.length;
    assert.ok(inside > 0.05 && inside < 0.6, `mask covers ${inside}`);
  }
  const provenance = JSON.parse(await readFile(join(out, 'pseudo-masks.json'), 'utf8'));
  assert.equal(provenance.accepted, kept.length);
  assert.equal(provenance.subset, 'train');

  // a second run may not write over it
  const again = await cli(['pseudo-masks', '--data', join(root, 'films'), '--segmenter', segmenter, '--out', out]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /not empty/);
});

test('pseudo-masks --dry-run writes nothing and says what it judged', async () => {
  const out = join(root, 'dry');
  const r = await cli(['pseudo-masks', '--data', join(root, 'films'), '--segmenter', segmenter, '--max', '3', '--dry-run', '--out', out, '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /accepted \d+ of 3/);
  assert.match(r.stdout, /view agreement p5/);
  assert.equal(existsSync(out), false);
});

test('pseudo-masks that stops on an unreadable film leaves no dataset folder behind', async () => {
  const broken = join(root, 'broken');
  await cp(join(root, 'films'), broken, { recursive: true });
  const ds = await loadDataset(broken);
  await writeFile(ds.items[ds.items.length - 1].path, 'not a DICOM file');
  const out = join(root, 'broken-pseudo');
  const r = await cli(['pseudo-masks', '--data', broken, '--segmenter', segmenter, '--out', out, '--threads', '1']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /E_/);
  assert.deepEqual(
    (await readdir(root)).filter((n) => n.startsWith('broken-pseudo')),
    [],
  );
});

test('itemsOfSubset reads a pool split by its dataset column and a plain one by file', () => {
  const items = ['images/a.png', 'images/b.png'].map((file) => ({ file }) as Parameters<typeof itemsOfSubset>[0][number]);
  const splitOf = (rows: { file: string; split: SplitName; dataset?: string }[]) =>
    fromAssignments(
      0,
      [0.7, 0.1, 0.2],
      rows.map((r) => ({ ...r, patientId: r.file, label: 'normal' as const })),
    );
  const pooled = splitOf([
    { file: 'adult/images/a.png', split: 'train', dataset: 'adult' },
    { file: 'child/images/b.png', split: 'train', dataset: 'child' },
    { file: 'adult/images/b.png', split: 'test', dataset: 'adult' },
  ]);
  assert.deepEqual(
    itemsOfSubset(items, pooled, 'train', 'adult').map((i) => i.file),
    ['images/a.png'],
  );
  assert.deepEqual(
    itemsOfSubset(items, splitOf([{ file: 'images/b.png', split: 'train' }]), 'train', 'x').map((i) => i.file),
    ['images/b.png'],
  );
  assert.throws(() => itemsOfSubset(items, pooled, 'validation', 'adult'), /names no validation film/);
});
