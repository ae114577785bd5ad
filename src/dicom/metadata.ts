/** The attributes the rest of the system needs, read once from a parsed file. */
import { TAG, decimal, decimals, integerString, isoDate, pair, sequenceItems, text, uint16 } from './attributes.js';
import type { ParsedDicom } from './parse.js';
import type { DicomMetadata } from './types.js';
import { transferSyntaxName } from './uids.js';

function voiLutFunction(value: string | null): DicomMetadata['voiLutFunction'] {
  const v = (value ?? '').toUpperCase();
  return v === 'LINEAR_EXACT' || v === 'SIGMOID' ? v : 'LINEAR';
}

export function extractMetadata(parsed: ParsedDicom): DicomMetadata {
  const ds = parsed.dataSet;
  const bitsStored = uint16(ds, TAG.bitsStored) ?? 0;
  const frames = integerString(ds, TAG.numberOfFrames, 'NumberOfFrames (0028,0008)');
  const pixelData = ds.elements[TAG.pixelData] ?? ds.elements[TAG.floatPixelData] ?? ds.elements[TAG.doubleFloatPixelData];
  return {
    studyInstanceUid: text(ds, TAG.studyInstanceUid),
    seriesInstanceUid: text(ds, TAG.seriesInstanceUid),
    sopInstanceUid: text(ds, TAG.sopInstanceUid),
    sopClassUid: text(ds, TAG.sopClassUid),
    patientId: text(ds, TAG.patientId),
    patientAge: text(ds, TAG.patientAge),
    patientBirthDate: isoDate(text(ds, TAG.patientBirthDate)),
    accessionNumber: text(ds, TAG.accessionNumber),
    studyDate: isoDate(text(ds, TAG.studyDate)),
    modality: text(ds, TAG.modality),
    viewPosition: text(ds, TAG.viewPosition),
    bodyPartExamined: text(ds, TAG.bodyPartExamined),
    photometricInterpretation: (text(ds, TAG.photometricInterpretation) ?? '').toUpperCase(),
    rows: uint16(ds, TAG.rows) ?? 0,
    columns: uint16(ds, TAG.columns) ?? 0,
    pixelSpacing: pair(decimals(ds, TAG.pixelSpacing, 'PixelSpacing (0028,0030)')),
    imagerPixelSpacing: pair(decimals(ds, TAG.imagerPixelSpacing, 'ImagerPixelSpacing (0018,1164)')),
    transferSyntaxUid: parsed.transferSyntaxUid,
    transferSyntaxName: transferSyntaxName(parsed.transferSyntaxUid),
    bitsAllocated: uint16(ds, TAG.bitsAllocated) ?? 0,
    bitsStored,
    highBit: uint16(ds, TAG.highBit) ?? (bitsStored > 0 ? bitsStored - 1 : 0),
    pixelRepresentation: uint16(ds, TAG.pixelRepresentation) ?? 0,
    samplesPerPixel: uint16(ds, TAG.samplesPerPixel) ?? 1,
    numberOfFrames: frames ?? 1,
    rescaleSlope: decimal(ds, TAG.rescaleSlope, 'RescaleSlope (0028,1053)') ?? 1,
    rescaleIntercept: decimal(ds, TAG.rescaleIntercept, 'RescaleIntercept (0028,1052)') ?? 0,
    rescaleType: text(ds, TAG.rescaleType),
    windowCenter: decimals(ds, TAG.windowCenter, 'WindowCenter (0028,1050)'),
    windowWidth: decimals(ds, TAG.windowWidth, 'WindowWidth (0028,1051)'),
    voiLutFunction: voiLutFunction(text(ds, TAG.voiLutFunction)),
    hasModalityLut: sequenceItems(ds, TAG.modalityLutSequence).length > 0,
    hasVoiLut: sequenceItems(ds, TAG.voiLutSequence).length > 0,
    hasPixelData: pixelData !== undefined,
  };
}
