/** DICOMweb QIDO-RS over what the service holds: studies, series, instances by the common keys. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readMetadata } from '../../src/dicom/index.js';
import { startHarness, study, waitScored, type Harness } from '../support/api.js';

let h: Harness;
let clin: string;
const STUDY = '2.25.5511000000000000000000000000000001';
const opts = { studyInstanceUid: STUDY, accessionNumber: 'ACC-Q1', studyDate: '20261115' };
const pa = study(701, { ...opts, viewPosition: 'PA' });
const lat = study(702, { ...opts, viewPosition: 'LL' });
const other = study(703, { accessionNumber: 'ACC-Q2', studyDate: '20261201' });

before(async () => {
  h = await startHarness();
  clin = `Bearer ${h.token('clinician')}`;
  const ws = `Bearer ${h.token('workstation', 'ws-qido')}`;
  for (const body of [pa, lat, other]) {
    const res = await h.http.post('/v1/studies').set('Authorization', ws).set('Content-Type', 'application/dicom').send(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitScored(h, res.body.id);
  }
  // the AI result objects (SR and Secondary Capture) of the two frontal films are instances too, once made
  for (;;) {
    const [r] = await h.db.ds.query(`SELECT count(*)::int AS n FROM derived_objects WHERE sha256 IS NOT NULL`);
    if (r.n === 4) break;
    await new Promise((done) => setTimeout(done, 50));
  }
});
const RESULT_CLASSES = ['1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.7'];
after(async () => {
  await h?.close();
});

type Item = Record<string, { vr: string; Value?: unknown[] }>;
const get = async (path: string, auth = clin): Promise<Item[]> => {
  const res = await h.http.get(path).set('Authorization', auth);
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
  assert.match(res.headers['content-type'], /^application\/dicom\+json/);
  return JSON.parse(res.text) as Item[];
};
const v = (item: Item, tag: string) => item[tag]?.Value?.[0];

test('QIDO-RS finds the study by StudyInstanceUID, by AccessionNumber (keyword or tag) and by a StudyDate range', async () => {
  const byUid = await get(`/dicomweb/studies?StudyInstanceUID=${STUDY}`);
  assert.equal(byUid.length, 1);
  assert.equal(v(byUid[0], '0020000D'), STUDY);
  assert.equal(v(byUid[0], '00080050'), 'ACC-Q1');
  assert.equal(v(byUid[0], '00080020'), '20261115');
  // two films in two series, and the PA's SR and Secondary Capture in a series each
  assert.equal(v(byUid[0], '00201206'), 4);
  assert.equal(v(byUid[0], '00201208'), 4);
  assert.deepEqual(byUid[0]['00080061'].Value, ['CR', 'OT', 'SR']);
  assert.match(String(v(byUid[0], '00081190')), new RegExp(`/dicomweb/studies/${STUDY}$`));
  assert.deepEqual(
    (await get('/dicomweb/studies?AccessionNumber=ACC-Q1')).map((i) => v(i, '0020000D')),
    [STUDY],
  );
  assert.deepEqual(
    (await get('/dicomweb/studies?00080050=ACC-Q1')).map((i) => v(i, '0020000D')),
    [STUDY],
  );
  assert.deepEqual(
    (await get('/dicomweb/studies?StudyDate=20261101-20261130')).map((i) => v(i, '0020000D')),
    [STUDY],
  );
  assert.deepEqual(
    (await get('/dicomweb/studies?StudyDate=20261201-')).map((i) => v(i, '00080050')),
    ['ACC-Q2'],
  );
  assert.deepEqual(await get('/dicomweb/studies?AccessionNumber=NOPE'), []);
  const bad = await h.http.get('/dicomweb/studies?StudyDate=yesterday').set('Authorization', clin);
  assert.equal(bad.status, 400);
});

test("QIDO-RS lists a study's series and instances, each with its WADO-RS RetrieveURL, which returns the instance", async () => {
  const series = await get(`/dicomweb/studies/${STUDY}/series`);
  assert.equal(series.length, 4);
  const instances = await get(`/dicomweb/studies/${STUDY}/instances`);
  assert.deepEqual(
    instances.map((i) => v(i, '00080016')).filter((c) => RESULT_CLASSES.includes(String(c))),
    RESULT_CLASSES,
    'the PA film is followed by its SR and Secondary Capture',
  );
  assert.deepEqual(
    instances.filter((i) => !RESULT_CLASSES.includes(String(v(i, '00080016')))).map((i) => [v(i, '00080018'), v(i, '00185101')]),
    [
      [readMetadata(pa).sopInstanceUid, 'PA'],
      [readMetadata(lat).sopInstanceUid, 'LL'],
    ],
  );
  const inSeries = await get(`/dicomweb/studies/${STUDY}/series/${readMetadata(pa).seriesInstanceUid}/instances`);
  assert.equal(inSeries.length, 1);
  const url = new URL(String(v(inSeries[0], '00081190')));
  const res = await h.http.get(url.pathname).set('Authorization', clin);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^multipart\/related; type="application\/dicom"/);
});

test('QIDO-RS matches PatientID (by its pseudonym), ModalitiesInStudy, UID lists, Modality and SOPInstanceUID; adds header attributes, includefield; pages with limit/offset', async () => {
  const paM = readMetadata(pa);
  const latM = readMetadata(lat);
  const otherM = readMetadata(other);
  assert.deepEqual(
    (await get('/dicomweb/studies?PatientID=LAT703')).map((i) => v(i, '00080050')),
    ['ACC-Q2'],
  );
  assert.deepEqual(await get('/dicomweb/studies?00100020=NOBODY'), []);
  // a study's usual attributes come from its first instance's header; one the file lacks is named, empty
  const [st] = await get(`/dicomweb/studies?StudyInstanceUID=${STUDY}`);
  assert.deepEqual(st['00100020'], { vr: 'LO', Value: ['LAT701'] });
  assert.deepEqual(st['00100010'], { vr: 'PN' });
  assert.deepEqual(st['00081030'], { vr: 'LO' });

  assert.equal((await get(`/dicomweb/studies?ModalitiesInStudy=CR&StudyInstanceUID=${STUDY}`)).length, 1);
  assert.equal((await get(`/dicomweb/studies?ModalitiesInStudy=DX,MR&StudyInstanceUID=${STUDY}`)).length, 0);
  assert.equal((await get(`/dicomweb/studies?00080061=DX%5CCR&StudyInstanceUID=${STUDY}`)).length, 1);
  assert.equal((await get(`/dicomweb/studies?Modality=CR&StudyInstanceUID=${STUDY}`)).length, 1, 'Modality at study level is ModalitiesInStudy');
  const both = await get(`/dicomweb/studies?StudyInstanceUID=${STUDY},${otherM.studyInstanceUid}`);
  assert.deepEqual(both.map((i) => v(i, '0020000D')).sort(), [STUDY, otherM.studyInstanceUid].sort());

  const s = await get(`/dicomweb/series?SeriesInstanceUID=${latM.seriesInstanceUid}&Modality=CR`);
  assert.equal(s.length, 1);
  assert.equal(v(s[0], '0020000D'), STUDY);
  assert.equal(v(s[0], '00180015'), 'CHEST');
  assert.deepEqual(await get(`/dicomweb/series?SeriesInstanceUID=${latM.seriesInstanceUid}&Modality=DX`), []);

  const inst = await get(`/dicomweb/instances?SOPInstanceUID=${paM.sopInstanceUid}&includefield=PatientID,00080060&includefield=WindowCenter`);
  assert.equal(inst.length, 1);
  assert.equal(v(inst[0], '00100020'), 'LAT701');
  assert.equal(v(inst[0], '00080060'), 'CR');
  assert.deepEqual(inst[0]['00281050'], { vr: 'DS', Value: [2048] });
  assert.deepEqual(inst[0]['00280004'], { vr: 'CS', Value: ['MONOCHROME2'] });
  const all = await get(`/dicomweb/instances?SOPInstanceUID=${paM.sopInstanceUid}&includefield=all`);
  assert.ok(Object.keys(all[0]).length > 25, `${Object.keys(all[0]).length} attributes`);
  assert.equal(all[0]['7FE00010'], undefined, 'never the pixel data');
  assert.equal((await h.http.get('/dicomweb/instances?includefield=NoSuchKeyword').set('Authorization', clin)).status, 400);

  const page1 = await get('/dicomweb/studies?limit=1');
  const page2 = await get('/dicomweb/studies?limit=1&offset=1');
  assert.equal(page1.length, 1);
  assert.equal(page2.length, 1);
  assert.notEqual(v(page1[0], '0020000D'), v(page2[0], '0020000D'));
  assert.equal((await get('/dicomweb/instances?limit=2')).length, 2);
  // three films and the four result objects of the two frontal ones
  assert.equal((await get('/dicomweb/instances?limit=2&offset=6')).length, 1);
  assert.equal((await h.http.get('/dicomweb/studies?limit=0').set('Authorization', clin)).status, 400);
});

test('a workstation finds only what it sent', async () => {
  assert.equal((await get(`/dicomweb/studies?StudyInstanceUID=${STUDY}`, `Bearer ${h.token('workstation', 'ws-qido')}`)).length, 1);
  assert.deepEqual(await get(`/dicomweb/studies?StudyInstanceUID=${STUDY}`, `Bearer ${h.token('workstation', 'ws-other')}`), []);
});

test('FHIR R4: a scored study has a preliminary DiagnosticReport with its Observation (probability, threshold, decision)', async () => {
  const ids: { id: string }[] = await h.db.ds.query('SELECT id FROM studies WHERE study_instance_uid = $1', [STUDY]);
  for (const { id } of ids) await waitScored(h, id);
  const res = await h.http.get(`/fhir/r4/DiagnosticReport?study=${STUDY}`).set('Authorization', clin);
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^application\/fhir\+json/);
  const bundle = JSON.parse(res.text);
  assert.equal(bundle.resourceType, 'Bundle');
  assert.equal(bundle.total, 1);
  const report = bundle.entry[0].resource;
  assert.equal(report.resourceType, 'DiagnosticReport');
  assert.equal(report.status, 'preliminary');
  assert.deepEqual(report.identifier[0], { system: 'urn:dicom:uid', value: `urn:oid:${STUDY}` });
  assert.equal(report.identifier[1].value, 'ACC-Q1');
  assert.equal(report.effectiveDateTime, '2026-11-15');
  assert.match(report.conclusion, /Not for diagnostic use\.$/);
  assert.match(report.conclusion, /1 frontal image\(s\) scored/);
  const obs = report.contained[0];
  assert.equal(report.result[0].reference, `#${obs.id}`);
  const wl = await h.http.get('/v1/worklist?limit=200').set('Authorization', clin);
  const row = wl.body.items.find((i: { studyInstanceUid: string }) => i.studyInstanceUid === STUDY);
  assert.equal(obs.valueQuantity.value, row.probability);
  assert.equal(obs.interpretation[0].coding[0].code, row.decision === 'positive' ? 'POS' : 'NEG');
  assert.match(obs.device.display, /@/);
  const none = JSON.parse((await h.http.get('/fhir/r4/DiagnosticReport?study=1.2.3.4').set('Authorization', clin)).text);
  assert.equal(none.total, 0);
  assert.equal((await h.http.get('/fhir/r4/DiagnosticReport').set('Authorization', clin)).status, 400);
  assert.equal((await h.http.get(`/fhir/r4/DiagnosticReport?study=${STUDY}`).set('Authorization', `Bearer ${h.token('workstation', 'ws-qido')}`)).status, 403);
});

test('a stored file that cannot be read does not hide a match: QIDO-RS answers with what the database holds', async () => {
  const body = study(704, { accessionNumber: 'ACC-Q-LOST' });
  const res = await h.http
    .post('/v1/studies')
    .set('Authorization', `Bearer ${h.token('workstation', 'ws-qido')}`)
    .set('Content-Type', 'application/dicom')
    .send(body);
  assert.equal(res.status, 202);
  await waitScored(h, res.body.id);
  const [{ sha256 }]: { sha256: string }[] = await h.db.ds.query('SELECT sha256 FROM studies WHERE id = $1', [res.body.id]);
  await rm(join(h.settings.dicomDir, sha256.slice(0, 2), `${sha256}.dcm`));
  const [found] = await get('/dicomweb/studies?AccessionNumber=ACC-Q-LOST');
  assert.equal(v(found, '00080050'), 'ACC-Q-LOST');
  assert.equal(found['00100020'], undefined, 'no header attributes without the file');
});

test("a workstation cannot learn another sender's patient by putting an instance of its own into that study: PatientID matches its own instances only", async () => {
  const probe = `Bearer ${h.token('workstation', 'ws-probe')}`;
  const res = await h.http
    .post('/v1/studies')
    .set('Authorization', probe)
    .set('Content-Type', 'application/dicom')
    .send(study(705, { ...opts, viewPosition: 'AP' }));
  assert.equal(res.status, 202, JSON.stringify(res.body));
  // its own patient finds its own instance; the patient of the films ws-qido sent into the same study finds nothing
  assert.equal((await get('/dicomweb/studies?PatientID=LAT705', probe)).length, 1);
  assert.deepEqual(await get('/dicomweb/studies?PatientID=LAT701', probe), []);
  // a clinician sees both senders' instances of the study by either patient
  assert.equal((await get('/dicomweb/studies?PatientID=LAT701')).length, 1);
});
