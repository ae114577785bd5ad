/**
 * A small DICOM Part 10 writer for single-frame grayscale images (synthetic CR/DX phantoms,
 * test fixtures). It writes what a receiving archive expects: a preamble, file meta with its
 * group length, elements sorted by tag, even-length values with the padding each VR asks for,
 * and the Type 1/2 attributes of the CR, DX, CT and Secondary Capture IODs (Type 2 empty when
 * the caller has nothing to say).
 */
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { CxrError } from '../errors.js';
import { SOP_CLASS, TRANSFER_SYNTAX } from './uids.js';

export type WriteSyntax = 'explicit-le' | 'implicit-le' | 'explicit-be' | 'deflated-explicit-le';

export interface ImageToWrite {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  highBit?: number; // default bitsStored-1
  pixelRepresentation: 0 | 1;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  pixels: Uint8Array | Uint16Array | Int16Array; // stored values, row-major, length rows*columns
  modality: 'CR' | 'DX' | 'CT' | 'OT';
  sopClassUid?: string; // default derived from modality
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  patientId: string;
  patientName?: string;
  patientSex?: string;
  patientAge?: string;
  /** DA, YYYYMMDD */
  patientBirthDate?: string;
  studyDate?: string;
  studyTime?: string;
  accessionNumber?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  viewPosition?: string;
  /** row and column directions, e.g. ['L', 'F'] for a PA chest as read; DX defaults to that (Type 1 there) */
  patientOrientation?: [string, string];
  bodyPartExamined?: string;
  presentationIntent?: 'FOR PRESENTATION' | 'FOR PROCESSING';
  pixelSpacing?: [number, number];
  imagerPixelSpacing?: [number, number];
  rescaleSlope?: number;
  rescaleIntercept?: number;
  rescaleType?: string;
  windowCenter?: number;
  windowWidth?: number;
  windowExplanation?: string;
  kvp?: number;
  exposure?: number;
  manufacturer?: string;
  imageType?: string[];
  derivationDescription?: string;
  /**
   * What the bits of each stored word outside BitsStored hold. Real files carry zeros, a sign
   * extension, or leftovers (old overlay planes); readers must mask them away, and tests use
   * this to prove they do. Default: 'sign' for signed data (what most modalities write, and
   * what pydicom 2.x needs, since it does not sign-extend native pixel data), else 'zero'.
   */
  unusedBits?: 'zero' | 'sign' | 'ones';
  /** A Modality LUT Sequence item, written instead of RescaleSlope/Intercept. */
  modalityLut?: LutToWrite;
  /** A VOI LUT Sequence item (alone, or beside a window). */
  voiLut?: LutToWrite;
}

export interface LutToWrite {
  firstMapped: number;
  bits: 8 | 16 | number;
  data: number[] | Uint16Array;
  explanation?: string;
  /** Modality LUT Type (0028,3004), for a modality LUT; default 'US' */
  type?: string;
}

export interface WriteOptions {
  transferSyntax?: WriteSyntax;
}

const SYNTAX_UID: Record<WriteSyntax, string> = {
  'explicit-le': TRANSFER_SYNTAX.explicitLittle,
  'implicit-le': TRANSFER_SYNTAX.implicitLittle,
  'explicit-be': TRANSFER_SYNTAX.explicitBig,
  'deflated-explicit-le': TRANSFER_SYNTAX.deflatedExplicitLittle,
};

/** Our implementation UID root (a 2.25 UUID-derived UID fixed for this project). */
export const IMPLEMENTATION_CLASS_UID = '2.25.118764320598290637181040466851870924213';
export const IMPLEMENTATION_VERSION_NAME = 'CXR_TRIAGE_01';

/**
 * A deterministic UID under the 2.25 (UUID) root: the first 128 bits of a SHA-256 of the
 * seed parts, as a decimal. Same seed, same UID, so regenerated fixtures are byte-identical.
 */
export function newUid(seedParts: (string | number)[]): string {
  const h = createHash('sha256')
    .update(JSON.stringify(seedParts.map(String)))
    .digest();
  let n = 0n;
  for (let i = 0; i < 16; i++) n = (n << 8n) | BigInt(h[i]);
  return `2.25.${n.toString()}`;
}

// ---------------------------------------------------------------------------------------------
// Elements

type Vr = 'AE' | 'AS' | 'CS' | 'DA' | 'DS' | 'IS' | 'LO' | 'LT' | 'PN' | 'SH' | 'ST' | 'TM' | 'UI' | 'US' | 'UL' | 'SS' | 'OB' | 'OW' | 'SQ';

