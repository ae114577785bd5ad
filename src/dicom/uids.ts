/** The UIDs this package reads and writes, named once. */
export const TRANSFER_SYNTAX = {
  implicitLittle: '1.2.840.10008.1.2',
  explicitLittle: '1.2.840.10008.1.2.1',
  deflatedExplicitLittle: '1.2.840.10008.1.2.1.99',
  explicitBig: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  jpeg2000: '1.2.840.10008.1.2.4.91',
  rleLossless: '1.2.840.10008.1.2.5',
} as const;

export const SOP_CLASS = {
  crImage: '1.2.840.10008.5.1.4.1.1.1',
  dxForPresentation: '1.2.840.10008.5.1.4.1.1.1.1',
  dxForProcessing: '1.2.840.10008.5.1.4.1.1.1.1.1',
  ctImage: '1.2.840.10008.5.1.4.1.1.2',
  secondaryCapture: '1.2.840.10008.5.1.4.1.1.7',
} as const;

const SYNTAX_NAMES: Record<string, string> = {
  [TRANSFER_SYNTAX.implicitLittle]: 'Implicit VR Little Endian',
  [TRANSFER_SYNTAX.explicitLittle]: 'Explicit VR Little Endian',
  [TRANSFER_SYNTAX.deflatedExplicitLittle]: 'Deflated Explicit VR Little Endian',
  [TRANSFER_SYNTAX.explicitBig]: 'Explicit VR Big Endian',
  [TRANSFER_SYNTAX.jpegBaseline]: 'JPEG Baseline (Process 1)',
  [TRANSFER_SYNTAX.jpegExtended]: 'JPEG Extended (Process 2 & 4)',
  [TRANSFER_SYNTAX.jpegLossless]: 'JPEG Lossless, Non-Hierarchical (Process 14)',
  [TRANSFER_SYNTAX.jpegLosslessSV1]: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])',
  [TRANSFER_SYNTAX.jpegLsLossless]: 'JPEG-LS Lossless',
  [TRANSFER_SYNTAX.jpegLsNearLossless]: 'JPEG-LS Lossy (Near-Lossless)',
  [TRANSFER_SYNTAX.jpeg2000Lossless]: 'JPEG 2000 (Lossless Only)',
  [TRANSFER_SYNTAX.jpeg2000]: 'JPEG 2000',
  [TRANSFER_SYNTAX.rleLossless]: 'RLE Lossless',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile @ Main Level',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
};

export function transferSyntaxName(uid: string): string {
  return SYNTAX_NAMES[uid] ?? 'unknown transfer syntax';
}

const CT_SOP_CLASSES = new Set<string>([SOP_CLASS.ctImage, '1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2']);

/** CT Image, Enhanced CT and Legacy Converted Enhanced CT: their values are Hounsfield units. */
export function isCtSopClass(uid: string | null): boolean {
  return uid !== null && CT_SOP_CLASSES.has(uid);
}

/** PS3.5 9.1: a UID is at most 64 characters. */
export const MAX_UID_LENGTH = 64;

/**
 * PS3.5 9.1: digits in dot-separated components, at most 64 characters. Leading zeros in a
 * component are tolerated (some devices write them); anything else (quotes, letters, spaces
 * inside, empty components) is not a UID.
 */
export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= MAX_UID_LENGTH && /^[0-9]+(\.[0-9]+)*$/.test(uid);
}
