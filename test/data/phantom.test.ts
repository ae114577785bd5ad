import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWindowed, readMetadata } from '../../src/dicom/index.js';
import { generateStudy, planStudy } from '../../src/data/phantom/study.js';
import { Canvas } from '../../src/data/phantom/canvas.js';
import { lungFields } from '../../src/data/phantom/render.js';
import { renderOpacity, samplePneumonia } from '../../src/data/phantom/pathology.js';
import { PatientMap } from '../../src/data/phantom/patients.js';
import { rngFor } from '../../src/data/rng.js';

const small = { sizeMin: 128, sizeMax: 160, workSize: 128 };

test('the same seed and index give byte-identical DICOM files and masks', () => {
  const a = generateStudy(11, 3, small);
  const b = generateStudy(11, 3, small);
  assert.ok(Buffer.from(a.dicom).equals(Buffer.from(b.dicom)));
  assert.ok(Buffer.from(a.mask).equals(Buffer.from(b.mask)));
  assert.deepEqual(a.row, b.row);
});

test('a different seed or index gives a different study', () => {
  const a = generateStudy(11, 3, small);
  assert.ok(!Buffer.from(a.dicom).equals(Buffer.from(generateStudy(12, 3, small).dicom)));
  assert.ok(!Buffer.from(a.dicom).equals(Buffer.from(generateStudy(11, 4, small).dicom)));
});

test('studies render the lung fields darker than the body around them under the lung window', async () => {
  for (let i = 0; i < 4; i++) {
    const st = generateStudy(5, i, { sizeMin: 192, sizeMax: 192, workSize: 192, pneumoniaRate: 0 });
    const w = await readWindowed(st.dicom);
    assert.equal(w.width, st.width);
    assert.equal(w.height, st.height);
    let inSum = 0;
    let inN = 0;
    let outSum = 0;
    let outN = 0;
    for (let k = 0; k < st.mask.length; k++) {
      if (st.mask[k] === 255) {
        inSum += w.data[k];
        inN++;
      } else if (w.data[k] > 0.3) {
        // body, not the air around it
        outSum += w.data[k];
        outN++;
      }
    }
    const area = inN / st.mask.length;
    assert.ok(area > 0.12 && area < 0.5, `lung area fraction ${area}`);
    assert.ok(inSum / inN + 0.1 < outSum / outN, `lungs ${inSum / inN} vs body ${outSum / outN}`);
    assert.ok(inSum / inN > 0.2 && inSum / inN < 0.65, `lung mean ${inSum / inN}`);
  }
});

test('CR files carry HU-like values and DX files identity rescale with an equivalent header window', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 24 && seen.size < 2; i++) {
    const st = generateStudy(3, i, small);
    const m = readMetadata(st.dicom);
    assert.equal(m.rows, st.height);
    assert.equal(m.columns, st.width);
    assert.ok(m.modality === 'CR' || m.modality === 'DX');
    seen.add(m.modality!);
    if (m.modality === 'DX') {
      assert.equal(m.rescaleSlope, 1);
      assert.equal(m.rescaleIntercept, 0);
      assert.equal(m.pixelRepresentation, 0);
    } else {
      assert.deepEqual(m.windowCenter, [-600]);
      assert.deepEqual(m.windowWidth, [1500]);
    }
    assert.ok([12, 14, 16].includes(m.bitsStored));
    assert.ok(['MONOCHROME1', 'MONOCHROME2'].includes(m.photometricInterpretation));
  }
  assert.equal(seen.size, 2, 'both CR and DX appear');
});

test('MONOCHROME1 and MONOCHROME2 files of the same anatomy display alike', async () => {
  // Find one of each photometric interpretation and compare their lung/body contrast direction.
  const found: Record<string, number> = {};
  for (let i = 0; i < 40 && Object.keys(found).length < 2; i++) {
    const st = generateStudy(21, i, { ...small, pneumoniaRate: 0 });
    const w = await readWindowed(st.dicom);
    let lung = 0;
    let n = 0;
    for (let k = 0; k < st.mask.length; k++) if (st.mask[k]) (lung += w.data[k]), n++;
    // the image corners are air outside the patient: dark on both
    const corner = w.data[0];
    found[w.meta.photometricInterpretation] ??= lung / n - corner;
  }
  assert.ok(found.MONOCHROME1 > 0.1 && found.MONOCHROME2 > 0.1, JSON.stringify(found));
});

test('dcmdump reads generated files without errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cxr-synth-dump-'));
  try {
    for (let i = 0; i < 3; i++) {
      const f = join(dir, `${i}.dcm`);
      writeFileSync(f, generateStudy(8, i, small).dicom);
      let out: string;
      try {
        out = execFileSync('dcmdump', ['-q', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        if (err.code === 'ENOENT') throw new Error('dcmdump (DCMTK) is not installed; .ci/run installs it');
        throw new Error(`dcmdump failed on a generated file: ${err.stderr ?? err.message}`);
      }
      assert.match(out, /PixelData/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pneumonia opacity stays inside the lung fields', () => {
  for (let i = 0; i < 6; i++) {
    const plan = planStudy(9, i, { ...small, pneumoniaRate: 1 });
    const c = new Canvas(160, 160, 128, -0.08, -0.08);
    const { sharp } = lungFields(plan.anatomy, c);
    const spec = samplePneumonia(rngFor([9, 'spec', i]));
    const C = renderOpacity(spec, plan.anatomy, c, rngFor([9, 'op', i]), sharp);
    let inside = 0;
    for (let k = 0; k < C.length; k++) {
      if (sharp[k] === 0) assert.equal(C[k], 0);
      else inside += C[k];
    }
    assert.ok(inside > 0, `${spec.pattern} leaves some opacity in the lungs`);
  }
});

test('patients hold one to four studies and indices map to them without gaps', () => {
  const map = new PatientMap(4);
  let last = { patient: 0, visit: -1 };
  for (let i = 0; i < 200; i++) {
    const s = map.slot(i);
    assert.ok(s.visits >= 1 && s.visits <= 4);
    if (s.patient === last.patient) assert.equal(s.visit, last.visit + 1);
    else assert.deepEqual([s.patient, s.visit], [last.patient + 1, 0]);
    last = s;
  }
  // Random access agrees with a sequential walk.
  assert.deepEqual(new PatientMap(4).slot(150), map.slot(150));
});

test('generated labels mix views, sexes and both classes at the requested rate', () => {
  let pneumonia = 0;
  const views = new Set<string>();
  const n = 200;
  for (let i = 0; i < n; i++) {
    const p = planStudy(2, i, { pneumoniaRate: 0.3 });
    if (p.label === 'pneumonia') pneumonia++;
    views.add(p.view);
    assert.ok(p.width >= 512 && p.width <= 3000 && p.height >= 512 && p.height <= 3000);
  }
  assert.ok(Math.abs(pneumonia / n - 0.3) < 0.1, `pneumonia share ${pneumonia / n}`);
  assert.deepEqual([...views].sort(), ['AP', 'PA']);
});
