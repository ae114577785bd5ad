/**
 * What the service's derived objects (the AI result SR and Secondary Capture) share: the
 * patient and study attributes copied from the scored original, so a PACS files them into the
 * same patient and study; the "not for diagnostic use" marking; deterministic UIDs (building an
 * object again gives the same identity, so a re-send is a duplicate, never a second result);
 * and the Part 10 encoding, done by dcmjs.
 */
import dcmjs, { type NaturalDataset } from 'dcmjs';
import { CxrError } from '../errors.js';
import { TRANSFER_SYNTAX } from './uids.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, newUid } from './write.js';

export type { NaturalDataset };

const { DicomMetaDictionary, DicomDict, DicomMessage } = dcmjs.data;
// dcmjs logs unknown tags and odd lengths to the console; the service reports its own errors
dcmjs.log.setLevel('error');

/** Marking on every derived object: series description, image comments, banner. */
export const NOT_FOR_DIAGNOSTIC_USE = 'AI RESULT - NOT FOR DIAGNOSTIC USE';
export const MANUFACTURER = 'cxr-triage';

/** The source instance's identity and the patient/study attributes a derived object repeats. */
export interface SourceHeader {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  patientName: string;
  patientId: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  studyTime: string;
  referringPhysicianName: string;
  studyId: string;
  accessionNumber: string;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(text).join('\\');
  // dcmjs reads a PN as { Alphabetic: ... }
  if (typeof v === 'object') return String((v as { Alphabetic?: string }).Alphabetic ?? '');
  return String(v);
}

/** Reads the header of a stored original (stops before its pixel data). */
export function readSourceHeader(bytes: Uint8Array): SourceHeader {
  let ds: NaturalDataset;
  try {
    // dcmjs reads an ArrayBuffer: the bytes' own when they fill it, else a copy of just them
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const ab = (whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as ArrayBuffer;
    const dict = DicomMessage.readFile(ab, { untilTag: '7FE00010' });
    ds = DicomMetaDictionary.naturalizeDataset(dict.dict);
  } catch (e) {
    throw new CxrError('E_MALFORMED', `cannot read the source instance's header: ${(e as Error).message}`);
  }
  const need = (k: string) => {
    const v = text(ds[k]);
    if (!v) throw new CxrError('E_MALFORMED', `the source instance has no ${k}`);
    return v;
  };
  return {
    sopClassUid: need('SOPClassUID'),
    sopInstanceUid: need('SOPInstanceUID'),
    seriesInstanceUid: need('SeriesInstanceUID'),
    studyInstanceUid: need('StudyInstanceUID'),
    patientName: text(ds.PatientName),
    patientId: text(ds.PatientID),
    patientBirthDate: text(ds.PatientBirthDate),
    patientSex: text(ds.PatientSex),
    studyDate: text(ds.StudyDate),
    studyTime: text(ds.StudyTime),
    referringPhysicianName: text(ds.ReferringPhysicianName),
    studyId: text(ds.StudyID),
    accessionNumber: text(ds.AccessionNumber),
  };
}

/** Identity and time of one derived object. */
export interface DerivedIdentity {
  seriesInstanceUid: string;
  sopInstanceUid: string;
  seriesNumber: number;
  /** when the result was made (the prediction's time): ContentDate/Time, SeriesDate/Time */
  at: Date;
}

/**
 * UIDs for a derived object of one prediction: the same source instance, prediction and kind
 * always give the same series and instance UID.
 */
export function derivedUids(kind: 'sr' | 'sc', sourceSopInstanceUid: string, predictionId: string): { seriesInstanceUid: string; sopInstanceUid: string } {
  return {
    seriesInstanceUid: newUid(['cxr-triage derived series', kind, sourceSopInstanceUid, predictionId]),
    sopInstanceUid: newUid(['cxr-triage derived instance', kind, sourceSopInstanceUid, predictionId]),
  };
}

/** DA and TM in UTC (TimezoneOffsetFromUTC says so). */
export function dicomDateTime(at: Date): { date: string; time: string } {
  const iso = at.toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, ''), time: iso.slice(11, 19).replace(/:/g, '') };
}

/** Patient, General Study, General Series (minus modality), General Equipment and SOP Common attributes. */
export function commonAttributes(src: SourceHeader, id: DerivedIdentity, sopClassUid: string, softwareVersion: string): NaturalDataset {
  const t = dicomDateTime(id.at);
  return {
    // dcmjs reads the source's text in its own character set and writes UTF-8
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: sopClassUid,
    SOPInstanceUID: id.sopInstanceUid,
    InstanceCreationDate: t.date,
    InstanceCreationTime: t.time,
    TimezoneOffsetFromUTC: '+0000',
    PatientName: src.patientName,
    PatientID: src.patientId,
    PatientBirthDate: src.patientBirthDate,
    PatientSex: src.patientSex,
    StudyInstanceUID: src.studyInstanceUid,
    StudyDate: src.studyDate,
    StudyTime: src.studyTime,
    ReferringPhysicianName: src.referringPhysicianName,
    StudyID: src.studyId,
    AccessionNumber: src.accessionNumber,
    SeriesInstanceUID: id.seriesInstanceUid,
    SeriesNumber: String(id.seriesNumber),
    SeriesDate: t.date,
    SeriesTime: t.time,
    SeriesDescription: NOT_FOR_DIAGNOSTIC_USE,
    Manufacturer: MANUFACTURER,
    ManufacturerModelName: MANUFACTURER,
    SoftwareVersions: softwareVersion.slice(0, 64),
    InstanceNumber: '1',
    ContentDate: t.date,
    ContentTime: t.time,
  };
}

/** The dataset as a Part 10 file in Explicit VR Little Endian. */
export function encodePart10(dataset: NaturalDataset): Uint8Array {
  const sopClassUid = dataset.SOPClassUID as string;
  const sopInstanceUid = dataset.SOPInstanceUID as string;
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: TRANSFER_SYNTAX.explicitLittle,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write());
}
