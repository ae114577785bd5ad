/**
 * Scanline polygon rasterisation at pixel centres: pixel (i, j) is inside when its centre
 * (i + 0.5, j + 0.5) is inside the polygon (even-odd rule). The same rule at any
 * resolution, so a lung outline filled at 256 px and at 3000 px agree to within a pixel of
 * each, and a rendered edge and its mask coincide.
 *
 * A polygon is a flat array of vertex coordinates [x0, y0, x1, y1, ...] in pixel units
 * (the image's top-left corner is 0,0; pixel centres are at half-integers).
 */
export type Polygon = ArrayLike<number>;

export function fillPolygons(width: number, height: number, polygons: readonly Polygon[], out?: Uint8Array, value = 1): Uint8Array {
  const mask = out ?? new Uint8Array(width * height);
  if (mask.length !== width * height) throw new RangeError('mask buffer size does not match dimensions');
  for (const poly of polygons) fillOne(mask, width, height, poly, value);
  return mask;
}

function fillOne(mask: Uint8Array, width: number, height: number, p: Polygon, value: number): void {
  const n = Math.floor(p.length / 2);
  if (n < 3) return;
  let minY = Infinity;
  let maxY = -Infinity;
  for (let k = 0; k < n; k++) {
    const y = p[2 * k + 1];
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const j0 = Math.max(0, Math.ceil(minY - 0.5));
  const j1 = Math.min(height - 1, Math.floor(maxY - 0.5));
  const xs: number[] = [];
  for (let j = j0; j <= j1; j++) {
    const yc = j + 0.5;
    xs.length = 0;
    for (let k = 0; k < n; k++) {
      const x0 = p[2 * k];
      const y0 = p[2 * k + 1];
      const k1 = k + 1 === n ? 0 : k + 1;
      const x1 = p[2 * k1];
      const y1 = p[2 * k1 + 1];
      // Half-open in y so a vertex on the scanline is counted once.
      if ((y0 <= yc && y1 > yc) || (y1 <= yc && y0 > yc)) xs.push(x0 + ((yc - y0) / (y1 - y0)) * (x1 - x0));
    }
    xs.sort((a, b) => a - b);
    const row = j * width;
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const i0 = Math.max(0, Math.ceil(xs[k] - 0.5));
      const i1 = Math.min(width, Math.ceil(xs[k + 1] - 0.5));
      for (let i = i0; i < i1; i++) mask[row + i] = value;
    }
  }
}