interface Element {
  tag: number; // (group << 16) | element
  vr: Vr;
  /** text VRs: the string; US/UL/SS: numbers; OB/OW: raw little-endian bytes; SQ: items. */
  value: string | number[] | Uint8Array | Element[][];
}

const LONG_LENGTH_VRS = new Set<Vr>(['OB', 'OW', 'SQ']);

function tag(group: number, element: number): number {
  return ((group << 16) | element) >>> 0;
}

function str(t: number, vr: Vr, value: string | undefined | null): Element {
  return { tag: t, vr, value: value ?? '' };
}

/** Decimal String: at most 16 characters, so shorten precision until it fits. */
export function formatDS(n: number): string {
  if (!Number.isFinite(n)) throw new CxrError('E_BAD_ARGUMENT', `DS value must be finite, got ${n}`);
  let s = String(n);
  if (s.length <= 16 && !s.includes('e')) return s;
  for (let p = 15; p >= 1; p--) {
    s = Number(n.toPrecision(p)).toString();
    if (s.length <= 16) return s;
    const e = n.toExponential(Math.max(0, p - 1)).replace('+', '');
    if (e.length <= 16) return e;
  }
  throw new CxrError('E_BAD_ARGUMENT', `cannot write ${n} as a DICOM decimal string`);
}

function ds(t: number, values: number[] | undefined): Element {
  return { tag: t, vr: 'DS', value: values ? values.map(formatDS).join('\\') : '' };
}

function is(t: number, value: number | undefined): Element {
  if (value !== undefined && !Number.isInteger(value)) throw new CxrError('E_BAD_ARGUMENT', `IS value must be an integer, got ${value}`);
  return { tag: t, vr: 'IS', value: value === undefined ? '' : String(value) };
}

function us(t: number, value: number): Element {
  return { tag: t, vr: 'US', value: [value] };
}

// ---------------------------------------------------------------------------------------------
// Byte output

class ByteSink {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  u16(v: number, little: boolean): void {
    this.ensure(2);
    this.view.setUint16(this.length, v, little);
    this.length += 2;
  }
  i16(v: number, little: boolean): void {
    this.ensure(2);
    this.view.setInt16(this.length, v, little);
    this.length += 2;
  }
  u32(v: number, little: boolean): void {
    this.ensure(4);
    this.view.setUint32(this.length, v, little);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i) & 0xff);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

interface Encoding {
  explicit: boolean;
  little: boolean;
}

function textBytes(vr: Vr, s: string): Uint8Array {
  const raw = Buffer.from(s, 'utf8');
  if (raw.length % 2 === 0) return new Uint8Array(raw);
  const out = new Uint8Array(raw.length + 1);
  out.set(raw);
  out[raw.length] = vr === 'UI' ? 0 : 0x20;
  return out;
}

function valueBytes(el: Element, enc: Encoding): Uint8Array {
  const { vr, value } = el;
  if (vr === 'SQ') {
    const sink = new ByteSink();
    for (const item of value as Element[][]) {
      const body = encodeElements(item, enc);
      sink.u16(0xfffe, enc.little);
      sink.u16(0xe000, enc.little);
      sink.u32(body.length, enc.little);
      sink.bytes(body);
    }
    return sink.result();
  }
  if (vr === 'US' || vr === 'SS' || vr === 'UL') {
    const sink = new ByteSink();
    for (const v of value as number[]) {
      if (vr === 'US') sink.u16(v, enc.little);
      else if (vr === 'SS') sink.i16(v, enc.little);
      else sink.u32(v, enc.little);
    }
    return sink.result();
  }
  if (vr === 'OB' || vr === 'OW') {
    const raw = value as Uint8Array;
    let out = raw;
    if (vr === 'OW' && !enc.little) {
      out = new Uint8Array(raw.length);
      for (let i = 0; i + 1 < raw.length; i += 2) {
        out[i] = raw[i + 1];
        out[i + 1] = raw[i];
      }
    }
    if (out.length % 2 === 1) {
      const padded = new Uint8Array(out.length + 1);
      padded.set(out);
      out = padded;
    }
    return out;
  }
  return textBytes(vr, value as string);
}

