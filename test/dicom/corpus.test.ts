/**
 * The real DICOM corpus Debian's python3-pydicom ships: every single-frame grayscale file
 * decodes to pydicom's modality values (pixel_array through apply_modality_lut), and every
 * other file ends in a typed error. The counts are printed for the record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeModality } from '../../src/dicom/index.js';
import { TRANSFER_SYNTAX } from '../../src/dicom/uids.js';
import { CxrError } from '../../src/errors.js';
import { PYDICOM_CORPUS, PYTHON, runTool, scratchDir } from '../support/dicom.js';

const DUMP_SCRIPT = fileURLToPath(new URL('./pydicom_dump.py', import.meta.url));

interface PydicomRecord {
  file: string;
  category: 'single-frame-grayscale' | 'other';
  reason?: string;
  transferSyntax?: string;
  decoded?: boolean;
  noHandler?: boolean;
  error?: string;
  values?: string;
  shape?: number[];
}

/** Lossy syntaxes: the codec may legitimately differ from pydicom's by rounding. */
const LOSSY = new Set<string>([TRANSFER_SYNTAX.jpegBaseline, TRANSFER_SYNTAX.jpegExtended, TRANSFER_SYNTAX.jpeg2000, TRANSFER_SYNTAX.jpegLsNearLossless]);

/**
 * Syntaxes we refuse on purpose, with the reason: no maintained npm codec decodes 12-bit
 * JPEG DCT (libjpeg-turbo's 8-bit build is the one the issue names); pydicom's Pillow cannot either.
 */
const DECLARED_UNSUPPORTED = new Map<string, string>([[TRANSFER_SYNTAX.jpegExtended, '12-bit JPEG Extended']]);

function walk(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    })
    .sort();
}

test('pydicom corpus: single-frame grayscale files match pydicom, all others end in a typed error', { timeout: 180_000 }, async (t) => {
  assert.ok(existsSync(PYDICOM_CORPUS), `the pydicom test corpus is missing at ${PYDICOM_CORPUS}: install python3-pydicom`);
  const files = walk(PYDICOM_CORPUS);
  const out = scratchDir('pydicom');
  const records: PydicomRecord[] = runTool(PYTHON, [DUMP_SCRIPT, out, ...files], 'pydicom reference dump')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PydicomRecord);
  assert.equal(records.length, files.length);

  const counts = {
    files: files.length,
    grayscaleSingleFrame: 0,
    matchedExact: 0,
    matchedLossy: 0,
    decodedWherePydicomHasNoDecoder: 0,
    refusedUnsupportedSyntax: 0,
    brokenTypedError: 0,
    otherTypedError: 0,
  };
  const otherCodes = new Map<string, number>();
  const lossyDiffs: string[] = [];
  const failures: string[] = [];

  for (const rec of records) {
    const name = relative(PYDICOM_CORPUS, rec.file);
    const bytes = readFileSync(rec.file);
    let result: Awaited<ReturnType<typeof decodeModality>> | CxrError;
    try {
      result = await decodeModality(bytes);
    } catch (e) {
      if (!(e instanceof CxrError)) {
        failures.push(`${name}: untyped ${(e as Error)?.stack ?? String(e)}`);
        continue;
      }
      result = e;
    }

    if (rec.category === 'other') {
      if (!(result instanceof CxrError)) failures.push(`${name}: pydicom says '${rec.reason}', but it decoded`);
      else {
        counts.otherTypedError++;
        otherCodes.set(result.code, (otherCodes.get(result.code) ?? 0) + 1);
      }
      continue;
    }

    counts.grayscaleSingleFrame++;
    const syntax = rec.transferSyntax ?? '';
    if (rec.decoded) {
      if (result instanceof CxrError) {
        failures.push(`${name}: pydicom decodes it, we fail with ${result.code}: ${result.message}`);
        continue;
      }
      const raw = readFileSync(rec.values!);
      const ref = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      const [h, w] = rec.shape!;
      if (result.width !== w || result.height !== h || result.values.length !== ref.length) {
        failures.push(`${name}: size ${result.width}x${result.height}, pydicom ${w}x${h}`);
        continue;
      }
      let maxDiff = 0;
      let mismatches = 0;
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < ref.length; i++) {
        const expected = Math.fround(ref[i]);
        const d = Math.abs(result.values[i] - expected);
        if (d > 0) mismatches++;
        if (d > maxDiff) maxDiff = d;
        if (expected < lo) lo = expected;
        if (expected > hi) hi = expected;
      }
      if (LOSSY.has(syntax)) {
        const tolerance = Math.max(1, 0.01 * (hi - lo));
        lossyDiffs.push(`${name}: max |diff| ${maxDiff} (tolerance ${tolerance}), ${mismatches} of ${ref.length} values differ`);
        if (maxDiff > tolerance) failures.push(`${name}: lossy max diff ${maxDiff} > ${tolerance}`);
        else counts.matchedLossy++;
      } else if (mismatches > 0) {
        failures.push(`${name}: ${mismatches} values differ from pydicom (max ${maxDiff})`);
      } else counts.matchedExact++;
    } else if (rec.noHandler) {
      const declared = DECLARED_UNSUPPORTED.get(syntax);
      if (declared !== undefined) {
        if (result instanceof CxrError && result.code === 'E_UNSUPPORTED_SYNTAX') counts.refusedUnsupportedSyntax++;
        else failures.push(`${name}: ${declared} should be refused with E_UNSUPPORTED_SYNTAX`);
      } else if (result instanceof CxrError) {
        failures.push(`${name}: pydicom lacks a decoder for ${syntax}; we fail with ${result.code}: ${result.message}`);
      } else {
        counts.decodedWherePydicomHasNoDecoder++;
      }
    } else {
      // pydicom could not decode it because the data is broken: a typed error is the right answer.
      if (result instanceof CxrError) counts.brokenTypedError++;
      else failures.push(`${name}: pydicom fails with '${rec.error}', but we decoded it`);
    }
  }

  t.diagnostic(`corpus counts: ${JSON.stringify(counts)}`);
  t.diagnostic(`typed errors on the other files: ${JSON.stringify(Object.fromEntries([...otherCodes].sort()))}`);
  for (const line of lossyDiffs) t.diagnostic(`lossy: ${line}`);
  console.log('pydicom corpus:', JSON.stringify(counts), JSON.stringify(Object.fromEntries([...otherCodes].sort())));
  assert.deepEqual(failures, []);
  assert.ok(counts.matchedExact > 0, 'no file was compared exactly');
});
