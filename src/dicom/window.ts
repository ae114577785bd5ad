/**
 * The window policy (DESIGN "Window policy"): W1500/L-600 is a Hounsfield-unit window, so
 * `auto` gives it only to HU data and otherwise uses the file's own VOI, then min-max.
 * Every result says which window it applied and why.
 */
import { CxrError } from '../errors.js';
import { isCtSopClass } from './uids.js';
import type { AppliedWindow, DicomMetadata, LookupTable, ModalityImage, WindowPolicy, WindowedImage } from './types.js';
import { mapValues, type VoiMapping } from './voi.js';

export const LUNG_WINDOW = { center: -600, width: 1500 } as const;

/** Values below this cannot be detector units or display values: they are HU (air is -1000). */
export const HU_MIN_THRESHOLD = -500;

export function valueRange(values: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return values.length === 0 ? { min: 0, max: 0 } : { min, max };
}

/** What choosing a window needs to know about an image: its header and, lazily, its value range. */
export interface WindowInputs {
  meta: DicomMetadata;
  voiLut: LookupTable | null;
  range: () => { min: number; max: number };
  /** a cheap bound no value is below (e.g. the minimum of a lookup table); spares the range scan for the HU test */
  lowerBound?: number;
}

/** Why these values are Hounsfield units, or null when nothing says they are. */
export function huEvidence(meta: DicomMetadata, min: () => number): string | null {
  const m = meta;
  if ((m.rescaleType ?? '').toUpperCase() === 'HU') return 'RescaleType is HU';
  if ((m.modality ?? '').toUpperCase() === 'CT') return 'Modality is CT';
  if (isCtSopClass(m.sopClassUid)) return 'the SOP class is a CT image';
  const lo = min();
  if (lo < HU_MIN_THRESHOLD) return `values reach ${fmt(lo)}, below ${HU_MIN_THRESHOLD}`;
  return null;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

export interface Choice {
  window: Omit<AppliedWindow, 'policy'>;
  mapping: VoiMapping;
}

function lung(reason: string): Choice {
  return {
    window: { source: 'lung', center: LUNG_WINDOW.center, width: LUNG_WINDOW.width, reason },
    mapping: { kind: 'linear', ...LUNG_WINDOW },
  };
}

/** DCMTK's min-max window: C=(min+max+1)/2, W=max-min+1, so min maps to 0 and max to 1. */
function minmax(range: () => { min: number; max: number }, why: string): Choice {
  const { min, max } = range();
  const center = (min + max + 1) / 2;
  const width = max - min + 1;
  return {
    window: { source: 'minmax', center, width, reason: `${why}min-max of the values ${fmt(min)}..${fmt(max)}` },
    mapping: { kind: 'linear', center, width },
  };
}

/** The file's own VOI: the first window centre/width, else its first VOI LUT; null if neither is usable. */
function header(img: WindowInputs, why: string): Choice | null {
  const m = img.meta;
  if (m.windowCenter.length > 0 && m.windowWidth.length > 0) {
    const center = m.windowCenter[0];
    const width = m.windowWidth[0];
    const fn = m.voiLutFunction;
    // a DS of 1e999 reads as Infinity: such a window maps every pixel to the middle grey
    const valid = Number.isFinite(width) && (fn === 'LINEAR' ? width >= 1 : width > 0);
    if (valid && Number.isFinite(center)) {
      const kind = fn === 'LINEAR' ? 'linear' : fn === 'LINEAR_EXACT' ? 'linear-exact' : 'sigmoid';
      const fnNote = fn === 'LINEAR' ? '' : ` (${fn})`;
      return {
        window: { source: 'header', center, width, reason: `${why}the file's window C${fmt(center)}/W${fmt(width)}${fnNote}` },
        mapping: { kind, center, width },
      };
    }
  }
  if (img.voiLut !== null) {
    const n = img.voiLut.data.length;
    return {
      window: { source: 'voi-lut', center: null, width: null, reason: `${why}the file's VOI LUT (${n} entries from ${img.voiLut.firstMapped})` },
      mapping: { kind: 'lut', lut: img.voiLut },
    };
  }
  return null;
}

export function chooseWindow(img: WindowInputs, policy: WindowPolicy): Choice {
  let range: { min: number; max: number } | null = null;
  const getRange = () => (range ??= img.range());
  switch (policy.kind) {
    case 'lung':
      return lung('lung window W1500/L-600 as requested');
    case 'explicit': {
      const { center, width } = policy;
      if (!Number.isFinite(center) || !Number.isFinite(width) || width < 1)
        throw new CxrError('E_BAD_ARGUMENT', `window width must be >= 1 and centre finite, got C${center}/W${width}`);
      return {
        window: { source: 'explicit', center, width, reason: `explicit window C${fmt(center)}/W${fmt(width)} as requested` },
        mapping: { kind: policy.fn ?? 'linear', center, width },
      };
    }
    case 'minmax':
      return minmax(getRange, '');
    case 'header':
      return header(img, '') ?? minmax(getRange, 'the file has no usable window or VOI LUT; ');
    case 'auto': {
      const lb = img.lowerBound;
      const hu = huEvidence(img.meta, () => (lb !== undefined && lb >= HU_MIN_THRESHOLD ? lb : getRange().min));
      if (hu !== null) return lung(`auto: ${hu}, so the lung window W1500/L-600`);
      return header(img, 'auto: not Hounsfield units; ') ?? minmax(getRange, 'auto: not Hounsfield units and the file has no window; ');
    }
    default: {
      const never: never = policy;
      throw new CxrError('E_BAD_ARGUMENT', `unknown window policy ${JSON.stringify(never)}`);
    }
  }
}

export function applyWindow(img: ModalityImage, policy: WindowPolicy): WindowedImage {
  const choice = chooseWindow({ meta: img.meta, voiLut: img.voiLut ?? null, range: () => valueRange(img.values) }, policy);
  const invert = img.meta.photometricInterpretation === 'MONOCHROME1';
  return {
    meta: img.meta,
    width: img.width,
    height: img.height,
    data: mapValues(img.values, choice.mapping, invert),
    window: { policy: policy.kind, ...choice.window },
  };
}

const POLICY_KINDS = ['auto', 'lung', 'header', 'minmax'] as const;

/** Parses the CLI/API form: a policy name, or a centre and width (which win over the name). */
export function parseWindowPolicy(name: string | undefined, center?: number, width?: number): WindowPolicy {
  if (center !== undefined || width !== undefined) {
    if (center === undefined || width === undefined) throw new CxrError('E_BAD_ARGUMENT', 'give both --center and --width');
    if (name !== undefined && name !== 'explicit') throw new CxrError('E_BAD_ARGUMENT', `--window ${name} conflicts with --center/--width`);
    if (!(width >= 1)) throw new CxrError('E_BAD_ARGUMENT', `window width must be >= 1, got ${width}`);
    return { kind: 'explicit', center, width };
  }
  const kind = name ?? 'auto';
  if (!(POLICY_KINDS as readonly string[]).includes(kind))
    throw new CxrError('E_BAD_ARGUMENT', `--window must be one of ${POLICY_KINDS.join(', ')}, got '${kind}'`);
  return { kind: kind as (typeof POLICY_KINDS)[number] };
}
