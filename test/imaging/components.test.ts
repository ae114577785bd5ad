import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  labelComponents,
  keepLargestComponents,
  fillHoles,
  cleanLungMask,
  thresholdMask,
  maskArea,
  touchesBorder,
  type BinaryMask,
} from '../../src/imaging/components.js';

/** Builds a mask from rows of '#' (1) and '.' (0). */
function parse(rows: string[]): BinaryMask {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((r, y) => [...r].forEach((c, x) => (data[y * width + x] = c === '#' ? 1 : 0)));
  return { width, height, data };
}

function show(m: BinaryMask): string[] {
  const rows: string[] = [];
  for (let y = 0; y < m.height; y++) {
    rows.push([...m.data.subarray(y * m.width, (y + 1) * m.width)].map((v) => (v ? '#' : '.')).join(''));
  }
  return rows;
}

test('labelling joins diagonal neighbours with 8-connectivity but not with 4', () => {
  const m = parse(['#..', '.#.', '..#']);
  assert.deepEqual(labelComponents(m, 8).sizes, [3]);
  assert.deepEqual(labelComponents(m, 4).sizes, [1, 1, 1]);
  assert.deepEqual(Array.from(labelComponents(m, 4).labels), [1, 0, 0, 0, 2, 0, 0, 0, 3]);
});

test('keeping the two largest components drops smaller blobs', () => {
  const m = parse(['##.....#', '##..#...', '....#..#', '###.#..#', '###.....']);
  // sizes in scan order: 4 (top-left), 1, 3 (column), 2 (right pair), 6 (bottom-left)
  assert.deepEqual(labelComponents(m).sizes, [4, 1, 3, 2, 6]);
  assert.deepEqual(show(keepLargestComponents(m, 2)), ['##......', '##......', '........', '###.....', '###.....']);
});

test('equal-size components are kept in scan order', () => {
  const m = parse(['#.#.#']);
  assert.deepEqual(show(keepLargestComponents(m, 2)), ['#.#..']);
});

test('holes enclosed by foreground are filled; background reaching the border is not', () => {
  const m = parse(['.#####.', '.#...#.', '.#.#.#.', '.#####.', '.#...#.', '.#...#.']);
  // the lower pocket opens on the bottom border, so it stays background
  assert.deepEqual(show(fillHoles(m)), ['.#####.', '.#####.', '.#####.', '.#####.', '.#...#.', '.#...#.']);
});

test('a diagonal gap in the outline does not let the background leak into a hole', () => {
  const m = parse(['.###.', '#...#', '#...#', '.###.']);
  assert.deepEqual(show(fillHoles(m)), ['.###.', '#####', '#####', '.###.']);
});

test('lung clean-up keeps two lungs, fills their holes and drops a speck', () => {
  const m = parse(['..........', '.###..###.', '.#.#..###.', '.###..#.#.', '......###.', '#.........']);
  const clean = cleanLungMask(m);
  assert.deepEqual(show(clean), ['..........', '.###..###.', '.###..###.', '.###..###.', '......###.', '..........']);
  assert.equal(maskArea(clean), 21);
  assert.equal(touchesBorder(clean), false);
  assert.equal(touchesBorder(m), true);
});

test('thresholding is strict: exactly 0.5 is background', () => {
  assert.deepEqual(Array.from(thresholdMask([0.2, 0.5, 0.51, 1], 2, 2).data), [0, 0, 1, 1]);
  assert.throws(() => thresholdMask([0, 1], 2, 2), RangeError);
});
