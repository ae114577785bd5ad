/**
 * Renders agree with DCMTK's dcm2pnm within one grey level on every pixel: the lung window
 * against `+Ww -600 1500`, files with their own window against `+Wi 1`, files without one
 * against `+Wm`. Inputs are generated uncompressed files covering the pixel-format corners.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeDicom, newUid, readWindowed, type ImageToWrite, type WindowPolicy, type WriteSyntax } from '../../src/dicom/index.js';
import { encodeGray8Png } from '../../src/cli/commands/render.js';
import { readPgm, runTool, scratchDir } from '../support/dicom.js';

const W = 48;
const H = 40;

/** A smooth ramp with a disc and a few hard edges, spanning [lo, hi] (inclusive) in stored units. */
function ramp(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const t = (x + y * W) / (W * H - 1);
      const inDisc = (x - 30) ** 2 + (y - 18) ** 2 < 81;
      const v = inDisc ? lo + (hi - lo) * 0.15 : lo + (hi - lo) * t;
      out.push(Math.round(v));
    }
  out[0] = lo;
  out[out.length - 1] = hi;
  return out;
}

function base(id: string): Pick<ImageToWrite, 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid' | 'patientId' | 'rows' | 'columns'> {
  return {
    rows: H,
    columns: W,
    studyInstanceUid: newUid(['dcmtk-render', id, 'study']),
    seriesInstanceUid: newUid(['dcmtk-render', id, 'series']),
    sopInstanceUid: newUid(['dcmtk-render', id, 'instance']),
    patientId: `DCMTK-${id}`,
  };
}

interface Case {
  id: string;
  image: ImageToWrite;
  syntax: WriteSyntax;
  /** our policy and the dcm2pnm options that mean the same */
  renders: { policy: WindowPolicy; dcmtk: string[]; expectSource: string; allWhite?: boolean }[];
}

const LUNG = { policy: { kind: 'lung' } as WindowPolicy, dcmtk: ['+Ww', '-600', '1500'], expectSource: 'lung' };
const AUTO_HU = { policy: { kind: 'auto' } as WindowPolicy, dcmtk: ['+Ww', '-600', '1500'], expectSource: 'lung' };

