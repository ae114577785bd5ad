import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { crc32c, EventFileWriter, maskedCrc32c, readScalars } from '../../src/ml/train/tfevents.js';

const tmp = mkdtempSync(join(tmpdir(), 'cxr-tfevents-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('CRC-32C matches the Castagnoli check value and TFRecord masks it', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  const c = 0xe3069283;
  assert.equal(maskedCrc32c(new TextEncoder().encode('123456789')), (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0);
});

test('an event file starts with brain.Event:2 and holds the scalars written, with CRCs that check', () => {
  const w = new EventFileWriter(tmp, 1_700_000_000_000);
  assert.match(basename(w.path), /^events\.out\.tfevents\.1700000000\./);
  w.scalars({ 'train/loss': 0.5, 'train/lr': 1e-3, skipped: null }, 1, 1_700_000_001);
  w.scalars({ 'train/loss': 0.25 }, 2, 1_700_000_002);
  const r = readScalars(new Uint8Array(readFileSync(w.path)));
  assert.equal(r.fileVersion, 'brain.Event:2');
  assert.deepEqual(r.scalars, [
    { tag: 'train/loss', value: 0.5, step: 1, wallTime: 1_700_000_001 },
    { tag: 'train/lr', value: Math.fround(1e-3), step: 1, wallTime: 1_700_000_001 },
    { tag: 'train/loss', value: 0.25, step: 2, wallTime: 1_700_000_002 },
  ]);
  const bytes = new Uint8Array(readFileSync(w.path));
  bytes[bytes.length - 6] ^= 1;
  assert.throws(() => readScalars(bytes), /bad data CRC/);
});
