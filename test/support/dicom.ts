/** Shared test helpers: external reference tools (pydicom, DCMTK) and synthetic images. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../src/data/rng.js';

export const PYTHON = '/usr/bin/python3';
export const PYDICOM_CORPUS = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cxr-dicom-${prefix}-`));
}

/** Runs a tool, failing the test with its stderr when it is missing or fails. */
export function runTool(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${what}: cannot run ${cmd} (${r.error.message}); install it (.ci/run does: dcmtk, python3-pydicom)`);
  if (r.status !== 0) throw new Error(`${what}: ${cmd} exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
  return r.stdout;
}

/** A binary PGM (P5) as written by dcm2pnm: 8-bit or 16-bit big-endian samples. */
export function readPgm(path: string): { width: number; height: number; maxval: number; data: Uint16Array } {
  const buf = readFileSync(path);
  let pos = 0;
  const tokens: string[] = [];
  while (tokens.length < 4) {
    while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos]))) pos++;
    if (buf[pos] === 0x23) {
      while (pos < buf.length && buf[pos] !== 0x0a) pos++;
      continue;
    }
    let t = '';
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos]))) t += String.fromCharCode(buf[pos++]);
    tokens.push(t);
  }
  pos++; // the single whitespace after maxval
  if (tokens[0] !== 'P5') throw new Error(`${path} is not a binary PGM (${tokens[0]})`);
  const [width, height, maxval] = tokens.slice(1).map(Number);
  const data = new Uint16Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = maxval < 256 ? buf[pos + i] : (buf[pos + 2 * i] << 8) | buf[pos + 2 * i + 1];
  return { width, height, maxval, data };
}

/** A seeded PRNG (mulberry32) so robustness cases are the same on every run. */
export const rng = mulberry32;
