/**
 * `evaluate --save` then `models card --write --pictures` on a tiny random-weight version and
 * synthetic films, as a user runs them: evaluate prints ECE and 95% bootstrap intervals, the
 * saved evaluation keeps its split and names no machine path, the card carries that row with
 * its intervals and the error pictures drawn through the served pipeline, and the version
 * still verifies (the card is outside its hashes). `contact-sheet` draws films of each set
 * into one PNG of the expected size; on the real films in ../shared when they are there.
 */
import { readPerImageCsv } from '../../src/ml/evaluation-files.js';
import { calibrateThreshold } from '../../src/ml/metrics.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadDataset } from '../../src/data/dataset.js';
import { splitByPatient, writeSplit } from '../../src/data/split.js';
import { decodeDisplayImage } from '../../src/imaging/png.js';
import { pickFilms } from '../../src/cli/commands/contact-sheet.js';
import { REPO_ROOT, sha256File, verifyManifest } from '../../src/ml/model-store/index.js';
import { parseCsv } from '../../src/data/csv.js';
import { runCli as cli } from '../support/cli.js';
import { scratchModelsAndData } from '../support/ml.js';

let root: string;
let models: string;
let data: string;
let classifierDir: string;
let segmenterDir: string;

before(async () => {
  ({ root, models, data, classifierDir, segmenterDir } = await scratchModelsAndData(
    'cxr-card-',
    { count: 16, seed: 31_337, sizeMin: 96, sizeMax: 128, workSize: 96 },
    'synth-set',
  ));
  const ds = await loadDataset(data);
  const split = splitByPatient(
    ds.items.map((i) => ({ file: i.file, patientId: i.patientId, label: i.label })),
    { seed: 1, fractions: [0.3, 0.2, 0.5] },
  );
  await writeSplit(join(root, 'split'), split);
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('evaluate prints ECE and 95% intervals; models card --write --pictures turns the saved evaluation into a card row with intervals and error pictures', async () => {
  const split = join(root, 'split', 'split.csv');
  const base = ['evaluate', '--data', data, '--models', models, '--split', split, '--subset', 'test', '--threads', '1', '--tta', '1'];
  const table = await cli(base);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^calibration error \(ECE\)\s+\d\.\d{3} \(10 bins; max \d\.\d{3}\)$/m);
  assert.match(table.stdout, /^AUC\s+\d\.\d{3} \(95% CI \d\.\d{3}-\d\.\d{3}\)$/m);
  assert.match(table.stdout, /^intervals\s+95% percentile bootstrap over the images \(1000 resamples, seed 7\)$/m);

  const ev = await cli([...base, '--json', '--save']);
  assert.equal(ev.code, 0, ev.stderr);
  const summary = JSON.parse(ev.stdout);
  for (const k of ['aucLo', 'aucHi', 'recallLo', 'recallHi', 'specificityLo', 'specificityHi', 'accuracyLo', 'accuracyHi'])
    assert.equal(typeof summary.ci95[k], 'number', k);
  assert.ok(summary.ci95.aucLo <= summary.auc && summary.auc <= summary.ci95.aucHi);
  const [run] = await readdir(join(classifierDir, 'evaluations'));
  const saved = join(classifierDir, 'evaluations', run);
  // the split's rows of the images evaluated are kept with the figures, and the whole split's sha256
  const whole = parseCsv(await readFile(split, 'utf8'));
  const kept = parseCsv(await readFile(join(saved, 'split.csv'), 'utf8'));
  assert.deepEqual(kept.header, whole.header);
  assert.deepEqual(
    kept.rows.map((r) => r.fields),
    whole.rows.filter((r) => r.fields[3] === 'test').map((r) => r.fields),
  );
  assert.equal(kept.rows.length, summary.n);
  const savedSummary = await readFile(join(saved, 'summary.json'), 'utf8');
  assert.equal(JSON.parse(savedSummary).splitSha256, await sha256File(split));
  assert.ok(!savedSummary.includes(root), 'summary.json names a machine path');
  assert.deepEqual(JSON.parse(savedSummary).datasets, ['synth-set']);

  const card = await cli(['models', 'card', classifierDir, '--models', models, '--write', '--pictures', '--data', data]);
  assert.equal(card.code, 0, card.stderr);
  assert.equal(card.stdout.trim(), join(classifierDir, 'MODEL_CARD.md'));
  const text = await readFile(join(classifierDir, 'MODEL_CARD.md'), 'utf8');
  const n = summary.n as number;
  const pos = summary.confusion.tp + summary.confusion.fn;
  const f3 = (v: number) => v.toFixed(3);
  const row = `| synth-set | test | ${n} (${pos}) | ${f3(summary.auc)} (${f3(summary.ci95.aucLo)}-${f3(summary.ci95.aucHi)}) |`;
  assert.ok(text.includes(row), `no row starting ${row} in\n${text}`);
  // the specificity at the target recall, cut on the saved per-image scores of the row's own films
  const perImage = await readPerImageCsv(join(saved, 'per-image.csv'));
  const atTarget = calibrateThreshold(
    perImage.map((r) => r.probability),
    perImage.map((r) => r.label),
    0.95,
  ).specificity!;
  const rowLine = text.split('\n').find((l) => l.startsWith(row))!;
  assert.equal(rowLine.split(' | ').at(-2), f3(atTarget), rowLine);
  for (const heading of [
    '## Intended use',
    '## Not for use',
    '## Data',
    '## Performance per set',
    '## Calibration',
    '## Decision threshold',
    '## Known failure modes',
    '## Provenance',
  ])
    assert.ok(text.includes(`\n${heading}\n`), heading);
  assert.ok(text.includes('![Highest-scored normal films and lowest-scored pneumonias on synth-set test](card/errors-synth-set-test.png)'), text);
  const png = await decodeDisplayImage(await readFile(join(classifierDir, 'card', 'errors-synth-set-test.png')));
  assert.ok(png.width > 128 && png.height > 128);
  assert.ok(!text.includes(root), 'the card names a machine path');
  assert.deepEqual(await verifyManifest(classifierDir), { ok: true, modified: [], missing: [], unlisted: [] });

  const printed = await cli(['models', 'card', classifierDir, '--models', models, '--data', data]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, text, 'printing and writing give the same card');
});

test('pickFilms draws half normal, half pneumonia, the same films for the same seed', () => {
  const items = Array.from({ length: 10 }, (_, i) => ({ id: `f${i}`, label: i < 3 ? 1 : 0 }));
  const a = pickFilms(items, 4, 1, 'set');
  assert.equal(a.length, 4);
  assert.equal(a.filter((i) => i.label === 1).length, 2);
  assert.deepEqual(a, pickFilms([...items].reverse(), 4, 1, 'set'));
  // fewer pneumonias than half: normals fill the rest
  assert.equal(pickFilms(items, 8, 1, 'set').filter((i) => i.label === 1).length, 3);
});

test('contact-sheet draws each set’s films through the served pipeline into one PNG laid out tile by tile', async () => {
  const out = join(root, 'sheet.png');
  const r = await cli(['contact-sheet', '--data', data, '--models', models, '--per-set', '4', '--side', '64', '--threads', '1', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const img = await decodeDisplayImage(await readFile(out));
  // 4 tiles of 64 + 4 padding, 2 caption lines of 10, a title line
  assert.deepEqual([img.width, img.height], [4 * 68 + 4, 18 + (68 + 20) + 4]);
});

test('a segmenter card leaves out what training scored (Dice per image) instead of a classification row of NaN', async () => {
  // what `train segmenter` saves next to the version: Dice and IoU per image, no probabilities
  const training = join(segmenterDir, 'evaluations', 'training');
  await mkdir(training, { recursive: true });
  await writeFile(
    join(training, 'summary.json'),
    JSON.stringify({ version: 'x', scorer: 'tfjs, single view', at: '2026-12-02T00:00:00.000Z', images: { validation: 1 } }),
  );
  await writeFile(join(training, 'per-image.csv'), 'file,split,dice,iou\nimages/a.dcm,validation,0.98,0.96\n');
  try {
    const r = await cli(['models', 'card', segmenterDir, '--models', models]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No decision threshold/);
    assert.doesNotMatch(r.stdout, /NaN/);
  } finally {
    await rm(join(segmenterDir, 'evaluations'), { recursive: true, force: true });
  }
});

test('contact-sheet --no-heatmap draws the film grey with only the green lung outline on it', async () => {
  const out = join(root, 'outline.png');
  const r = await cli(['contact-sheet', '--data', data, '--models', models, '--per-set', '4', '--side', '64', '--threads', '1', '--no-heatmap', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const { data: rgb, info } = await sharp(await readFile(out))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  let outline = 0;
  for (let i = 0; i < rgb.length; i += 3) {
    const [red, green, blue] = [rgb[i], rgb[i + 1], rgb[i + 2]];
    if (red === green && green === blue) continue;
    // film, captions and background are grey: any colour is the outline's
    assert.deepEqual([red, green, blue], [0, 230, 64], `pixel ${i / 3} is (${red}, ${green}, ${blue})`);
    outline++;
  }
  assert.ok(outline > 0, 'no lung outline drawn');
});

const shared = process.env.CXR_SHARED_DIR ?? join(REPO_ROOT, '..', 'shared');
const realSets = ['nih-cxr8-pneumonia', 'kermany-pediatric-pneumonia'].map((s) => join(shared, 'data', s));
const absent = realSets.find((d) => !existsSync(join(d, 'labels.csv')));

test('contact-sheet on real films of both sets with the shipped models', {
  skip: absent ? `${absent} is absent (the real films live in ../shared, outside the repository)` : false,
}, async () => {
  const out = join(root, 'real.png');
  const r = await cli([
    'contact-sheet',
    ...realSets.flatMap((d) => ['--data', d]),
    '--models',
    join(REPO_ROOT, 'models'),
    '--per-set',
    '1',
    '--side',
    '96',
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const img = await decodeDisplayImage(await readFile(out));
  assert.deepEqual([img.width, img.height], [100 + 4, 18 + 2 * (100 + 20) + 4]);
});

test('a card/notes.json whose failureModes is not a list is E_BAD_ARGUMENT naming the file, not a TypeError', async () => {
  await mkdir(join(segmenterDir, 'card'), { recursive: true });
  await writeFile(join(segmenterDir, 'card', 'notes.json'), JSON.stringify({ failureModes: 5 }));
  try {
    const r = await cli(['models', 'card', segmenterDir, '--models', models]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /E_BAD_ARGUMENT: .*card\/notes\.json: failureModes must be a list/);
  } finally {
    await rm(join(segmenterDir, 'card'), { recursive: true, force: true });
  }
});
