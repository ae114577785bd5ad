/** DICOMweb QIDO-RS over what the service holds: studies, series, instances by the common keys. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readMetadata } from '../../src/dicom/index.js';
import { startHarness, study, type Harness } from '../support/api.js';

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
  }
});
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
  assert.equal(v(byUid[0], '00201206'), 2);
  assert.equal(v(byUid[0], '00201208'), 2);
  assert.deepEqual(byUid[0]['00080061'].Value, ['CR']);
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
  assert.equal(series.length, 2);
  const instances = await get(`/dicomweb/studies/${STUDY}/instances`);
  assert.deepEqual(
    instances.map((i) => [v(i, '00080018'), v(i, '00185101')]),
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

test('a workstation finds only what it sent', async () => {
  assert.equal((await get(`/dicomweb/studies?StudyInstanceUID=${STUDY}`, `Bearer ${h.token('workstation', 'ws-qido')}`)).length, 1);
  assert.deepEqual(await get(`/dicomweb/studies?StudyInstanceUID=${STUDY}`, `Bearer ${h.token('workstation', 'ws-other')}`), []);
});
