/**
 * A simple chest-like 16-bit DICOM for tests and latency runs: bright body, two dark lung
 * fields, soft noise, a CR-style detector range with its own VOI window. Deterministic per
 * seed. (The synthetic-radiograph generator makes realistic phantoms; this only needs the
 * size and pixel format of a real study.)
 */
import { encodeDicom, newUid, type WriteSyntax } from '../dicom/index.js';

export interface ChestDicomOptions {
  size?: number;
  seed?: number;
  viewPosition?: string;
  bodyPartExamined?: string;
  /** StudyInstanceUID to use instead of the seed's own (several instances of one study) */
  studyInstanceUid?: string;
  accessionNumber?: string;
  /** DA, YYYYMMDD */
  studyDate?: string;
  /** AS, e.g. 007Y: what chooses a per-population threshold */
  patientAge?: string;
  /** DA, YYYYMMDD */
  patientBirthDate?: string;
}

export function chestDicom(opts: ChestDicomOptions = {}): Uint8Array {
  const size = opts.size ?? 2048;
  const seed = opts.seed ?? 1;
  const pixels = new Uint16Array(size * size);
  let s = (seed * 2654435761) >>> 0 || 1;
  const noise = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296 - 0.5;
  };
  const lungs = [
    { cx: 0.32 + 0.01 * (seed % 3), cy: 0.47, rx: 0.14, ry: 0.27 },
    { cx: 0.68, cy: 0.47, rx: 0.13, ry: 0.26 },
  ];
  for (let y = 0; y < size; y++) {
    const v = y / size;
    for (let x = 0; x < size; x++) {
      const u = x / size;
      const body = Math.exp(-(((u - 0.5) / 0.42) ** 8) - ((v - 0.55) / 0.55) ** 8);
      let lung = 0;
      for (const l of lungs) {
        const d = ((u - l.cx) / l.rx) ** 2 + ((v - l.cy) / l.ry) ** 2;
        lung = Math.max(lung, Math.min(1, Math.max(0, (1.15 - d) * 3)));
      }
      const density = 0.15 + 0.7 * body * (1 - 0.65 * lung) + 0.02 * noise();
      pixels[y * size + x] = Math.max(0, Math.min(4095, Math.round(density * 4095)));
    }
  }
  return encodeChestCr(pixels, size, {
    // a patient's age is part of the study: the same pixels with another age are another study
    uidParts: ['latency-dicom', seed, size, ...(opts.patientAge || opts.patientBirthDate ? [opts.patientAge ?? '', opts.patientBirthDate ?? ''] : [])],
    patientId: `LAT${seed}`,
    viewPosition: opts.viewPosition ?? 'PA',
    bodyPartExamined: opts.bodyPartExamined ?? 'CHEST',
    studyInstanceUid: opts.studyInstanceUid,
    accessionNumber: opts.accessionNumber,
    studyDate: opts.studyDate,
    patientAge: opts.patientAge,
    patientBirthDate: opts.patientBirthDate,
  });
}

/** A square 12-bit CR chest study around `pixels`, its UIDs derived from `uidParts`. */
export function encodeChestCr(
  pixels: Uint16Array,
  size: number,
  id: {
    uidParts: (string | number)[];
    patientId: string;
    viewPosition?: string;
    bodyPartExamined?: string;
    studyInstanceUid?: string;
    accessionNumber?: string;
    studyDate?: string;
    patientAge?: string;
    patientBirthDate?: string;
  },
  write: { transferSyntax?: WriteSyntax } = {},
): Uint8Array {
  const uid = (k: string) => newUid([...id.uidParts, k]);
  return encodeDicom(
    {
      rows: size,
      columns: size,
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels,
      modality: 'CR',
      studyInstanceUid: id.studyInstanceUid ?? uid('study'),
      accessionNumber: id.accessionNumber,
      studyDate: id.studyDate,
      patientAge: id.patientAge,
      patientBirthDate: id.patientBirthDate,
      seriesInstanceUid: uid('series'),
      sopInstanceUid: uid('sop'),
      patientId: id.patientId,
      viewPosition: id.viewPosition ?? 'PA',
      bodyPartExamined: id.bodyPartExamined ?? 'CHEST',
      windowCenter: 2048,
      windowWidth: 4096,
    },
    write,
  );
}
