/**
 * Pseudo-labels for self-training the segmenter on real films: the consensus of the
 * segmenter's masks over a few test-time views, and the checks a mask must pass before it
 * may teach the network. Only masks that look like two lungs, one each side, of a plausible
 * size, away from the film's edge and stable under small rotations are kept: a film the
 * segmenter gets wrong must not become a lesson. Pure functions over 0/1 masks.
 */
import { rotateScaleShift, warpAffine } from './affine.js';
import { labelComponents, touchesBorder, type BinaryMask } from './components.js';
import { ttaViews, type TtaView } from './pixel-contract.js';
import { resizeBilinear } from './resize.js';
import { grayImage, type GrayImage } from './types.js';

/** The views a film is segmented under: the first three TTA views (identity, +5° with 1.05 zoom, −5° with 0.95). */
export const PSEUDO_VIEWS: readonly TtaView[] = ttaViews(3);

/** A view of a square input (rotation and zoom about the centre). */
export function viewOf(img: GrayImage, view: TtaView): GrayImage {
  if (view.angleDeg === 0 && view.scale === 1) return img;
  return warpAffine(img, rotateScaleShift(img.width, img.height, view.angleDeg, view.scale));
}

/** A map computed on a view, brought back to the film's frame (outside the view: 0). */
export function unviewOf(map: GrayImage, view: TtaView): GrayImage {
  if (view.angleDeg === 0 && view.scale === 1) return map;
  return warpAffine(map, rotateScaleShift(map.width, map.height, -view.angleDeg, 1 / view.scale));
}

export interface LungPair {
  /** pixel counts of the components, largest first */
  areas: number[];
  /** the components' centroid x as a fraction of the width, in the order of `areas` */
  centroidsX: number[];
  /** each component's area over its convex hull's (pixels as unit squares), in the order of `areas` */
  solidities: number[];
}

/** The 8-connected components of a mask with their areas, horizontal centroids and solidity, largest first. */
export function lungPair(mask: BinaryMask): LungPair {
  const { labels, sizes } = labelComponents(mask);
  const w = mask.width;
  const sumX = new Float64Array(sizes.length);
  // each component's first and last pixel per row: the hull of those squares is the component's
  const first = new Int32Array(sizes.length * mask.height).fill(-1);
  const last = new Int32Array(sizes.length * mask.height);
  for (let i = 0; i < labels.length; i++) {
    const id = labels[i] - 1;
    if (id < 0) continue;
    const x = i % w;
    const y = (i - x) / w;
    sumX[id] += x;
    const k = id * mask.height + y;
    if (first[k] < 0) first[k] = x;
    last[k] = x;
  }
  const solidity = (id: number): number => {
    const pts: [number, number][] = [];
    for (let y = 0; y < mask.height; y++) {
      const k = id * mask.height + y;
      if (first[k] < 0) continue;
      pts.push([first[k], y], [first[k], y + 1], [last[k] + 1, y], [last[k] + 1, y + 1]);
    }
    return sizes[id] / polygonArea(convexHull(pts));
  };
  const order = sizes.map((_, k) => k).sort((a, b) => sizes[b] - sizes[a] || a - b);
  return {
    areas: order.map((k) => sizes[k]),
    centroidsX: order.map((k) => (sumX[k] / sizes[k] + 0.5) / w),
    solidities: order.map(solidity),
  };
}

/** Andrew's monotone chain: the hull's corners counter-clockwise (y down), collinear points dropped. */
export function convexHull(points: readonly (readonly [number, number])[]): [number, number][] {
  const p = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]) as [number, number][];
  if (p.length < 3) return p;
  const cross = (o: [number, number], a: [number, number], b: [number, number]) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: [number, number][] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: [number, number][] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

/** Shoelace area of a simple polygon. */
export function polygonArea(poly: readonly (readonly [number, number])[]): number {
  let a = 0;
  for (let i = 0; i < poly.length; i++) {
    const [x0, y0] = poly[i];
    const [x1, y1] = poly[(i + 1) % poly.length];
    a += x0 * y1 - x1 * y0;
  }
  return Math.abs(a) / 2;
}

export interface PseudoMaskLimits {
  /** share of the frame the two lungs cover (the served QC limits) */
  minLungFraction: number;
  maxLungFraction: number;
  /** the smaller lung's area over the larger's */
  minLungBalance: number;
  /** mean Dice of each view's mask against the consensus */
  minViewAgreement: number;
  /** least solidity (area over convex hull area) of either lung: leaks into the neck, shoulders or mediastinum make a lung ragged */
  minSolidity: number;
}

export type PseudoMaskReason = 'not_two_lungs' | 'same_side' | 'lopsided' | 'irregular' | 'lung_area_low' | 'lung_area_high' | 'touches_border' | 'unstable';

export interface PseudoMaskVerdict {
  accepted: boolean;
  reasons: PseudoMaskReason[];
  lungFraction: number;
  balance: number;
  /** the lower solidity of the two largest components (0 without any) */
  solidity: number;
  agreement: number;
}

/**
 * Accept or reject a consensus mask. `agreement` is the mean Dice of the views' masks
 * against it; `limits` are README "Segmenter self-training" (the lung-area limits are the
 * served QC's, set on validation films; the others were read off the validation films'
 * distributions).
 */
export function pseudoMaskVerdict(mask: BinaryMask, agreement: number, limits: PseudoMaskLimits): PseudoMaskVerdict {
  const pair = lungPair(mask);
  const total = pair.areas.reduce((s, a) => s + a, 0);
  const lungFraction = total / (mask.width * mask.height);
  const balance = pair.areas.length >= 2 ? pair.areas[1] / pair.areas[0] : 0;
  const solidity = pair.solidities.length ? Math.min(...pair.solidities.slice(0, 2)) : 0;
  const reasons: PseudoMaskReason[] = [];
  if (pair.areas.length !== 2) reasons.push('not_two_lungs');
  else if (pair.centroidsX[0] < 0.5 === pair.centroidsX[1] < 0.5) reasons.push('same_side');
  else if (balance < limits.minLungBalance) reasons.push('lopsided');
  if (pair.areas.length > 0 && solidity < limits.minSolidity) reasons.push('irregular');
  if (lungFraction < limits.minLungFraction) reasons.push('lung_area_low');
  if (lungFraction > limits.maxLungFraction) reasons.push('lung_area_high');
  if (touchesBorder(mask)) reasons.push('touches_border');
  if (!(agreement >= limits.minViewAgreement)) reasons.push('unstable');
  return { accepted: reasons.length === 0, reasons, lungFraction, balance, solidity, agreement };
}

/**
 * A mask of the segmenter's grid drawn at a film's native size: bilinear on the 0/1 values
 * cut at one half, so the outline is smooth rather than blocky at an 8x upscale.
 */
export function maskAtSize(mask: BinaryMask, width: number, height: number): GrayImage {
  const up = resizeBilinear(grayImage(mask.width, mask.height, Float32Array.from(mask.data)), width, height);
  for (let i = 0; i < up.data.length; i++) up.data[i] = up.data[i] >= 0.5 ? 1 : 0;
  return up;
}
