/** The shapes src/dicom hands to the rest of the system (re-exported by index.ts). */

export type WindowPolicy =
  | { kind: 'auto' }
  | { kind: 'lung' }
  | { kind: 'header' }
  | { kind: 'minmax' }
  | {
      kind: 'explicit';
      center: number;
      width: number;
      /** VOI LUT Function (PS3.3 C.11.2.1.3); default linear */
      fn?: 'linear' | 'linear-exact' | 'sigmoid';
    };

export interface AppliedWindow {
  policy: WindowPolicy['kind'];
  source: 'lung' | 'header' | 'voi-lut' | 'minmax' | 'explicit';
  /** null for a VOI LUT, which has no centre and width */
  center: number | null;
  width: number | null;
  /** one line saying why this window was chosen */
  reason: string;
}

export interface DicomMetadata {
  studyInstanceUid: string | null;
  seriesInstanceUid: string | null;
  sopInstanceUid: string | null;
  sopClassUid: string | null;
  patientId: string | null;
  /** PatientAge (0010,1010) as written (AS: nnnD|W|M|Y); what chooses a threshold population */
  patientAge?: string | null;
  /** PatientBirthDate (0010,0030) as YYYY-MM-DD; null when absent or not a real date */
  patientBirthDate?: string | null;
  /** AccessionNumber (0008,0050): the RIS order this study fulfils */
  accessionNumber: string | null;
  /** StudyDate (0008,0020) as YYYY-MM-DD; null when absent or not a real date */
  studyDate: string | null;
  modality: string | null;
  viewPosition: string | null;
  bodyPartExamined: string | null;
  /** '' when the file has no pixel module */
  photometricInterpretation: string;
  rows: number;
  columns: number;
  pixelSpacing: [number, number] | null;
  imagerPixelSpacing: [number, number] | null;
  transferSyntaxUid: string;
  transferSyntaxName: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: number;
  samplesPerPixel: number;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  rescaleType: string | null;
  windowCenter: number[];
  windowWidth: number[];
  /** VOI LUT Function (0028,1056): LINEAR unless the file says otherwise */
  voiLutFunction: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
  hasModalityLut: boolean;
  hasVoiLut: boolean;
  hasPixelData: boolean;
}

/** A lookup table as DICOM describes one (PS3.3 C.11.1.1.1): descriptor plus data. */
export interface LookupTable {
  /** stored/modality value mapped to the first entry */
  firstMapped: number;
  /** bits per entry, from the descriptor */
  bits: number;
  data: Uint16Array;
  explanation: string | null;
}

export interface ModalityImage {
  meta: DicomMetadata;
  width: number;
  height: number;
  /** modality values after the modality LUT (rescale or LUT sequence), row-major */
  values: Float32Array;
  /** the first VOI LUT of the file, when it has one (absent for images made in memory) */
  voiLut?: LookupTable | null;
}

export interface WindowedImage {
  meta: DicomMetadata;
  width: number;
  height: number;
  /** [0,1], row-major, MONOCHROME1 already inverted */
  data: Float32Array;
  window: AppliedWindow;
}

/**
 * A windowed frame left as its stored words plus the display value of every possible word
 * (pixel i is values[codes[i]]): what a consumer that only samples the image (a resize, a
 * crop) needs, without a float copy of the whole frame. 32-bit frames have no table and
 * come as `data` instead.
 */
export type WindowedFrame = Omit<WindowedImage, 'data'> &
  ({ codes: Uint8Array | Uint16Array; values: Float32Array; data?: undefined } | { data: Float32Array; codes?: undefined; values?: undefined });
