import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { batches, createBatchSource, weightedEpochOrder, type DataBatch } from '../../src/data/batches.js';
import { isCxrError } from '../../src/errors.js';
import { pngDataset, tempDir } from '../support/data.js';

let root: string;
let ds: Dataset;

before(async () => {
  root = tempDir('batches');
  await writeSynthDataset({ out: join(root, 'ds'), count: 7, seed: 23, sizeMin: 96, sizeMax: 128, workSize: 96 });
  ds = await loadDataset(join(root, 'ds'));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function collect(it: AsyncIterable<DataBatch>): Promise<DataBatch[]> {
  const out: DataBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

test('segmenter batches hold resized images and binary masks of every item once', async () => {
  const bs = await collect(batches(ds.items, { task: 'segmenter', size: 32, batchSize: 3 }));
  assert.deepEqual(
    bs.map((b) => b.n),
    [3, 3, 1],
  );
  assert.deepEqual(
    bs.flatMap((b) => b.ids),
    ds.items.map((i) => i.file),
  );
  for (const b of bs) {
    assert.equal(b.x.length, b.n * 32 * 32);
    assert.equal(b.y.length, b.n * 32 * 32);
    for (const v of b.y) assert.ok(v === 0 || v === 1);
    for (const v of b.x) assert.ok(v >= 0 && v <= 1);
    // lungs are darker than the average of the whole picture
    let lung = 0;
    let n = 0;
    let all = 0;
    for (let k = 0; k < b.x.length; k++) {
      all += b.x[k];
      if (b.y[k]) (lung += b.x[k]), n++;
    }
    assert.ok(lung / n < all / b.x.length);
  }
});

test('classifier batches are lung crops with labels, from masks or from maskFor', async () => {
  const bs = await collect(batches(ds.items, { task: 'classifier', size: 24, batchSize: 4 }));
  assert.equal(bs.length, 2);
  assert.deepEqual(
    Array.from(bs[0].y),
    ds.items.slice(0, 4).map((i) => i.target),
  );
  assert.ok(bs.every((b) => b.cropped!.every(Boolean)));
  assert.equal(bs[0].x.length, 4 * 24 * 24);

  // Without dataset masks, the crop comes from maskFor (here: the left half of the image).
  const png = await pngDataset([
    ['images/a.png', 'pneumonia', 'p1'],
    ['images/b.png', 'normal', 'p2'],
  ]);
  try {
    const items = (await loadDataset(png)).items;
    let asked = 0;
    const half = await collect(
      batches(items, {
        task: 'classifier',
        size: 8,
        batchSize: 2,
        lungMargin: 0,
        maskFor: async (_item, image) => {
          asked++;
          const data = new Uint8Array(image.width * image.height);
          for (let y = 0; y < image.height; y++) for (let x = 0; x < image.width / 2; x++) data[y * image.width + x] = 1;
          return { width: image.width, height: image.height, data };
        },
      }),
    );
    assert.equal(asked, 2);
    assert.deepEqual(Array.from(half[0].y), [1, 0]);
    // the right half (which has the bright box's right part) is cut away: column 7 of the crop is image column 15
    const none = await collect(batches(items, { task: 'classifier', size: 8, batchSize: 2 }));
    assert.deepEqual(none[0].cropped, [false, false]);
  } finally {
    rmSync(png, { recursive: true, force: true });
  }
});

test('shuffled order and augmentation are deterministic per seed and epoch', async () => {
  const src = createBatchSource(ds.items, { task: 'segmenter', size: 24, shuffle: true, seed: 3, augment: {} });
  const e0 = await collect(src.batches(0, 4));
  const again = await collect(createBatchSource(ds.items, { task: 'segmenter', size: 24, shuffle: true, seed: 3, augment: {} }).batches(0, 4));
  const e1 = await collect(src.batches(1, 4));
  assert.deepEqual(
    e0.flatMap((b) => b.ids),
    again.flatMap((b) => b.ids),
  );
  assert.deepEqual(Array.from(e0[0].x), Array.from(again[0].x));
  assert.notDeepEqual(
    e0.flatMap((b) => b.ids),
    e1.flatMap((b) => b.ids),
  );
  assert.deepEqual(new Set(e1.flatMap((b) => b.ids)), new Set(ds.items.map((i) => i.file)));
});

test('images are read lazily: a broken file fails only when its batch is due', async () => {
  const png = await pngDataset([
    ['images/a.png', 'normal', 'p1'],
    ['images/b.png', 'normal', 'p2'],
    ['images/c.png', 'normal', 'p3'],
  ]);
  try {
    const items = (await loadDataset(png)).items;
    rmSync(items[2].path);
    const it = batches(items, { task: 'classifier', size: 8, batchSize: 1 });
    const first = await it.next();
    assert.equal(first.done, false);
    assert.equal((first.value as DataBatch).ids[0], 'images/a.png');
    await it.next();
    await assert.rejects(it.next(), (e: unknown) => isCxrError(e) && e.code === 'E_BAD_DATASET' && /line 4: cannot read 'images\/c\.png'/.test(e.message));
  } finally {
    rmSync(png, { recursive: true, force: true });
  }
});

test('segmenter batches need masks and say which row lacks one', async () => {
  const png = await pngDataset([['images/a.png', 'normal', 'p1']]);
  try {
    const items = (await loadDataset(png)).items;
    await assert.rejects(collect(batches(items, { task: 'segmenter', size: 8, batchSize: 1 })), /line 2: 'images\/a\.png' has no lung mask/);
  } finally {
    rmSync(png, { recursive: true, force: true });
  }
});

test('a weighted epoch draws each item floor or ceil of its expected count, reproducibly', () => {
  // weights 6:3:1 over 10 draws: expected 6, 3 and 1 exactly
  const order = weightedEpochOrder([6, 3, 1], 10, 5, 0);
  assert.equal(order.length, 10);
  const count = (k: number, o: number[]): number => o.filter((x) => x === k).length;
  assert.deepEqual(
    [0, 1, 2].map((k) => count(k, order)),
    [6, 3, 1],
  );
  assert.deepEqual(weightedEpochOrder([6, 3, 1], 10, 5, 0), order);
  // 7 draws over weights 1:1:1: each item 2 or 3 times; a zero weight is never drawn
  const w = [1, 1, 1, 0];
  for (let epoch = 0; epoch < 5; epoch++) {
    const o = weightedEpochOrder(w, 7, 1, epoch);
    assert.equal(o.length, 7);
    for (const k of [0, 1, 2]) assert.ok(count(k, o) === 2 || count(k, o) === 3, `epoch ${epoch}: ${o}`);
    assert.equal(count(3, o), 0);
  }
  assert.notDeepEqual(weightedEpochOrder(w, 7, 1, 0), weightedEpochOrder(w, 7, 1, 1));
});

test('a sampled batch source gives perEpoch items per epoch, weighted, and refuses bad weights', async () => {
  const items = ds.items.slice(0, 4);
  const src = createBatchSource(items, { task: 'classifier', size: 16, shuffle: true, seed: 3, sample: { perEpoch: 6, weights: [1, 1, 0, 0] } });
  assert.equal(src.size, 6);
  const ids = (await collect(src.batches(0, 4))).flatMap((b) => b.ids);
  assert.equal(ids.length, 6);
  assert.deepEqual([...new Set(ids)].sort(), [items[0].file, items[1].file].sort());
  assert.equal(ids.filter((i) => i === items[0].file).length, 3);
  for (const weights of [
    [1, 1],
    [1, -1, 1, 1],
    [0, 0, 0, 0],
  ]) {
    assert.throws(
      () => createBatchSource(items, { task: 'classifier', size: 16, sample: { perEpoch: 2, weights } }),
      (e: unknown) => isCxrError(e) && e.code === 'E_BAD_ARGUMENT',
    );
  }
});
