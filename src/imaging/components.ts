/**
 * Binary mask clean-up for the lung segmenter's output: connected components, keep the
 * largest few, fill enclosed holes. Pure functions over 0/1 bytes, row-major.
 */
export interface BinaryMask {
  width: number;
  height: number;
  /** 0 or 1 per pixel */
  data: Uint8Array;
}

export type Connectivity = 4 | 8;

export interface Components {
  /** 0 = background, 1..count = component id, numbered in scan order of first pixel */
  labels: Int32Array;
  /** sizes[id - 1] = pixel count of component id */
  sizes: number[];
}

/** Labels the foreground (non-zero) pixels. Iterative flood fill: no recursion depth limit. */
export function labelComponents(mask: BinaryMask, connectivity: Connectivity = 8): Components {
  const { width: w, height: h, data } = mask;
  const labels = new Int32Array(w * h);
  const sizes: number[] = [];
  const stack = new Int32Array(w * h);
  for (let start = 0; start < w * h; start++) {
    if (data[start] === 0 || labels[start] !== 0) continue;
    const id = sizes.length + 1;
    let top = 0;
    let size = 0;
    stack[top++] = start;
    labels[start] = id;
    while (top > 0) {
      const p = stack[--top];
      size++;
      const x = p % w;
      const y = (p - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          if (connectivity === 4 && dx !== 0 && dy !== 0) continue;
          const nx = x + dx;
          if (nx < 0 || nx >= w) continue;
          const q = ny * w + nx;
          if (data[q] !== 0 && labels[q] === 0) {
            labels[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
    sizes.push(size);
  }
  return { labels, sizes };
}

/**
 * Keeps the `count` largest 8-connected components (ties broken by scan order, so the
 * result is deterministic) and clears everything else.
 */
export function keepLargestComponents(mask: BinaryMask, count: number): BinaryMask {
  const { labels, sizes } = labelComponents(mask, 8);
  const order = sizes.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a] || a - b);
  const keep = new Uint8Array(sizes.length + 1);
  for (const i of order.slice(0, Math.max(0, count))) keep[i + 1] = 1;
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = keep[labels[i]];
  return { width: mask.width, height: mask.height, data: out };
}

/**
 * Sets every background pixel that cannot reach the image border to 1. Background is
 * 4-connected, the dual of 8-connected foreground: a diagonal gap in an 8-connected
 * outline does not let the background leak in.
 */
export function fillHoles(mask: BinaryMask): BinaryMask {
  const { width: w, height: h, data } = mask;
  const outside = new Uint8Array(w * h);
  const stack = new Int32Array(w * h);
  let top = 0;
  const seed = (p: number) => {
    if (data[p] === 0 && outside[p] === 0) {
      outside[p] = 1;
      stack[top++] = p;
    }
  };
  for (let x = 0; x < w; x++) {
    seed(x);
    seed((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    seed(y * w);
    seed(y * w + w - 1);
  }
  while (top > 0) {
    const p = stack[--top];
    const x = p % w;
    if (x > 0) seed(p - 1);
    if (x < w - 1) seed(p + 1);
    if (p >= w) seed(p - w);
    if (p < (h - 1) * w) seed(p + w);
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = outside[i] ? 0 : 1;
  return { width: w, height: h, data: out };
}

/** The segmenter's post-processing: two largest components (the lungs), holes filled. */
export function cleanLungMask(mask: BinaryMask): BinaryMask {
  return fillHoles(keepLargestComponents(mask, 2));
}

/** Thresholds a probability map: value > threshold becomes 1. */
export function thresholdMask(values: ArrayLike<number>, width: number, height: number, threshold = 0.5): BinaryMask {
  if (values.length !== width * height) throw new RangeError(`mask has ${values.length} values, expected ${width}x${height}`);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = values[i] > threshold ? 1 : 0;
  return { width, height, data: out };
}

export function maskArea(mask: BinaryMask): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) n += mask.data[i];
  return n;
}

/** True when any foreground pixel lies on the outermost row or column. */
export function touchesBorder(mask: BinaryMask): boolean {
  const { width: w, height: h, data } = mask;
  for (let x = 0; x < w; x++) if (data[x] || data[(h - 1) * w + x]) return true;
  for (let y = 0; y < h; y++) if (data[y * w] || data[y * w + w - 1]) return true;
  return false;
}