function encodeElements(elements: Element[], enc: Encoding): Uint8Array {
  const sorted = [...elements].sort((a, b) => a.tag - b.tag);
  const sink = new ByteSink();
  for (let i = 0; i < sorted.length; i++) {
    const el = sorted[i];
    if (i > 0 && sorted[i - 1].tag === el.tag) throw new Error(`duplicate tag ${el.tag.toString(16)}`);
    const body = valueBytes(el, enc);
    sink.u16(el.tag >>> 16, enc.little);
    sink.u16(el.tag & 0xffff, enc.little);
    if (!enc.explicit) {
      sink.u32(body.length, enc.little);
    } else if (LONG_LENGTH_VRS.has(el.vr)) {
      sink.ascii(el.vr);
      sink.u16(0, enc.little);
      sink.u32(body.length, enc.little);
    } else {
      if (body.length > 0xffff) throw new CxrError('E_BAD_ARGUMENT', `value of ${el.tag.toString(16)} is too long for VR ${el.vr}`);
      sink.ascii(el.vr);
      sink.u16(body.length, enc.little);
    }
    sink.bytes(body);
  }
  return sink.result();
}

// ---------------------------------------------------------------------------------------------
// Pixel words

function validate(img: ImageToWrite): number {
  const { rows, columns, bitsAllocated, bitsStored, pixelRepresentation } = img;
  const highBit = img.highBit ?? bitsStored - 1;
  const bad = (m: string): never => {
    throw new CxrError('E_BAD_ARGUMENT', m);
  };
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1 || rows > 0xffff || columns > 0xffff)
    bad(`rows and columns must be integers in 1..65535, got ${rows}x${columns}`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) bad(`bitsAllocated must be 8 or 16, got ${bitsAllocated}`);
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) bad(`bitsStored must be in 1..${bitsAllocated}, got ${bitsStored}`);
  if (!Number.isInteger(highBit) || highBit < bitsStored - 1 || highBit >= bitsAllocated)
    bad(`highBit must be in ${bitsStored - 1}..${bitsAllocated - 1}, got ${highBit}`);
  if (img.pixels.length !== rows * columns) bad(`pixels has ${img.pixels.length} values, expected ${rows * columns}`);
  const lo = pixelRepresentation === 1 ? -(2 ** (bitsStored - 1)) : 0;
  const hi = pixelRepresentation === 1 ? 2 ** (bitsStored - 1) - 1 : 2 ** bitsStored - 1;
  const px = img.pixels;
  for (let i = 0; i < px.length; i++) {
    const v = px[i];
    if (v < lo || v > hi) bad(`pixel ${i} = ${v} is outside the ${bitsStored}-bit ${pixelRepresentation ? 'signed' : 'unsigned'} range ${lo}..${hi}`);
  }
  return highBit;
}

