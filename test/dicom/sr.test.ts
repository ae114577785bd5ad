/**
 * The AI result objects: the SR content tree item by item (exact codes and values), and both
 * objects as files checked by the standard's own validators: dciodvfy (dicom3tools) finds no
 * error, dsrdump (dcmtk) prints the findings, dcmdump reads the picture back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chestDicom } from '../../src/data/simple-chest-dicom.js';
import { derivedUids, encodePart10, NOT_FOR_DIAGNOSTIC_USE, readSourceHeader } from '../../src/dicom/derived.js';
import { secondaryCaptureDataset } from '../../src/dicom/secondary-capture.js';
import { aiResultContent, aiResultSr, type AiResult } from '../../src/dicom/sr.js';
import { newUid } from '../../src/dicom/write.js';
import { renderResultPicture } from '../../src/imaging/secondary-capture.js';
import { grayImage } from '../../src/imaging/types.js';
import { bannerLines } from '../../src/service/results.js';
import { runTool, scratchDir } from '../support/dicom.js';
import { dciodvfy, dsrdump } from '../support/pacs.js';

const source = {
  studyInstanceUid: '1.2.3.4',
  seriesInstanceUid: '1.2.3.4.5',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
  sopInstanceUid: '1.2.3.4.5.6',
};

const result: AiResult = {
  source,
  probability: 0.7312345678,
  threshold: 0.4,
  targetRecall: 0.95,
  decision: 'positive',
  flagged: true,
  flagReasons: ['positive', 'uncertain'],
  qcFlags: ['low_lung_area'],
  classifier: 'densenet121-se@1.2.0',
  segmenter: 'unet@1.0.0',
  predictionId: '42',
};

type Item = Record<string, unknown>;
const code = (seq: unknown) => {
  const c = (seq as Item[])[0];
  return `(${c.CodeValue},${c.CodingSchemeDesignator},"${c.CodeMeaning}")`;
};

/** One line per content item: relationship, value type, concept name and value, indented by depth. */
function flatten(items: Item[], depth = 0): string[] {
  const out: string[] = [];
  for (const i of items) {
    const name = i.ConceptNameCodeSequence ? code(i.ConceptNameCodeSequence) : '-';
    let value = '';
    if (i.ValueType === 'CODE') value = code(i.ConceptCodeSequence);
    if (i.ValueType === 'TEXT') value = `"${i.TextValue}"`;
    if (i.ValueType === 'UIDREF') value = String(i.UID);
    if (i.ValueType === 'NUM') {
      const m = (i.MeasuredValueSequence as Item[])[0];
      value = `${m.NumericValue} ${code(m.MeasurementUnitsCodeSequence)}`;
    }
    if (i.ValueType === 'IMAGE') {
      const r = (i.ReferencedSOPSequence as Item[])[0];
      value = `${r.ReferencedSOPClassUID} ${r.ReferencedSOPInstanceUID}`;
    }
    out.push(`${'  '.repeat(depth)}${i.RelationshipType} ${i.ValueType} ${name}${value ? ` = ${value}` : ''}`);
    if (i.ContentSequence) out.push(...flatten(i.ContentSequence as Item[], depth + 1));
  }
  return out;
}

