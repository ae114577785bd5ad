/**
 * A result picture as a Secondary Capture Image (RGB, 8 bits a sample, uncompressed), in the
 * scored film's study, marked as burned-in annotation and "not for diagnostic use".
 */
import { commonAttributes, NOT_FOR_DIAGNOSTIC_USE, type DerivedIdentity, type NaturalDataset, type SourceHeader } from './derived.js';
import { SOP_CLASS } from './uids.js';

export interface RgbPicture {
  width: number;
  height: number;
  /** r,g,b per pixel, row-major */
  data: Uint8Array;
}

export function secondaryCaptureDataset(src: SourceHeader, id: DerivedIdentity, picture: RgbPicture, softwareVersion: string): NaturalDataset {
  if (picture.data.length !== picture.width * picture.height * 3) throw new RangeError('RGB picture size does not match its dimensions');
  // OB values are padded to an even length
  const pixels = new Uint8Array(picture.data.length + (picture.data.length % 2));
  pixels.set(picture.data);
  return {
    ...commonAttributes(src, id, SOP_CLASS.secondaryCapture, softwareVersion),
    Modality: 'OT',
    ConversionType: 'WSD',
    BodyPartExamined: 'CHEST',
    // an unpaired body part: Laterality (Type 2C) is then absent
    ImageType: ['DERIVED', 'SECONDARY'],
    PatientOrientation: '',
    BurnedInAnnotation: 'YES',
    ImageComments: NOT_FOR_DIAGNOSTIC_USE,
    DerivationDescription: 'AI result: lung outline and class activation heatmap over the windowed film',
    SourceImageSequence: [{ ReferencedSOPClassUID: src.sopClassUid, ReferencedSOPInstanceUID: src.sopInstanceUid }],
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: picture.height,
    Columns: picture.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    PixelData: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength)],
    _vrMap: { PixelData: 'OB' },
  };
}
