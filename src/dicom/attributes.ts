/**
 * Typed, validating reads of attributes from a dicom-parser DataSet. dicom-parser's own
 * `intString` is parseInt, which reads '1A' as 1; these readers refuse what the VR forbids.
 */
import type { DataSet, Element } from 'dicom-parser';
import { CxrError } from '../errors.js';

/** dicom-parser keys elements as 'xggggeeee'. */
export function tagKey(group: number, element: number): string {
  return `x${group.toString(16).padStart(4, '0')}${element.toString(16).padStart(4, '0')}`;
}

export const TAG = {
  sopClassUid: tagKey(0x0008, 0x0016),
  sopInstanceUid: tagKey(0x0008, 0x0018),
  studyDate: tagKey(0x0008, 0x0020),
  accessionNumber: tagKey(0x0008, 0x0050),
  modality: tagKey(0x0008, 0x0060),
  patientId: tagKey(0x0010, 0x0020),
  patientBirthDate: tagKey(0x0010, 0x0030),
  patientAge: tagKey(0x0010, 0x1010),
  bodyPartExamined: tagKey(0x0018, 0x0015),
  imagerPixelSpacing: tagKey(0x0018, 0x1164),
  viewPosition: tagKey(0x0018, 0x5101),
  studyInstanceUid: tagKey(0x0020, 0x000d),
  seriesInstanceUid: tagKey(0x0020, 0x000e),
  samplesPerPixel: tagKey(0x0028, 0x0002),
  photometricInterpretation: tagKey(0x0028, 0x0004),
  planarConfiguration: tagKey(0x0028, 0x0006),
  numberOfFrames: tagKey(0x0028, 0x0008),
  rows: tagKey(0x0028, 0x0010),
  columns: tagKey(0x0028, 0x0011),
  pixelSpacing: tagKey(0x0028, 0x0030),
  bitsAllocated: tagKey(0x0028, 0x0100),
  bitsStored: tagKey(0x0028, 0x0101),
  highBit: tagKey(0x0028, 0x0102),
  pixelRepresentation: tagKey(0x0028, 0x0103),
  windowCenter: tagKey(0x0028, 0x1050),
  windowWidth: tagKey(0x0028, 0x1051),
  rescaleIntercept: tagKey(0x0028, 0x1052),
  rescaleSlope: tagKey(0x0028, 0x1053),
  rescaleType: tagKey(0x0028, 0x1054),
  voiLutFunction: tagKey(0x0028, 0x1056),
  modalityLutSequence: tagKey(0x0028, 0x3000),
  lutDescriptor: tagKey(0x0028, 0x3002),
  lutData: tagKey(0x0028, 0x3006),
  voiLutSequence: tagKey(0x0028, 0x3010),
  floatPixelData: tagKey(0x7fe0, 0x0008),
  doubleFloatPixelData: tagKey(0x7fe0, 0x0009),
  pixelData: tagKey(0x7fe0, 0x0010),
} as const;

function rawText(ds: DataSet, key: string): string | null {
  const el = ds.elements[key];
  if (el === undefined || el.length === 0 || el.length === undefined) return null;
  if (el.dataOffset + el.length > ds.byteArray.length) return null;
  let s = '';
  const end = el.dataOffset + el.length;
  for (let i = el.dataOffset; i < end; i++) {
    const c = ds.byteArray[i];
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** A text value with DICOM padding removed; null when absent or empty. */
export function text(ds: DataSet, key: string): string | null {
  const el = ds.elements[key];
  if (el === undefined || !el.length) return null;
  let s: string | undefined;
  try {
    s = ds.string(key);
  } catch {
    return null;
  }
  if (s === undefined) return null;
  const trimmed = s.replace(/\0+$/, '').trim();
  return trimmed === '' ? null : trimmed;
}

/** Backslash-separated text values. */
function textValues(ds: DataSet, key: string): string[] {
  const s = rawText(ds, key);
  if (s === null) return [];
  return s.split('\\').map((v) => v.trim());
}

const DS_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const IS_PATTERN = /^[+-]?\d+$/;

function malformed(name: string, value: string): CxrError {
  return new CxrError('E_MALFORMED', `${name} holds '${value.slice(0, 32)}', which is not a valid number`);
}

/** All values of a Decimal String attribute; empty when absent. */
export function decimals(ds: DataSet, key: string, name: string): number[] {
  return textValues(ds, key)
    .filter((v) => v !== '')
    .map((v) => {
      if (!DS_PATTERN.test(v)) throw malformed(name, v);
      return Number(v);
    });
}

export function decimal(ds: DataSet, key: string, name: string): number | null {
  const v = decimals(ds, key, name);
  return v.length > 0 ? v[0] : null;
}

export function integerString(ds: DataSet, key: string, name: string): number | null {
  const v = textValues(ds, key).filter((x) => x !== '');
  if (v.length === 0) return null;
  if (!IS_PATTERN.test(v[0])) throw malformed(name, v[0]);
  return Number(v[0]);
}

/** An unsigned short; null when absent or too short to hold one. */
export function uint16(ds: DataSet, key: string): number | null {
  const el: Element | undefined = ds.elements[key];
  if (el === undefined || el.length < 2 || el.dataOffset + 2 > ds.byteArray.length) return null;
  const v = ds.uint16(key);
  return v === undefined ? null : v;
}

/** The US/SS values of an element (LUT descriptors), read with the dataset's byte order. */
export function uint16Values(ds: DataSet, key: string): number[] {
  const el: Element | undefined = ds.elements[key];
  if (el === undefined || el.dataOffset + el.length > ds.byteArray.length) return [];
  const out: number[] = [];
  for (let i = 0; 2 * i + 1 < el.length; i++) {
    const v = ds.uint16(key, i);
    if (v === undefined) break;
    out.push(v);
  }
  return out;
}

export function pair(values: number[]): [number, number] | null {
  return values.length >= 2 ? [values[0], values[1]] : null;
}

export function sequenceItems(ds: DataSet, key: string): DataSet[] {
  const el = ds.elements[key];
  if (el === undefined || el.items === undefined) return [];
  return el.items.map((item) => item.dataSet).filter((d): d is DataSet => d !== undefined);
}

/** A DICOM DA value (YYYYMMDD, or the old YYYY.MM.DD) as YYYY-MM-DD; null when it is not a real date. */
export function isoDate(da: string | null): string | null {
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec((da ?? '').trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return null;
  return `${m[1]}-${m[2]}-${m[3]}`;
}
