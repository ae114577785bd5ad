/**
 * Output paths a command writes at its end, checked at its start: a folder where a file is to go
 * (or a file on the way to it) is E_BAD_ARGUMENT before minutes of scoring or generating, not an
 * E_INTERNAL stack after them with part of the output written.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CxrError } from '../errors.js';

type Kind = 'file' | 'folder' | 'missing';

async function kindOf(path: string): Promise<Kind> {
  const s = await stat(path).catch(() => null);
  return s === null ? 'missing' : s.isDirectory() ? 'folder' : 'file';
}

/** Every existing ancestor must be a folder (the missing ones are created when the output is written). */
async function checkAncestors(option: string, path: string): Promise<void> {
  for (let p = dirname(path); ; p = dirname(p)) {
    const k = await kindOf(p);
    if (k === 'file') throw new CxrError('E_BAD_ARGUMENT', `${option}: ${p} is a file, so ${path} cannot be written`);
    if (k === 'folder' || dirname(p) === p) return;
  }
}

/** A file the command will write (created or replaced). */
export async function checkOutputFile(option: string, path: string): Promise<void> {
  const abs = resolve(path);
  if ((await kindOf(abs)) === 'folder') throw new CxrError('E_BAD_ARGUMENT', `${option}: ${abs} is a folder, not a file to write`);
  await checkAncestors(option, abs);
}

/** A folder the command will write files into (created when missing). */
export async function checkOutputFolder(option: string, path: string): Promise<void> {
  const abs = resolve(path);
  if ((await kindOf(abs)) === 'file') throw new CxrError('E_BAD_ARGUMENT', `${option}: ${abs} is a file, not a folder to write into`);
  await checkAncestors(option, abs);
}
