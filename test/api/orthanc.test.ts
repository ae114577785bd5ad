/**
 * A real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) in front of the service, as a site
 * runs it: a private instance per test file (its own configuration, ports and storage in a
 * temporary directory) holds a study and forwards it (a) by its DICOMweb plugin (STOW-RS with
 * HTTP Basic client credentials) and (b) by C-STORE (modality forwarding); both are scored.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { DimseServer } from '../../src/api/dimse/scp.js';
import { closeServer, listen } from '../../src/app/server.js';
import { readMetadata } from '../../src/dicom/index.js';
import { createClient } from '../../src/service/clients.js';
import { startHarness, startHarnessScp, study, waitScored, type Harness } from '../support/api.js';
import { startOrthanc, type Orthanc } from '../support/pacs.js';

let h: Harness;
let scp: DimseServer;
let http: { server: Server; url: string };
let orthanc: Orthanc | null = null;
const orthancLog = () => orthanc?.log() ?? '';
const orthancApi = (method: string, path: string, body?: unknown) => orthanc!.api(method, path, body);

before(async () => {
  h = await startHarness();
  scp = await startHarnessScp(h);
  http = await listen(h.parts.app, 0, '127.0.0.1');
  // The site registers its Orthanc once: a workstation client whose secret Orthanc's DICOMweb
  // plugin sends by HTTP Basic, and whose AE title its C-STOREs come from.
  const { secret } = await createClient(
    h.db.ds,
    { id: 'orthanc-fwd', role: 'workstation', description: 'test Orthanc', createdBy: 'test', aeTitle: 'ORTHANC' },
    async () => {},
  );
  orthanc = await startOrthanc(join(h.root, 'orthanc'), {
    DicomAet: 'ORTHANC',
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      Servers: { cxr: { Url: `${http.url}/dicomweb/`, Username: 'orthanc-fwd', Password: secret } },
    },
    DicomModalities: { cxr: ['CXRTRIAGE', '127.0.0.1', scp.port] },
  });
});

after(async () => {
  await orthanc?.stop();
  if (http) await closeServer(http.server, 1000);
  await scp?.close(1000);
  await h?.close();
});

/** Stores an instance in Orthanc through its REST API; returns Orthanc's study id. */
async function storeInOrthanc(bytes: Uint8Array): Promise<string> {
  const res = (await orthancApi('POST', '/instances', bytes)) as { ParentStudy: string; Status: string };
  assert.match(res.Status, /Success|AlreadyStored/);
  return res.ParentStudy;
}

async function instanceRow(sop: string): Promise<{ id: string; submitted_by: string } | undefined> {
  const rows: { id: string; submitted_by: string }[] = await h.db.ds.query('SELECT id, submitted_by FROM studies WHERE sop_instance_uid = $1', [sop]);
  return rows[0];
}

test('Orthanc and its DICOMweb plugin are installed (CI installs orthanc and orthanc-dicomweb)', async () => {
  const plugins = (await orthancApi('GET', '/plugins')) as string[];
  assert.ok(plugins.includes('dicom-web'), `plugins: ${plugins.join(', ')}`);
});

/** The instance Orthanc forwarded reached the service under Orthanc's client, was scored once, and its audit row. */
async function forwardedAndScored(sop: string): Promise<{ detail: Record<string, unknown> }> {
  const row = await instanceRow(sop);
  assert.ok(row, `the instance reached the service:\n${orthancLog().slice(-2000)}`);
  assert.equal(row.submitted_by, 'orthanc-fwd');
  await waitScored(h, row.id);
  const [p] = await h.db.ds.query('SELECT count(*)::int AS n FROM predictions WHERE study_id = $1', [row.id]);
  assert.equal(p.n, 1);
  const [a] = await h.db.ds.query(`SELECT detail FROM audit_log WHERE action = 'study.create' AND study_id = $1`, [row.id]);
  return a;
}

test('Orthanc forwards a study by its DICOMweb plugin (STOW-RS, HTTP Basic): stored under its client and scored', async () => {
  const bytes = study(601, { accessionNumber: 'ORTH-WEB-1', studyDate: '20261201' });
  const meta = readMetadata(bytes);
  const orthancStudy = await storeInOrthanc(bytes);
  const res = (await orthancApi('POST', '/dicom-web/servers/cxr/stow', { Resources: [orthancStudy], Synchronous: true })) as Record<string, unknown>;
  assert.ok(res, 'the plugin answered');
  const a = await forwardedAndScored(meta.sopInstanceUid!);
  assert.equal(a.detail.via, 'stow-rs');
});

test('Orthanc forwards a study by C-STORE (modality forwarding) from its AE title: stored and scored', async () => {
  const bytes = study(602, { accessionNumber: 'ORTH-DIMSE-1' });
  const meta = readMetadata(bytes);
  const orthancStudy = await storeInOrthanc(bytes);
  const echo = await orthancApi('POST', '/modalities/cxr/echo', {});
  assert.deepEqual(echo, {});
  await orthancApi('POST', '/modalities/cxr/store', { Resources: [orthancStudy], Synchronous: true });
  const a = await forwardedAndScored(meta.sopInstanceUid!);
  assert.equal(a.detail.via, 'dimse');
  assert.equal(a.detail.callingAe, 'ORTHANC');
});

test("Orthanc's DICOMweb plugin as a client: QIDO-RS finds the study it sent by AccessionNumber, WADO-RS retrieves it back into Orthanc", async () => {
  const bytes = study(603, { accessionNumber: 'ORTH-QR-1', studyDate: '20261202' });
  const meta = readMetadata(bytes);
  const orthancStudy = await storeInOrthanc(bytes);
  await orthancApi('POST', '/dicom-web/servers/cxr/stow', { Resources: [orthancStudy], Synchronous: true });
  assert.ok(await instanceRow(meta.sopInstanceUid!), `the instance reached the service:\n${orthancLog().slice(-2000)}`);
  // Orthanc forgets it, then finds and fetches it from the service
  await orthancApi('DELETE', `/studies/${orthancStudy}`);
  // the plugin answers its own simplified form: { tag: { Name, Type, Value } } with the value as a string
  const found = (await orthancApi('POST', '/dicom-web/servers/cxr/qido', { Uri: '/studies', Arguments: { AccessionNumber: 'ORTH-QR-1' } })) as Record<
    string,
    { Value?: unknown }
  >[];
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.equal(found[0]['0020000D'].Value, meta.studyInstanceUid, JSON.stringify(found[0]));
  assert.equal(found[0]['00080050'].Value, 'ORTH-QR-1');
  await orthancApi('POST', '/dicom-web/servers/cxr/retrieve', { Resources: [{ Study: meta.studyInstanceUid }] });
  const back = (await orthancApi('POST', '/tools/find', { Level: 'Instance', Query: { SOPInstanceUID: meta.sopInstanceUid } })) as string[];
  assert.equal(back.length, 1, `Orthanc holds the instance again:\n${orthancLog().slice(-2000)}`);
  const file = Buffer.from(await (await fetch(`${orthanc!.url}/instances/${back[0]}/file`)).arrayBuffer());
  assert.equal(readMetadata(file).sopInstanceUid, meta.sopInstanceUid);
  const [a] = await h.db.ds.query(
    `SELECT count(*)::int AS n FROM audit_log WHERE action = 'study.retrieve' AND actor = 'orthanc-fwd' AND detail->>'sopInstanceUid' = $1`,
    [meta.sopInstanceUid],
  );
  assert.equal(a.n, 1, 'the retrieve is audited under the Orthanc client');
});
