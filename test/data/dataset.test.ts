import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCsv, csvLine } from '../../src/data/csv.js';
import { loadDataset, readSample, describeItems } from '../../src/data/dataset.js';
import { datasetHash } from '../../src/data/hash.js';
import { isCxrError } from '../../src/errors.js';
import { pngDataset, writePng } from '../support/data.js';

const NIH = resolve('..', 'shared', 'data', 'nih-cxr8-pneumonia');
const haveNih = existsSync(join(NIH, 'labels.csv'));

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isCxrError(e), `expected a CxrError, got ${String(e)}`);
    assert.equal(e.code, 'E_BAD_DATASET');
    assert.match(e.message, re);
    return true;
  });
}

test('CSV parsing handles quotes, embedded commas and newlines, CRLF and a BOM', () => {
  const t = parseCsv('\ufefffile,label\r\n"a,b.png",normal\r\n"say ""hi""\nthere",pneumonia\n\n');
  assert.deepEqual(t.header, ['file', 'label']);
  assert.deepEqual(
    t.rows.map((r) => r.fields),
    [
      ['a,b.png', 'normal'],
      ['say "hi"\nthere', 'pneumonia'],
    ],
  );
  assert.deepEqual(
    t.rows.map((r) => r.line),
    [2, 3],
  );
  assert.equal(csvLine(['a,b', 'x"y', 3]), '"a,b","x""y",3');
});

test('CSV errors name the line', () => {
  assert.throws(() => parseCsv('a,b\n1,2\n3\n', 'labels.csv'), /labels\.csv line 3: 1 fields, but the header has 2/);
  assert.throws(() => parseCsv('a,b\n1,"2\n', 'labels.csv'), /line 2: a quoted field is never closed/);
  assert.throws(() => parseCsv('a,b\n1,"2"x\n', 'labels.csv'), /line 2: unexpected 'x' after a closing quote/);
});

test('a PNG dataset with masks loads, and samples come with matching masks', async () => {
  const dir = await pngDataset(
    [
      ['images/a.png', 'normal', 'p1'],
      ['images/b.png', 'pneumonia', 'p2'],
    ],
    { masks: true },
  );
  try {
    const ds = await loadDataset(dir);
    assert.equal(ds.items.length, 2);
    assert.equal(ds.masked, 2);
    assert.deepEqual(
      ds.items.map((i) => [i.row, i.label, i.target, i.patientId, i.kind]),
      [
        [2, 'normal', 0, 'p1', 'png'],
        [3, 'pneumonia', 1, 'p2', 'png'],
      ],
    );
    const s = await readSample(ds.items[1]);
    assert.equal(s.image.width, 32);
    assert.ok(Math.abs(s.image.data[12 * 32 + 16] - 200 / 255) < 1e-6);
    assert.equal(s.mask!.data[12 * 32 + 16], 1);
    assert.equal(s.mask!.data[0], 0);
    assert.deepEqual(describeItems(ds.items), { images: 2, patients: 2, normal: 1, pneumonia: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dataset errors name the labels.csv line', async () => {
  const missing = await pngDataset([
    ['images/a.png', 'normal', 'p1'],
    ['images/zz.png', 'normal', 'p2'],
  ]);
  rmSync(join(missing, 'images', 'zz.png'));
  const unknown = await pngDataset([
    ['images/a.png', 'normal', 'p1'],
    ['images/b.png', 'covid', 'p2'],
  ]);
  const malformed = await pngDataset([['images/a.png', 'normal', 'p1']], { csv: 'file,label,patient_id\nimages/a.png,normal\n' });
  const noColumn = await pngDataset([['images/a.png', 'normal', 'p1']], { csv: 'file,label\nimages/a.png,normal\n' });
  const outside = await pngDataset([['images/a.png', 'normal', 'p1']], { csv: 'file,label,patient_id\n../a.png,normal,p1\n' });
  const twice = await pngDataset([['images/a.png', 'normal', 'p1']], { csv: 'file,label,patient_id\nimages/a.png,normal,p1\nimages/a.png,normal,p1\n' });
  const wrongMask = await pngDataset(
    [
      ['images/a.png', 'normal', 'p1'],
      ['images/b.png', 'normal', 'p2'],
    ],
    { masks: true },
  );
  await writePng(join(wrongMask, 'masks', 'b.png'), 16, 24, 0);
  try {
    await rejectsWith(loadDataset(missing), /labels\.csv line 3: image 'images\/zz\.png' does not exist/);
    await rejectsWith(loadDataset(unknown), /labels\.csv line 3: unknown label 'covid'/);
    await rejectsWith(loadDataset(malformed), /labels\.csv line 2: 2 fields, but the header has 3/);
    await rejectsWith(loadDataset(noColumn), /no 'patient_id' column/);
    await rejectsWith(loadDataset(outside), /line 2: file '\.\.\/a\.png' points outside the dataset folder/);
    await rejectsWith(loadDataset(twice), /line 3: 'images\/a\.png' is listed twice \(also line 2\)/);
    await rejectsWith(loadDataset(wrongMask), /labels\.csv line 3: mask of 'images\/b\.png' is 16x24 but the image is 32x24/);
    // Also when the size check is deferred to reading the sample.
    const ds = await loadDataset(wrongMask, { checkMaskSizes: false });
    await rejectsWith(readSample(ds.items[1]), /line 3: mask of 'images\/b\.png' is 16x24 but the image is 32x24/);
    await rejectsWith(loadDataset(join(missing, 'nowhere')), /has no labels\.csv/);
  } finally {
    for (const d of [missing, unknown, malformed, noColumn, outside, twice, wrongMask]) rmSync(d, { recursive: true, force: true });
  }
});

test('the dataset hash is stable and changes with a label or a pixel', async () => {
  const dir = await pngDataset([
    ['images/a.png', 'normal', 'p1'],
    ['images/b.png', 'pneumonia', 'p2'],
  ]);
  try {
    const h1 = await datasetHash(dir);
    assert.equal(h1.count, 2);
    assert.match(h1.sha256, /^[0-9a-f]{64}$/);
    // Row order and extra columns do not matter.
    writeFileSync(join(dir, 'labels.csv'), 'patient_id,label,file,note\np2,pneumonia,images/b.png,x\np1,normal,images/a.png,y\n');
    assert.equal((await datasetHash(dir)).sha256, h1.sha256);
    writeFileSync(join(dir, 'labels.csv'), 'file,label,patient_id\nimages/a.png,pneumonia,p1\nimages/b.png,pneumonia,p2\n');
    const h2 = await datasetHash(dir);
    assert.notEqual(h2.sha256, h1.sha256);
    await writePng(join(dir, 'images', 'a.png'), 32, 24, 41);
    assert.notEqual((await datasetHash(dir)).sha256, h2.sha256);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real NIH folder loads as a dataset', { skip: !haveNih && `no ${NIH} (shared data absent)` }, async () => {
  const ds = await loadDataset(NIH);
  assert.equal(ds.items.length, 508);
  assert.deepEqual(describeItems(ds.items), { images: 508, patients: 361, normal: 236, pneumonia: 272 });
  assert.ok(ds.columns.includes('source_sha1'));
  assert.equal(ds.masked, 0);
  const s = await readSample(ds.items[0]);
  assert.deepEqual([s.image.width, s.image.height], [512, 512]);
  assert.ok(readFileSync(join(NIH, 'labels.csv'), 'utf8').startsWith('file,label,patient_id'));
});