const cases: Case[] = [
  {
    id: 'ct-signed16-hu-explicit-le',
    syntax: 'explicit-le',
    image: {
      ...base('ct-signed16'),
      modality: 'CT',
      bitsAllocated: 16,
      bitsStored: 16,
      pixelRepresentation: 1,
      photometric: 'MONOCHROME2',
      pixels: Int16Array.from(ramp(-1024, 1400)),
      rescaleType: 'HU',
    },
    renders: [LUNG, AUTO_HU],
  },
  {
    id: 'mono1-12in16-implicit',
    syntax: 'implicit-le',
    image: {
      ...base('mono1-12in16'),
      modality: 'CR',
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME1',
      pixels: Uint16Array.from(ramp(0, 4095)),
      rescaleIntercept: -1024,
      unusedBits: 'ones', // leftovers above BitsStored must be masked away by both readers
    },
    renders: [LUNG, AUTO_HU],
  },
  {
    id: '8bit-big-endian',
    syntax: 'explicit-be',
    image: {
      ...base('8bit-be'),
      modality: 'OT',
      bitsAllocated: 8,
      bitsStored: 8,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels: Uint8Array.from(ramp(0, 255)),
      rescaleSlope: 8,
      rescaleIntercept: -1100,
    },
    renders: [LUNG, AUTO_HU],
  },
  {
    id: 'signed12-highbit15-deflated',
    syntax: 'deflated-explicit-le',
    image: {
      ...base('signed12-hb15'),
      modality: 'CT',
      bitsAllocated: 16,
      bitsStored: 12,
      highBit: 15,
      pixelRepresentation: 1,
      photometric: 'MONOCHROME2',
      pixels: Int16Array.from(ramp(-2048, 2047)),
      rescaleSlope: 0.75,
      rescaleIntercept: -200,
      rescaleType: 'HU',
    },
    renders: [LUNG, AUTO_HU],
  },
  {
    id: 'signed16-mono1-big-endian',
    syntax: 'explicit-be',
    image: {
      ...base('signed16-mono1-be'),
      modality: 'CT',
      bitsAllocated: 16,
      bitsStored: 16,
      pixelRepresentation: 1,
      photometric: 'MONOCHROME1',
      pixels: Int16Array.from(ramp(-1500, 900)),
      rescaleType: 'HU',
    },
    renders: [LUNG, AUTO_HU],
  },
  {
    // The real-world CR case of DESIGN: detector units 803..26512 with the file's own 15000/30000.
    id: 'cr-own-window',
    syntax: 'explicit-le',
    image: {
      ...base('cr-own-window'),
      modality: 'CR',
      bitsAllocated: 16,
      bitsStored: 15,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels: Uint16Array.from(ramp(803, 26512)),
      windowCenter: 15000,
      windowWidth: 30000,
    },
    renders: [
      { policy: { kind: 'auto' }, dcmtk: ['+Wi', '1'], expectSource: 'header' },
      { policy: { kind: 'header' }, dcmtk: ['+Wi', '1'], expectSource: 'header' },
      { policy: { kind: 'minmax' }, dcmtk: ['+Wm'], expectSource: 'minmax' },
      // Why `auto` exists: W1500/L-600 on detector units is a white rectangle, in DCMTK too.
      { ...LUNG, allWhite: true },
    ],
  },
  {
    id: 'dx-mono1-own-window-implicit',
    syntax: 'implicit-le',
    image: {
      ...base('dx-mono1'),
      modality: 'DX',
      bitsAllocated: 16,
      bitsStored: 14,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME1',
      pixels: Uint16Array.from(ramp(120, 16000)),
      windowCenter: 7000,
      windowWidth: 9001,
    },
    renders: [{ policy: { kind: 'auto' }, dcmtk: ['+Wi', '1'], expectSource: 'header' }],
  },
  {
    id: 'cr-no-window-8bit',
    syntax: 'explicit-le',
    image: {
      ...base('cr-no-window-8bit'),
      modality: 'CR',
      bitsAllocated: 8,
      bitsStored: 8,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels: Uint8Array.from(ramp(17, 230)),
    },
    renders: [
      { policy: { kind: 'auto' }, dcmtk: ['+Wm'], expectSource: 'minmax' },
      { policy: { kind: 'header' }, dcmtk: ['+Wm'], expectSource: 'minmax' },
    ],
  },
  {
    id: 'cr-no-window-mono1-12in16-big-endian',
    syntax: 'explicit-be',
    image: {
      ...base('cr-no-window-mono1'),
      modality: 'CR',
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME1',
      pixels: Uint16Array.from(ramp(300, 3900)),
    },
    renders: [{ policy: { kind: 'auto' }, dcmtk: ['+Wm'], expectSource: 'minmax' }],
  },
  {
    id: 'explicit-window-signed',
    syntax: 'explicit-le',
    image: {
      ...base('explicit-window'),
      modality: 'CR',
      bitsAllocated: 16,
      bitsStored: 16,
      pixelRepresentation: 1,
      photometric: 'MONOCHROME2',
      pixels: Int16Array.from(ramp(-300, 5000)),
    },
    renders: [{ policy: { kind: 'explicit', center: 1234.5, width: 2001 }, dcmtk: ['+Ww', '1234.5', '2001'], expectSource: 'explicit' }],
  },
  {
    // A VOI LUT instead of a window: a gamma-like curve over part of the stored range.
    id: 'cr-voi-lut',
    syntax: 'explicit-le',
    image: {
      ...base('cr-voi-lut'),
      modality: 'CR',
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels: Uint16Array.from(ramp(0, 4095)),
      voiLut: { firstMapped: 500, bits: 12, data: Array.from({ length: 3000 }, (_, i) => Math.round(4095 * (i / 2999) ** 0.6)) },
    },
    renders: [
      { policy: { kind: 'auto' }, dcmtk: ['+Wl', '1'], expectSource: 'voi-lut' },
      { policy: { kind: 'header' }, dcmtk: ['+Wl', '1'], expectSource: 'voi-lut' },
    ],
  },
  {
    // A Modality LUT Sequence: min-max runs over the LUT's output, not the stored values.
    id: 'cr-modality-lut-mono1',
    syntax: 'implicit-le',
    image: {
      ...base('cr-modality-lut'),
      modality: 'CR',
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME1',
      pixels: Uint16Array.from(ramp(0, 4095)),
      modalityLut: { firstMapped: 0, bits: 16, data: Array.from({ length: 4096 }, (_, i) => Math.round(100 + 60000 * Math.sqrt(i / 4095))) },
    },
    renders: [{ policy: { kind: 'auto' }, dcmtk: ['+Wm'], expectSource: 'minmax' }],
  },
];

async function pngGray(png: Buffer): Promise<Uint8Array> {
  // IHDR: bit depth 8, colour type 0 (grayscale).
  assert.deepEqual([png[24], png[25]], [8, 0], 'the render is an 8-bit grayscale PNG');
  const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

const dir = scratchDir('dcmtk');

for (const c of cases) {
  for (const r of c.renders) {
    test(`${c.id}: render --window ${r.policy.kind} matches dcm2pnm ${r.dcmtk.join(' ')} within one grey level`, async () => {
      const bytes = encodeDicom(c.image, { transferSyntax: c.syntax });
      const dcm = join(dir, `${c.id}.dcm`);
      writeFileSync(dcm, bytes);
      const pgm = join(dir, `${c.id}-${r.dcmtk.join('_')}.pgm`);
      runTool('dcm2pnm', ['--write-raw-pnm', ...r.dcmtk, dcm, pgm], 'DCMTK reference render');
      const ref = readPgm(pgm);
      assert.equal(ref.maxval, 255);

      const img = await readWindowed(bytes, { window: r.policy });
      assert.equal(img.window.source, r.expectSource, img.window.reason);
      const ours = await pngGray(await encodeGray8Png(img));
      assert.equal(ours.length, ref.width * ref.height);
      let worst = 0;
      const distinct = new Set<number>();
      for (let i = 0; i < ours.length; i++) {
        worst = Math.max(worst, Math.abs(ours[i] - ref.data[i]));
        distinct.add(ours[i]);
      }
      assert.ok(worst <= 1, `max grey-level difference ${worst} at window ${JSON.stringify(img.window)}`);
      if (r.allWhite) assert.deepEqual([...distinct], [255]);
      // A comparison on a flat image would prove nothing: the ramp must show through the window.
      else assert.ok(distinct.size > 20, `only ${distinct.size} grey levels in the render`);
    });
  }
}
