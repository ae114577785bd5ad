/** Lookup tables from a Modality LUT or VOI LUT Sequence item (PS3.3 C.11.1.1, C.11.2.1.1). */
import type { DataSet } from 'dicom-parser';
import { CxrError } from '../errors.js';
import { TAG, tagKey, text, uint16Values } from './attributes.js';
import type { LookupTable } from './types.js';

const LUT_EXPLANATION = tagKey(0x0028, 0x3003);

/**
 * `signedInput` says whether the first-mapped value in the descriptor is SS (it is when the
 * values the LUT maps are signed).
 */
export function readLut(item: DataSet, signedInput: boolean, name: string): LookupTable {
  const desc = uint16Values(item, TAG.lutDescriptor);
  if (desc.length < 3) throw new CxrError('E_MALFORMED', `${name}: LUT Descriptor needs 3 values, has ${desc.length}`);
  const entries = desc[0] === 0 ? 65536 : desc[0];
  const firstMapped = signedInput && desc[1] >= 0x8000 ? desc[1] - 0x10000 : desc[1];
  const bits = desc[2];
  if (bits < 1 || bits > 16) throw new CxrError('E_MALFORMED', `${name}: LUT Descriptor bits ${bits} is not in 1..16`);
  const el = item.elements[TAG.lutData];
  if (el === undefined) throw new CxrError('E_MALFORMED', `${name}: LUT Data (0028,3006) is missing`);
  if (el.dataOffset + el.length > item.byteArray.length) throw new CxrError('E_TRUNCATED', `${name}: LUT Data runs past the end of the file`);
  const data = new Uint16Array(entries);
  if (el.length >= 2 * entries) {
    for (let i = 0; i < entries; i++) data[i] = item.uint16(TAG.lutData, i) ?? 0;
  } else if (bits <= 8 && el.length >= entries) {
    // Some writers pack 8-bit entries one per byte.
    for (let i = 0; i < entries; i++) data[i] = item.byteArray[el.dataOffset + i];
  } else {
    throw new CxrError('E_MALFORMED', `${name}: LUT Data has ${el.length} bytes for ${entries} entries`);
  }
  return { firstMapped, bits, data, explanation: text(item, LUT_EXPLANATION) };
}
