/**
 * DICOM ingestion: Part 10 bytes → metadata, modality values, and a windowed image in [0,1].
 * Every failure is a CxrError with a stable code (E_NOT_DICOM, E_TRUNCATED, E_MALFORMED,
 * E_UNSUPPORTED_SYNTAX, E_DECODE_FAILED, E_NO_PIXEL_DATA, E_NOT_GRAYSCALE, E_MULTI_FRAME,
 * E_BAD_PIXEL_FORMAT, E_TOO_LARGE).
 */

export type { AppliedWindow, DicomMetadata, LookupTable, ModalityImage, WindowPolicy, WindowedFrame, WindowedImage } from './types.js';
export { observeDecoding, type DecodeStep } from './decode-observer.js';
export { checkDecodable, decodeModality, decodeModalityCodes, readInstance, readMetadata, type DecodeOptions, type DicomInstance } from './decode.js';
export { codesFromValues, codesFromWordTable, type SpreadCodes } from './modality-codes.js';
export { DATASET_SLACK_BYTES, maxInflatedBytes } from './inflate.js';
export { isValidUid, MAX_UID_LENGTH } from './uids.js';
export { applyWindow, chooseWindow, parseWindowPolicy, LUNG_WINDOW } from './window.js';
export { DEFAULT_MAX_PIXELS } from './pixel-format.js';
export { encodeDicom, newUid, wrapPart10, type ImageToWrite, type WriteSyntax } from './write.js';
export { readWindowed, readWindowedFrame } from './windowed.js';
export { isSyntaxSupported } from './frame.js';
export { SOP_CLASS, TRANSFER_SYNTAX } from './uids.js';
export { dicomJson, tagOf, vrOfTag, type DicomJsonDataset, type DicomJsonElement } from './json.js';
export { nativeFrame, rgbFrame } from './frame-out.js';