test('the SR content tree says finding, probability, decision, threshold, recall, models, QC flags and the source film, with DCM/SCT codes', () => {
  const root = aiResultContent(result);
  assert.equal(code(root.ConceptNameCodeSequence), '(126000,DCM,"Imaging Measurement Report")');
  assert.deepEqual(root.ContentTemplateSequence, [{ MappingResource: 'DCMR', TemplateIdentifier: '1500' }]);
  assert.deepEqual(flatten(root.ContentSequence as Item[]), [
    'HAS CONCEPT MOD CODE (121049,DCM,"Language of Content Item and Descendants") = (en-US,RFC5646,"English (United States)")',
    'HAS OBS CONTEXT CODE (121005,DCM,"Observer Type") = (121007,DCM,"Device")',
    `HAS OBS CONTEXT UIDREF (121012,DCM,"Device Observer UID") = ${newUid(['cxr-triage device observer'])}`,
    'HAS OBS CONTEXT TEXT (121013,DCM,"Device Observer Name") = "cxr-triage"',
    'HAS OBS CONTEXT TEXT (121014,DCM,"Device Observer Manufacturer") = "cxr-triage"',
    'HAS CONCEPT MOD CODE (121058,DCM,"Procedure reported") = (399208008,SCT,"Plain chest X-ray")',
    'CONTAINS CONTAINER (111028,DCM,"Image Library")',
    '  CONTAINS CONTAINER (126200,DCM,"Image Library Group")',
    '    CONTAINS IMAGE - = 1.2.840.10008.5.1.4.1.1.1.1 1.2.3.4.5.6',
    'CONTAINS CONTAINER (126010,DCM,"Imaging Measurements")',
    '  CONTAINS CONTAINER (125007,DCM,"Measurement Group")',
    '    HAS OBS CONTEXT TEXT (112039,DCM,"Tracking Identifier") = "pneumonia, prediction 42"',
    `    HAS OBS CONTEXT UIDREF (112040,DCM,"Tracking Unique Identifier") = ${newUid(['cxr-triage tracking', '1.2.3.4.5.6', '42'])}`,
    '    CONTAINS CODE (121071,DCM,"Finding") = (233604007,SCT,"Pneumonia")',
    '    HAS CONCEPT MOD TEXT (111001,DCM,"Algorithm Name") = "densenet121-se"',
    '    HAS CONCEPT MOD TEXT (111003,DCM,"Algorithm Version") = "1.2.0"',
    '    HAS CONCEPT MOD TEXT (111002,DCM,"Algorithm Parameters") = "segmenter unet@1.0.0"',
    '    CONTAINS NUM (CXR001,99CXR,"Probability of pneumonia") = 0.7312345678 (1,UCUM,"no units")',
    '    CONTAINS CODE (CXR002,99CXR,"AI decision") = (10828004,SCT,"Positive")',
    '    CONTAINS NUM (CXR003,99CXR,"Decision threshold") = 0.4 (1,UCUM,"no units")',
    '    CONTAINS NUM (CXR004,99CXR,"Target recall") = 0.95 (1,UCUM,"no units")',
    '    CONTAINS CODE (CXR005,99CXR,"Flagged for review") = (373066001,SCT,"Yes")',
    '    CONTAINS TEXT (CXR006,99CXR,"Flag reason") = "positive"',
    '    CONTAINS TEXT (CXR006,99CXR,"Flag reason") = "uncertain"',
    '    CONTAINS TEXT (CXR007,99CXR,"Quality control flag") = "low_lung_area"',
    '    CONTAINS IMAGE (121112,DCM,"Source of Measurement") = 1.2.840.10008.5.1.4.1.1.1.1 1.2.3.4.5.6',
    'CONTAINS TEXT (121106,DCM,"Comment") = "AI RESULT - NOT FOR DIAGNOSTIC USE"',
  ]);
});

test('a negative, unflagged result without QC flags says so, and long probabilities fit a DS (16 characters)', () => {
  const lines = flatten(
    aiResultContent({ ...result, probability: 0.012345678901234567, decision: 'negative', flagged: false, flagReasons: [], qcFlags: [] })
      .ContentSequence as Item[],
  );
  assert.ok(lines.includes('    CONTAINS NUM (CXR001,99CXR,"Probability of pneumonia") = 0.01234567890123 (1,UCUM,"no units")'), lines.join('\n'));
  assert.ok(lines.includes('    CONTAINS CODE (CXR002,99CXR,"AI decision") = (260385009,SCT,"Negative")'));
  assert.ok(lines.includes('    CONTAINS CODE (CXR005,99CXR,"Flagged for review") = (373067005,SCT,"No")'));
  assert.ok(lines.includes('    CONTAINS TEXT (CXR007,99CXR,"Quality control flag") = "none"'));
  assert.equal(lines.filter((l) => l.includes('Flag reason')).length, 0);
});

/** A real chest film header as the source (patient and study copied from it). */
function realSource() {
  const bytes = chestDicom({ size: 128, seed: 5, accessionNumber: 'ACC-SR-1', studyDate: '20261130' });
  return readSourceHeader(bytes);
}