/** Stored values → little-endian words with the value bits at HighBit. */
function pixelBytes(img: ImageToWrite, highBit: number): Uint8Array {
  const { bitsAllocated, bitsStored } = img;
  const n = img.pixels.length;
  const shift = highBit - bitsStored + 1;
  const valueMask = bitsStored === 32 ? 0xffffffff : 2 ** bitsStored - 1;
  const wordMask = 2 ** bitsAllocated - 1;
  const fieldMask = (valueMask * 2 ** shift) & wordMask;
  const fill = img.unusedBits ?? (img.pixelRepresentation === 1 ? 'sign' : 'zero');
  const out = new Uint8Array(n * (bitsAllocated / 8));
  for (let i = 0; i < n; i++) {
    const v = img.pixels[i];
    let word = ((v & valueMask) << shift) & wordMask;
    if (fill === 'ones') word |= ~fieldMask & wordMask;
    else if (fill === 'sign' && v < 0) word |= ~fieldMask & wordMask & ~((1 << shift) - 1);
    if (bitsAllocated === 8) out[i] = word;
    else {
      out[2 * i] = word & 0xff;
      out[2 * i + 1] = word >>> 8;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The dataset

function lutItem(lut: LutToWrite, signedInput: boolean, modality: boolean): Element[] {
  const n = lut.data.length;
  if (n < 1 || n > 65536) throw new CxrError('E_BAD_ARGUMENT', `a LUT needs 1..65536 entries, got ${n}`);
  const first = signedInput && lut.firstMapped < 0 ? lut.firstMapped + 0x10000 : lut.firstMapped;
  const data = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    data[2 * i] = lut.data[i] & 0xff;
    data[2 * i + 1] = (lut.data[i] >> 8) & 0xff;
  }
  const els: Element[] = [
    { tag: tag(0x0028, 0x3002), vr: signedInput ? 'SS' : 'US', value: [n === 65536 ? 0 : n, first, lut.bits] },
    { tag: tag(0x0028, 0x3006), vr: 'OW', value: data },
  ];
  if (lut.explanation !== undefined) els.push(str(tag(0x0028, 0x3003), 'LO', lut.explanation));
  if (modality) els.push(str(tag(0x0028, 0x3004), 'LO', lut.type ?? 'US'));
  return els;
}

function defaultSopClass(modality: ImageToWrite['modality'], intent: ImageToWrite['presentationIntent']): string {
  switch (modality) {
    case 'CR':
      return SOP_CLASS.crImage;
    case 'DX':
      return intent === 'FOR PROCESSING' ? SOP_CLASS.dxForProcessing : SOP_CLASS.dxForPresentation;
    case 'CT':
      return SOP_CLASS.ctImage;
    default:
      return SOP_CLASS.secondaryCapture;
  }
}

function datasetElements(img: ImageToWrite, sopClassUid: string, highBit: number): Element[] {
  const isDx = img.modality === 'DX';
  const isCt = img.modality === 'CT';
  const intent = img.presentationIntent ?? 'FOR PRESENTATION';
  const asciiOnly = [img.patientName, img.patientId, img.manufacturer, img.derivationDescription, img.windowExplanation].every(
    (s) => s === undefined || /^[\x20-\x7e]*$/.test(s),
  );
  const defaultImageType = isCt ? ['ORIGINAL', 'PRIMARY', 'AXIAL'] : ['ORIGINAL', 'PRIMARY'];
  const els: Element[] = [
    str(tag(0x0008, 0x0008), 'CS', (img.imageType ?? defaultImageType).join('\\')),
    str(tag(0x0008, 0x0016), 'UI', sopClassUid),
    str(tag(0x0008, 0x0018), 'UI', img.sopInstanceUid),
    str(tag(0x0008, 0x0020), 'DA', img.studyDate),
    str(tag(0x0008, 0x0030), 'TM', img.studyTime),
    str(tag(0x0008, 0x0050), 'SH', img.accessionNumber),
    str(tag(0x0008, 0x0060), 'CS', img.modality),
    str(tag(0x0008, 0x0070), 'LO', img.manufacturer),
    str(tag(0x0008, 0x0090), 'PN', ''),
    str(tag(0x0010, 0x0010), 'PN', img.patientName),
    str(tag(0x0010, 0x0020), 'LO', img.patientId),
    str(tag(0x0010, 0x0030), 'DA', img.patientBirthDate ?? ''),
    str(tag(0x0010, 0x0040), 'CS', img.patientSex),
    str(tag(0x0018, 0x0015), 'CS', img.bodyPartExamined),
    str(tag(0x0018, 0x5101), 'CS', img.viewPosition),
    str(tag(0x0020, 0x000d), 'UI', img.studyInstanceUid),
    str(tag(0x0020, 0x000e), 'UI', img.seriesInstanceUid),
    str(tag(0x0020, 0x0010), 'SH', ''),
    is(tag(0x0020, 0x0011), img.seriesNumber),
    is(tag(0x0020, 0x0013), img.instanceNumber),
    str(tag(0x0020, 0x0020), 'CS', (img.patientOrientation ?? (isDx ? ['L', 'F'] : ['', ''])).join('\\').replace(/^\\$/, '')),
    us(tag(0x0028, 0x0002), 1),
    str(tag(0x0028, 0x0004), 'CS', img.photometric),
    us(tag(0x0028, 0x0010), img.rows),
    us(tag(0x0028, 0x0011), img.columns),
    us(tag(0x0028, 0x0100), img.bitsAllocated),
    us(tag(0x0028, 0x0101), img.bitsStored),
    us(tag(0x0028, 0x0102), highBit),
    us(tag(0x0028, 0x0103), img.pixelRepresentation),
    {
      tag: tag(0x7fe0, 0x0010),
      vr: img.bitsAllocated === 8 ? 'OB' : 'OW',
      value: pixelBytes(img, highBit),
    },
  ];
  if (!asciiOnly) els.push(str(tag(0x0008, 0x0005), 'CS', 'ISO_IR 192'));
  if (img.patientAge !== undefined) els.push(str(tag(0x0010, 0x1010), 'AS', img.patientAge));
  if (img.kvp !== undefined || isCt) els.push(ds(tag(0x0018, 0x0060), img.kvp === undefined ? undefined : [img.kvp]));
  if (img.exposure !== undefined) els.push(is(tag(0x0018, 0x1152), Math.round(img.exposure)));
  if (img.derivationDescription !== undefined) els.push(str(tag(0x0008, 0x2111), 'ST', img.derivationDescription));
  if (img.imagerPixelSpacing !== undefined || isDx) els.push(ds(tag(0x0018, 0x1164), img.imagerPixelSpacing ?? img.pixelSpacing ?? [0.1, 0.1]));
  if (img.pixelSpacing !== undefined || isCt) els.push(ds(tag(0x0028, 0x0030), img.pixelSpacing ?? [1, 1]));

  const hasRescale = img.rescaleSlope !== undefined || img.rescaleIntercept !== undefined || img.rescaleType !== undefined;
  if (img.modalityLut !== undefined) {
    if (hasRescale) throw new CxrError('E_BAD_ARGUMENT', 'a modality LUT replaces RescaleSlope/Intercept; give one or the other');
    els.push({ tag: tag(0x0028, 0x3000), vr: 'SQ', value: [lutItem(img.modalityLut, img.pixelRepresentation === 1, true)] });
  } else if (hasRescale || isDx || isCt) {
    els.push(ds(tag(0x0028, 0x1052), [img.rescaleIntercept ?? 0]));
    els.push(ds(tag(0x0028, 0x1053), [img.rescaleSlope ?? 1]));
    const type = img.rescaleType ?? (isDx ? 'US' : isCt ? 'HU' : undefined);
    if (type !== undefined) els.push(str(tag(0x0028, 0x1054), 'LO', type));
  }
  if (img.windowCenter !== undefined && img.windowWidth !== undefined) {
    els.push(ds(tag(0x0028, 0x1050), [img.windowCenter]));
    els.push(ds(tag(0x0028, 0x1051), [img.windowWidth]));
    if (img.windowExplanation !== undefined) els.push(str(tag(0x0028, 0x1055), 'LO', img.windowExplanation));
  } else if (img.windowCenter !== undefined || img.windowWidth !== undefined) {
    throw new CxrError('E_BAD_ARGUMENT', 'windowCenter and windowWidth go together');
  }

  if (img.voiLut !== undefined) {
    const signedInput = img.pixelRepresentation === 1 || (img.rescaleIntercept ?? 0) < 0;
    els.push({ tag: tag(0x0028, 0x3010), vr: 'SQ', value: [lutItem(img.voiLut, signedInput, false)] });
  }
  if (isDx) {
    // DX Series, DX Anatomy Imaged, DX Image and DX Detector modules (PS3.3 C.8.11).
    els.push(str(tag(0x0008, 0x0068), 'CS', intent));
    els.push(str(tag(0x0020, 0x0062), 'CS', 'U'));
    els.push({ tag: tag(0x0040, 0x0555), vr: 'SQ', value: [] }); // Acquisition Context Sequence (Type 2)
    els.push(str(tag(0x0018, 0x7004), 'CS', '')); // Detector Type (Type 2)
    els.push(str(tag(0x0018, 0x1508), 'CS', '')); // Positioner Type (Type 2, DX Positioning)
    els.push(str(tag(0x0028, 0x1040), 'CS', 'LIN'));
    els.push({ tag: tag(0x0028, 0x1041), vr: 'SS', value: [1] });
    els.push(str(tag(0x0028, 0x2110), 'CS', '00'));
    els.push(str(tag(0x0028, 0x0301), 'CS', 'NO'));
    els.push(str(tag(0x2050, 0x0020), 'CS', img.photometric === 'MONOCHROME1' ? 'INVERSE' : 'IDENTITY'));
    const region = (img.bodyPartExamined ?? 'CHEST').toUpperCase() === 'CHEST' ? ['51185008', 'Chest'] : ['38266002', 'Entire body'];
    els.push({
      tag: tag(0x0008, 0x2218),
      vr: 'SQ',
      value: [[str(tag(0x0008, 0x0100), 'SH', region[0]), str(tag(0x0008, 0x0102), 'SH', 'SCT'), str(tag(0x0008, 0x0104), 'LO', region[1])]],
    });
    if (intent === 'FOR PRESENTATION' && img.windowCenter === undefined && img.voiLut === undefined) {
      // Window Center/Width are Type 1C for DX For Presentation without a VOI LUT: give the full range.
      const range = 2 ** img.bitsStored;
      const lo = img.pixelRepresentation === 1 ? -(range / 2) : 0;
      const slope = img.rescaleSlope ?? 1;
      const icpt = img.rescaleIntercept ?? 0;
      els.push(ds(tag(0x0028, 0x1050), [lo * slope + icpt + (range * slope) / 2]));
      els.push(ds(tag(0x0028, 0x1051), [range * Math.abs(slope)]));
    }
  }
  if (isCt) {
    els.push(is(tag(0x0020, 0x0012), 1)); // Acquisition Number (Type 2)
    els.push(ds(tag(0x0018, 0x0050), [1])); // Slice Thickness (Type 2)
    els.push(ds(tag(0x0020, 0x0032), [0, 0, 0]));
    els.push(ds(tag(0x0020, 0x0037), [1, 0, 0, 0, 1, 0]));
    els.push(str(tag(0x0020, 0x0052), 'UI', newUid([img.studyInstanceUid, 'frame-of-reference'])));
    els.push(str(tag(0x0020, 0x1040), 'LO', ''));
  }
  if (img.modality === 'OT') {
    els.push(str(tag(0x0008, 0x0064), 'CS', 'WSD')); // Conversion Type (Type 1 in SC Equipment)
  }
  return els;
}

function fileMeta(sopClassUid: string, sopInstanceUid: string, syntaxUid: string): Uint8Array {
  const enc: Encoding = { explicit: true, little: true };
  const body = encodeElements(
    [
      { tag: tag(0x0002, 0x0001), vr: 'OB', value: new Uint8Array([0, 1]) },
      str(tag(0x0002, 0x0002), 'UI', sopClassUid),
      str(tag(0x0002, 0x0003), 'UI', sopInstanceUid),
      str(tag(0x0002, 0x0010), 'UI', syntaxUid),
      str(tag(0x0002, 0x0012), 'UI', IMPLEMENTATION_CLASS_UID),
      str(tag(0x0002, 0x0013), 'SH', IMPLEMENTATION_VERSION_NAME),
    ],
    enc,
  );
  const groupLength = encodeElements([{ tag: tag(0x0002, 0x0000), vr: 'UL', value: [body.length] }], enc);
  const out = new Uint8Array(groupLength.length + body.length);
  out.set(groupLength);
  out.set(body, groupLength.length);
  return out;
}

function checkUid(name: string, uid: string): void {
  if (!/^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(uid) || uid.length > 64) throw new CxrError('E_BAD_ARGUMENT', `${name} is not a valid UID: '${uid}'`);
}

export function encodeDicom(img: ImageToWrite, opts: WriteOptions = {}): Uint8Array {
  const syntax = opts.transferSyntax ?? 'explicit-le';
  const syntaxUid = SYNTAX_UID[syntax];
  if (syntaxUid === undefined) throw new CxrError('E_BAD_ARGUMENT', `unknown transfer syntax '${syntax}'`);
  const highBit = validate(img);
  const sopClassUid = img.sopClassUid ?? defaultSopClass(img.modality, img.presentationIntent);
  checkUid('sopClassUid', sopClassUid);
  checkUid('studyInstanceUid', img.studyInstanceUid);
  checkUid('seriesInstanceUid', img.seriesInstanceUid);
  checkUid('sopInstanceUid', img.sopInstanceUid);

  const enc: Encoding = { explicit: syntax !== 'implicit-le', little: syntax !== 'explicit-be' };
  let dataset = encodeElements(datasetElements(img, sopClassUid, highBit), enc);
  if (syntax === 'deflated-explicit-le') dataset = new Uint8Array(deflateRawSync(dataset, { level: 6 }));
  return wrapPart10(dataset, sopClassUid, img.sopInstanceUid, syntaxUid);
}

/**
 * A dataset received without file meta (a DIMSE C-STORE data set, in the transfer syntax the
 * association negotiated) as a Part 10 file: preamble, "DICM", file meta naming the SOP class,
 * instance and syntax, then the dataset bytes untouched — so what is stored is what was sent.
 */
export function wrapPart10(dataset: Uint8Array, sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string): Uint8Array {
  const meta = fileMeta(sopClassUid, sopInstanceUid, transferSyntaxUid);
  const out = new Uint8Array(132 + meta.length + dataset.length);
  out.set([0x44, 0x49, 0x43, 0x4d], 128);
  out.set(meta, 132);
  out.set(dataset, 132 + meta.length);
  return out;
}
