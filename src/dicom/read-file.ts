import { readFile, stat } from 'node:fs/promises';
import { CxrError } from '../errors.js';

/** A DICOM larger than this is refused before reading (uncompressed 8192² 16-bit is 128 MiB). */
export const MAX_INPUT_BYTES = 512 * 1024 * 1024;

/** Reads a DICOM input file, turning a missing or unreadable path into a typed error. */
export async function readInputFile(path: string): Promise<Uint8Array> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new CxrError('E_NOT_FOUND', `${path} is not a file`);
    if (s.size > MAX_INPUT_BYTES) throw new CxrError('E_TOO_LARGE', `${path} is ${s.size} bytes, over the ${MAX_INPUT_BYTES}-byte limit`);
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if (e instanceof CxrError) throw e;
    throw new CxrError('E_NOT_FOUND', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
