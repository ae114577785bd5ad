/**
 * DICOMweb WADO-RS over what the service holds, over HTTP against a real service and
 * PostgreSQL: study/series/instance retrieve (multipart parsed here, an instance checked with
 * dcmdump), metadata as DICOM JSON (VRs, PN objects, BulkDataURI followed), frames, rendered
 * JPEG/PNG (decoded with sharp), and Accept negotiation (406 E_NOT_ACCEPTABLE).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { encodeDicom, readMetadata } from '../../src/dicom/index.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';

let h: Harness;
let clin: string;
const STUDY = '2.25.6611000000000000000000000000000001';
const pa = study(801, { studyInstanceUid: STUDY, accessionNumber: 'ACC-W1', studyDate: '20261120', viewPosition: 'PA' });
// a second series of the study: Implicit VR (VRs come from the dictionary), with a patient name
const px = new Uint16Array(64 * 48).map((_, i) => (i * 37) % 4096);
const named = Buffer.from(
  encodeDicom(
    {
      rows: 48,
      columns: 64,
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 0,
      photometric: 'MONOCHROME2',
      pixels: px,
      modality: 'DX',
      studyInstanceUid: STUDY,
      seriesInstanceUid: `${STUDY}.2`,
      sopInstanceUid: `${STUDY}.2.1`,
      patientId: 'PW-1',
      patientName: 'Doe^Jane',
      accessionNumber: 'ACC-W1',
      studyDate: '20261120',
      viewPosition: 'PA',
      windowCenter: 2048,
      windowWidth: 4096,
    },
    { transferSyntax: 'implicit-le' },
  ),
);
const paMeta = readMetadata(pa);
const PA_SOP = String(paMeta.sopInstanceUid);

before(async () => {
  h = await startHarness();
  clin = `Bearer ${h.token('clinician')}`;
  const ws = `Bearer ${h.token('workstation', 'ws-wado')}`;
  for (const body of [pa, named]) {
    const res = await h.http.post('/v1/studies').set('Authorization', ws).set('Content-Type', 'application/dicom').send(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitScored(h, res.body.id);
  }
  // both films are frontal: each gets its AI result SR and Secondary Capture, instances of the study once made
  for (;;) {
    const rows: { sha256: string }[] = await h.db.ds.query(`SELECT sha256 FROM derived_objects WHERE sha256 IS NOT NULL ORDER BY id`);
    if (rows.length === 4) {
      resultShas = rows.map((r) => r.sha256);
      break;
    }
    await new Promise((done) => setTimeout(done, 50));
  }
});
let resultShas: string[] = [];
after(async () => {
  await h?.close();
});

interface Got {
  status: number;
  type: string;
  body: Buffer;
}
async function get(path: string, accept?: string, auth = clin): Promise<Got> {
  const req = h.http.get(path).set('Authorization', auth);
  if (accept !== undefined) req.set('Accept', accept);
  const res = await req.buffer(true).parse((r, cb) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => cb(null, Buffer.concat(chunks)));
  });
  return { status: res.status, type: String(res.headers['content-type'] ?? ''), body: res.body as Buffer };
}
const jsonOf = (g: Got) => JSON.parse(g.body.toString('utf8'));

/** multipart/related parsed here, independently of the service's own STOW parser. */
function parts(g: Got): { headers: Record<string, string>; body: Buffer }[] {
  assert.match(g.type, /^multipart\/related/);
  const boundary = /boundary="?([^";]+)"?/.exec(g.type)?.[1];
  assert.ok(boundary, g.type);
  const out: { headers: Record<string, string>; body: Buffer }[] = [];
  const delim = Buffer.from(`--${boundary}`);
  let at = g.body.indexOf(delim);
  for (;;) {
    const next = at + delim.length;
    if (g.body.subarray(next, next + 2).toString() === '--') break;
    const headEnd = g.body.indexOf('\r\n\r\n', next);
    const headers: Record<string, string> = {};
    for (const line of g.body
      .subarray(next + 2, headEnd)
      .toString()
      .split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const end = g.body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd);
    const body = g.body.subarray(headEnd + 4, end);
    if (headers['content-length']) assert.equal(body.length, Number(headers['content-length']));
    out.push({ headers, body });
    at = end + 2;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const v = (item: Record<string, { Value?: unknown[] }>, tag: string) => item[tag]?.Value?.[0];

test('WADO-RS retrieves a study, a series and an instance as multipart/related application/dicom, byte for byte; dcmdump reads the instance', async () => {
  const all = parts(await get(`/dicomweb/studies/${STUDY}`));
  assert.deepEqual(all.map((p) => sha(p.body)).sort(), [sha(pa), sha(named), ...resultShas].sort());
  for (const p of all) assert.match(p.headers['content-type'], /^application\/dicom/);
  assert.ok(all.some((p) => p.headers['content-location']?.endsWith(`/instances/${paMeta.sopInstanceUid}`)));

  const series = parts(await get(`/dicomweb/studies/${STUDY}/series/${STUDY}.2`, 'multipart/related; type="application/dicom"; transfer-syntax=*'));
  assert.equal(series.length, 1);
  assert.equal(sha(series[0].body), sha(named));

  const one = parts(
    await get(`/dicomweb/studies/${STUDY}/series/${paMeta.seriesInstanceUid}/instances/${paMeta.sopInstanceUid}`, 'multipart/related; type=application/dicom'),
  );
  assert.equal(one.length, 1);
  const file = join(h.root, 'retrieved.dcm');
  await writeFile(file, one[0].body);
  const dump = spawnSync('dcmdump', ['+P', '0008,0018', '+P', '0020,000d', file], { encoding: 'utf8' });
  assert.equal(dump.status, 0, `dcmdump (dcmtk) must be installed and read the file: ${dump.error ?? dump.stderr}`);
  assert.match(dump.stdout, new RegExp(`\\[${PA_SOP.replace(/\./g, '\\.')}\\]`));
  assert.match(dump.stdout, new RegExp(`\\[${STUDY.replace(/\./g, '\\.')}\\]`));

  const notMine = await get(`/dicomweb/studies/${STUDY}`, undefined, `Bearer ${h.token('workstation', 'ws-other')}`);
  assert.equal(notMine.status, 404);
  assert.equal((await get(`/dicomweb/studies/${STUDY}`, undefined, `Bearer ${h.token('workstation', 'ws-wado')}`)).status, 200);
  assert.equal((await get('/dicomweb/studies/1.2.3.4.5')).status, 404);

  const rows: { n: number }[] = await h.db.ds.query(
    `SELECT count(*)::int AS n FROM audit_log WHERE action = 'study.retrieve' AND actor = 'clinician-1' AND detail->>'what' = 'instance' AND outcome = 'ok'`,
  );
  assert.equal(rows[0].n, 8, 'one audit row per instance retrieved (2 films + 4 result objects, + 1 + 1)');
});

test('WADO-RS metadata is DICOM JSON with VRs, PersonName objects and the pixel data by BulkDataURI, which returns the frame', async () => {
  const study = await get(`/dicomweb/studies/${STUDY}/metadata`);
  assert.equal(study.status, 200);
  assert.match(study.type, /^application\/dicom\+json/);
  const items = jsonOf(study) as Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>[];
  // two films, and an SR and a Secondary Capture for each
  assert.equal(items.length, 6);
  const dx = items.find((i) => v(i, '00080018') === `${STUDY}.2.1`)!;
  assert.deepEqual(dx['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] });
  assert.deepEqual(dx['0020000D'], { vr: 'UI', Value: [STUDY] });
  assert.deepEqual(dx['00280010'], { vr: 'US', Value: [48] });
  assert.deepEqual(dx['00281050'], { vr: 'DS', Value: [2048] });
  assert.deepEqual(dx['00080050'], { vr: 'SH', Value: ['ACC-W1'] });
  assert.equal(dx['7FE00010'].vr, 'OW');
  assert.equal(dx['7FE00010'].Value, undefined);
  assert.equal(dx['7FE00010'].InlineBinary, undefined);
  for (const [tag, el] of Object.entries(dx)) {
    assert.match(tag, /^[0-9A-F]{8}$/);
    assert.match(el.vr, /^[A-Z]{2}$/);
    if (el.Value) assert.ok(el.Value.length > 0, `${tag}: an empty value has no Value`);
  }
  const bulk = new URL(String(dx['7FE00010'].BulkDataURI));
  assert.equal(bulk.pathname, `/dicomweb/studies/${STUDY}/series/${STUDY}.2/instances/${STUDY}.2.1/frames/1`);
  const frame = parts(await get(bulk.pathname));
  assert.equal(frame.length, 1);
  assert.match(frame[0].headers['content-type'], /^application\/octet-stream/);
  const ds = dicomParser.parseDicom(new Uint8Array(named));
  const el = ds.elements.x7fe00010;
  assert.deepEqual(frame[0].body, Buffer.from(named.subarray(el.dataOffset, el.dataOffset + el.length)));
  assert.equal(frame[0].body.length, 64 * 48 * 2);
  // a frame named again is sent once: a long list of 1s must not multiply the film in memory
  const repeated = parts(await get(`${bulk.pathname},${Array(2000).fill('1').join(',')}`));
  assert.equal(repeated.length, 1);
  assert.deepEqual(repeated[0].body, frame[0].body);

  const series = jsonOf(await get(`/dicomweb/studies/${STUDY}/series/${paMeta.seriesInstanceUid}/metadata`, 'application/json'));
  assert.equal(series.length, 1);
  assert.equal(v(series[0], '00080018'), paMeta.sopInstanceUid);
  const inst = jsonOf(await get(`/dicomweb/studies/${STUDY}/series/${paMeta.seriesInstanceUid}/instances/${paMeta.sopInstanceUid}/metadata`));
  assert.equal(inst.length, 1);
  assert.deepEqual(inst[0]['00185101'], { vr: 'CS', Value: ['PA'] });
  assert.deepEqual(inst[0]['00100010'], { vr: 'PN' }, 'an empty name has no Value');
});

test('WADO-RS rendered: JPEG by default, PNG by Accept, the file window unless window= is given; study level is multipart', async () => {
  const base = `/dicomweb/studies/${STUDY}/series/${STUDY}.2/instances/${STUDY}.2.1/rendered`;
  const jpeg = await get(base);
  assert.equal(jpeg.status, 200);
  assert.equal(jpeg.type, 'image/jpeg');
  const jm = await sharp(jpeg.body).metadata();
  assert.deepEqual([jm.format, jm.width, jm.height], ['jpeg', 64, 48]);

  const raw = async (g: Got) => (await sharp(g.body).greyscale().raw().toBuffer({ resolveWithObject: true })).data;
  const png = await get(base, 'image/png');
  assert.equal(png.type, 'image/png');
  // the file's window is C2048/W4096: the same as asking for it, different from a narrow one
  const asked = await get(`${base}?window=2048,4096,linear`, 'image/png');
  assert.deepEqual(await raw(png), await raw(asked));
  const narrow = await raw(await get(`${base}?window=100,50`, 'image/png'));
  assert.notDeepEqual(await raw(png), narrow);
  // pixel i is (i*37) mod 4096: linear over the full range, so a pixel's grey follows its value
  const full = await raw(png);
  const i = 100;
  assert.ok(Math.abs(full[i] - Math.round((255 * ((i * 37) % 4096)) / 4095)) <= 1, `pixel ${i}: ${full[i]}`);
  const sig = await raw(await get(`${base}?window=2048,4096,sigmoid`, 'image/png'));
  assert.notDeepEqual(sig, full);
  assert.equal((await get(`${base}?window=1,0`)).status, 400);
  assert.equal((await get(`${base}?window=2048,4096,cubic`)).status, 400);

  const studyRendered = parts(await get(`/dicomweb/studies/${STUDY}/rendered`));
  // the two films and their two result pictures; the SRs have no pixels
  assert.equal(studyRendered.length, 4);
  for (const p of studyRendered) {
    assert.equal(p.headers['content-type'], 'image/jpeg');
    assert.equal((await sharp(p.body).metadata()).format, 'jpeg');
  }
  const seriesPng = parts(await get(`/dicomweb/studies/${STUDY}/series/${paMeta.seriesInstanceUid}/rendered`, 'multipart/related; type="image/png"'));
  assert.equal(seriesPng.length, 1);
  assert.equal((await sharp(seriesPng[0].body).metadata()).width, 256);
});

test('Accept negotiation: what a resource is not available as is 406 E_NOT_ACCEPTABLE; q-values are honoured', async () => {
  const inst = `/dicomweb/studies/${STUDY}/series/${paMeta.seriesInstanceUid}/instances/${paMeta.sopInstanceUid}`;
  for (const [path, accept] of [
    [inst, 'application/json'],
    [inst, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'],
    [`${inst}/metadata`, 'application/dicom+xml'],
    [`${inst}/rendered`, 'image/gif'],
    [`${inst}/rendered`, 'image/png;q=0'],
    [`${inst}/frames/1`, 'multipart/related; type="image/jpeg"'],
    [`/dicomweb/studies/${STUDY}`, 'multipart/related; type="application/octet-stream"'],
  ]) {
    const g = await get(path, accept);
    assert.equal(g.status, 406, `${path} Accept: ${accept}`);
    assert.equal(jsonOf(g).error.code, 'E_NOT_ACCEPTABLE');
  }
  assert.equal((await get(`${inst}/rendered`, 'image/jpeg;q=0.5, image/png')).type, 'image/png');
  assert.equal((await get(`${inst}/rendered`, 'image/*')).type, 'image/jpeg');
  assert.equal((await get(inst, `multipart/related; type="application/dicom"; transfer-syntax=${paMeta.transferSyntaxUid}`)).status, 200);
  assert.equal((await get(`${inst}/frames/2`)).status, 404);
  const [{ n }]: { n: number }[] = await h.db.ds.query(
    `SELECT count(*)::int AS n FROM audit_log WHERE action = 'study.retrieve' AND outcome = 'E_NOT_ACCEPTABLE'`,
  );
  assert.ok(n >= 7, 'refusals are audited with their code');
});

test('an OHIF-style browse: study list with its includefields, the series, series metadata, then each frame', async () => {
  const list = await get('/dicomweb/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060', 'application/dicom+json');
  assert.equal(list.status, 200);
  const studies = jsonOf(list) as Record<string, { vr: string; Value?: unknown[] }>[];
  const s = studies.find((i) => v(i, '0020000D') === STUDY)!;
  // the films, and the AI result objects (SR, Secondary Capture OT) made for them
  assert.deepEqual(s['00080061'].Value?.slice().sort(), ['CR', 'DX', 'OT', 'SR']);
  assert.deepEqual(s['00100020'], { vr: 'LO', Value: ['LAT801'] }, "the first instance's patient id");
  assert.equal(s['00081030'].vr, 'LO');
  const series = jsonOf(await get(`/dicomweb/studies/${STUDY}/series`, 'application/dicom+json')) as Record<string, { Value?: unknown[] }>[];
  assert.equal(series.length, 6);
  for (const se of series) {
    const uid = String(v(se, '0020000E'));
    const meta = jsonOf(await get(`/dicomweb/studies/${STUDY}/series/${uid}/metadata`, 'application/dicom+json')) as Record<string, { Value?: unknown[] }>[];
    for (const inst of meta) {
      // a viewer asks an SR for no frames
      if (v(inst, '00080060') === 'SR') continue;
      const rows = Number(v(inst, '00280010'));
      const cols = Number(v(inst, '00280011'));
      const frame = parts(
        await get(
          `/dicomweb/studies/${STUDY}/series/${uid}/instances/${v(inst, '00080018')}/frames/1`,
          'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        ),
      );
      assert.equal(frame[0].body.length, rows * cols * Number(v(inst, '00280002') ?? 1) * (Number(v(inst, '00280100')) / 8));
    }
  }
});

test('thumbnails (study, series, instance) fit 128x128 unless viewport= says otherwise; rendered takes viewport= too', async () => {
  const study = await get(`/dicomweb/studies/${STUDY}/thumbnail`);
  assert.equal(study.type, 'image/jpeg');
  const sm = await sharp(study.body).metadata();
  assert.deepEqual([sm.width, sm.height], [128, 128], 'the first image (256x256) scaled down');
  const inst = `/dicomweb/studies/${STUDY}/series/${STUDY}.2/instances/${STUDY}.2.1`;
  const small = await sharp((await get(`${inst}/thumbnail`, 'image/png')).body).metadata();
  assert.deepEqual([small.format, small.width, small.height], ['png', 64, 48], 'never enlarged');
  const fitted = await sharp((await get(`${inst}/rendered?viewport=32,32`)).body).metadata();
  assert.deepEqual([fitted.width, fitted.height], [32, 24], 'aspect ratio kept');
  assert.equal((await sharp((await get(`/dicomweb/studies/${STUDY}/series/${STUDY}.2/thumbnail?viewport=16,16`)).body).metadata()).width, 16);
  assert.equal((await get(`${inst}/thumbnail?viewport=0,5`)).status, 400);
  assert.equal((await get(`${inst}/thumbnail`, 'application/dicom')).status, 406);
});