test('the SR file: dciodvfy finds no error, dsrdump prints the findings, the evidence names the source film, same study', () => {
  const src = realSource();
  const ids = derivedUids('sr', src.sopInstanceUid, '42');
  assert.deepEqual(derivedUids('sr', src.sopInstanceUid, '42'), ids, 'the same prediction gives the same UIDs');
  assert.notEqual(derivedUids('sc', src.sopInstanceUid, '42').sopInstanceUid, ids.sopInstanceUid);
  const ds = aiResultSr(src, { ...ids, seriesNumber: 9901, at: new Date('2026-12-01T10:11:12Z') }, { ...result, source: src });
  assert.equal(ds.StudyInstanceUID, src.studyInstanceUid);
  assert.equal(ds.AccessionNumber, 'ACC-SR-1');
  assert.equal(ds.PatientID, src.patientId);
  assert.equal(ds.SeriesDescription, NOT_FOR_DIAGNOSTIC_USE);
  const dir = scratchDir('sr');
  const path = join(dir, 'sr.dcm');
  writeFileSync(path, encodePart10(ds));
  const v = dciodvfy(path);
  assert.equal(v.iod, 'ComprehensiveSR');
  assert.deepEqual(v.errors, []);
  const dump = dsrdump(path);
  assert.match(dump, /Comprehensive SR Document/);
  assert.match(dump, /CODE:\(,,"Finding"\)=\(233604007,SCT,"Pneumonia"\)/);
  assert.match(dump, /NUM:\(,,"Probability of pneumonia"\)="0\.7312345678" \(1,UCUM,"no units"\)/);
  assert.match(dump, /CODE:\(,,"AI decision"\)=\(10828004,SCT,"Positive"\)/);
  assert.match(dump, /NUM:\(,,"Decision threshold"\)="0\.4"/);
  assert.match(dump, /NUM:\(,,"Target recall"\)="0\.95"/);
  assert.match(dump, /TEXT:\(,,"Algorithm Version"\)="1\.2\.0"/);
  assert.match(dump, /TEXT:\(,,"Quality control flag"\)="low_lung_area"/);
  assert.match(dump, /Content Date\/Time\s*: 2026-12-01 10:11:12/);
  const meta = runTool('dcmdump', ['+P', '0040,a375', '+P', '0008,1155', path], 'dcmdump');
  assert.ok(meta.includes(src.sopInstanceUid), 'the evidence sequence names the source instance');
});

test('the Secondary Capture file: RGB picture with a banner, marked burned-in and not for diagnostic use; dciodvfy finds no error', async () => {
  const src = realSource();
  const w = 200;
  const h = 240;
  const film = grayImage(w, h);
  for (let i = 0; i < film.data.length; i++) film.data[i] = (i % w) / w;
  const mask = grayImage(w, h);
  for (let y = 50; y < 200; y++) for (let x = 30; x < 90; x++) mask.data[y * w + x] = 1;
  const heat = grayImage(w, h);
  for (let y = 80; y < 150; y++) for (let x = 40; x < 80; x++) heat.data[y * w + x] = 0.9;
  const picture = await renderResultPicture({ windowed: film, mask, heatmap: heat, lines: bannerLines(result) });
  // the film is scaled to a long side of 512; the banner sits above it, in the film's width
  assert.equal(picture.width, Math.round((w * 512) / h));
  assert.ok(picture.height > 512);
  const bannerRows = picture.height - 512;
  let lit = 0;
  for (let i = 0; i < picture.width * bannerRows; i++) if (picture.data[i * 3] > 128) lit++;
  assert.ok(lit > 500, `the banner has text (${lit} light pixels)`);
  // lung outline (green) and heatmap (red-dominant at heat 0.9) are drawn on the film
  let green = 0;
  let red = 0;
  for (let i = picture.width * bannerRows; i < picture.width * picture.height; i++) {
    const [r, g, b] = [picture.data[i * 3], picture.data[i * 3 + 1], picture.data[i * 3 + 2]];
    if (r === 0 && g === 230 && b === 64) green++;
    if (r > g + 60 && r > b + 60) red++;
  }
  assert.ok(green > 100, `outline pixels: ${green}`);
  assert.ok(red > 1000, `heatmap pixels: ${red}`);
  const ids = derivedUids('sc', src.sopInstanceUid, '42');
  const ds = secondaryCaptureDataset(src, { ...ids, seriesNumber: 9902, at: new Date('2026-12-01T10:11:12Z') }, picture, result.classifier);
  const path = join(scratchDir('sc'), 'sc.dcm');
  writeFileSync(path, encodePart10(ds));
  const v = dciodvfy(path);
  assert.equal(v.iod, 'SCImage');
  assert.deepEqual(v.errors, []);
  const dump = runTool('dcmdump', [path], 'dcmdump');
  assert.match(dump, /\(0028,0004\) CS \[RGB\]/);
  assert.match(dump, new RegExp(`\\(0028,0010\\) US ${picture.height}\\b`));
  assert.match(dump, /\(0028,0301\) CS \[YES\]/);
  assert.match(dump, /\(0020,4000\) LT \[AI RESULT - NOT FOR DIAGNOSTIC USE\]/);
  assert.match(dump, /\(0008,103e\) LO \[AI RESULT - NOT FOR DIAGNOSTIC USE\]/);
});

test('banner lines carry probability, decision and model', () => {
  assert.deepEqual(bannerLines(result), [
    'AI RESULT - NOT FOR DIAGNOSTIC USE',
    'Pneumonia probability 0.731 (threshold 0.400, target recall 0.950): POSITIVE - FLAGGED FOR REVIEW',
    'Model densenet121-se@1.2.0; lung segmenter unet@1.0.0; QC: low_lung_area',
  ]);
});
