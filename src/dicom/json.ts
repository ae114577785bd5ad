/**
 * The DICOM JSON model (PS3.18 F.2) of a Part 10 instance, as WADO-RS metadata returns it:
 * tags as 8 upper-case hex digits, each with its VR (from the file, or the data dictionary for
 * implicit VR files: dcmjs reads both), PN values as objects with their component groups,
 * sequences as arrays of datasets, empty values without "Value", and the pixel data by
 * reference (BulkDataURI) rather than inline, so a viewer's metadata request stays small.
 */
import dcmjs, { type DcmjsElement } from 'dcmjs';
import { CxrError } from '../errors.js';
import { NATIVE_SYNTAXES } from './frame.js';

export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type DicomJsonDataset = Record<string, DicomJsonElement>;

// dcmjs logs every odd element to the console; a service's log is its own business
dcmjs.log.setLevel('silent');
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
/** Pixel Data, Float and Double Float Pixel Data: by reference */
const PIXEL_TAGS = new Set(['7FE00010', '7FE00008', '7FE00009']);

function base64(v: unknown): string {
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString('base64');
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  return '';
}

/** A PN value as PS3.18 F.2.2: an object of Alphabetic/Ideographic/Phonetic, never a bare string. */
function personName(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'string') {
    const [alphabetic, ideographic, phonetic] = v.split('=');
    const o: Record<string, string> = {};
    if (alphabetic) o.Alphabetic = alphabetic;
    if (ideographic) o.Ideographic = ideographic;
    if (phonetic) o.Phonetic = phonetic;
    return Object.keys(o).length > 0 ? o : null;
  }
  return v;
}

function element(tag: string, el: DcmjsElement, bulk: ((tag: string) => string) | null): DicomJsonElement | null {
  const vr = el.vr;
  if (BINARY_VRS.has(vr)) {
    if (bulk && PIXEL_TAGS.has(tag)) return { vr, BulkDataURI: bulk(tag) };
    const parts = (el.Value ?? []).map(base64).filter((b) => b !== '');
    // encapsulated data comes as several fragments: inline only a plain value
    return parts.length === 1 ? { vr, InlineBinary: parts[0] } : { vr };
  }
  if (vr === 'SQ') {
    const items = (el.Value ?? []) as Record<string, DcmjsElement>[];
    return items.length > 0 ? { vr, Value: items.map((i) => dataset(i, null)) } : { vr };
  }
  let values = (el.Value ?? []).map((v) =>
    vr === 'PN' ? personName(v) : v === '' || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? null : v,
  );
  // a value of only empty entries is an empty element (F.2.5): no "Value"
  if (values.every((v) => v === null)) values = [];
  return values.length > 0 ? { vr, Value: values } : { vr };
}

function dataset(dict: Record<string, DcmjsElement>, bulk: ((tag: string) => string) | null): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const tag of Object.keys(dict).sort()) {
    const key = tag.toUpperCase();
    // group lengths say nothing in JSON; the file meta group is not part of the dataset
    if (key.endsWith('0000') || key.startsWith('0002')) continue;
    const el = element(key, dict[tag], bulk);
    if (el) out[key] = el;
  }
  return out;
}

/** The dataset of a Part 10 file as DICOM JSON; `bulk(tag)` gives the pixel data's BulkDataURI. */
export function dicomJson(bytes: Uint8Array, bulk: (tag: string) => string): DicomJsonDataset {
  let parsed: ReturnType<typeof dcmjs.data.DicomMessage.readFile>;
  try {
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    // the pixel data is only referenced: stop reading there rather than copy megabytes
    parsed = dcmjs.data.DicomMessage.readFile(ab, { ignoreErrors: true, untilTag: '7FE00010', includeUntilTagValue: false });
  } catch (e) {
    throw new CxrError('E_MALFORMED', `cannot read the dataset as DICOM JSON (${String((e as Error)?.message ?? e).slice(0, 200)})`);
  }
  const pixel = parsed.dict['7FE00010'] ?? parsed.dict['7fe00010'];
  if (pixel && !pixel.vr) {
    // read up to, not into, the pixel data: its VR is OW for native words wider than a byte, else OB (PS3.5 8.2)
    const syntax = String(parsed.meta['00020010']?.Value?.[0] ?? '');
    const bits = Number(parsed.dict['00280100']?.Value?.[0] ?? 16);
    pixel.vr = NATIVE_SYNTAXES.has(syntax) && bits > 8 ? 'OW' : 'OB';
  }
  return dataset(parsed.dict, bulk);
}

/** The tag (8 upper-case hex digits) of an attribute keyword, or of a tag given as such; null when neither. */
export function tagOf(keywordOrTag: string): string | null {
  if (/^[0-9A-Fa-f]{8}$/.test(keywordOrTag)) return keywordOrTag.toUpperCase();
  const entry = dcmjs.data.DicomMetaDictionary.nameMap[keywordOrTag];
  return entry ? dcmjs.data.DicomMetaDictionary.unpunctuateTag(entry.tag).toUpperCase() : null;
}

/** The data dictionary's VR of a tag (8 hex digits); UN when the dictionary has none. */
export function vrOfTag(tag: string): string {
  const t = tag.toUpperCase();
  const entry = dcmjs.data.DicomMetaDictionary.dictionary[`(${t.slice(0, 4)},${t.slice(4)})`];
  return entry?.vr && /^[A-Z]{2}$/.test(entry.vr) ? entry.vr : 'UN';
}
