/**
 * A peer that sends the next DIMSE message in the same TCP chunk (or the same P-DATA-TF PDU) as
 * the last data fragment of a C-STORE: both are answered and nothing is thrown. scp.ts once
 * deferred the library's dataset callback to the collector's 'finish' event (next tick), so the
 * library wrote the next command into the ended collector: write-after-end, an 'error' nobody
 * listened to, an uncaught exception that took the whole process down. Raw PDUs (PS3.8) from
 * test/support/dimse-pdu.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CxrError } from '../../src/errors.js';
import { insertClient } from '../../src/db/principals.js';
import { startDimseServer, type DimseServer } from '../../src/api/dimse/scp.js';
import { silentLogger } from '../../src/service/log.js';
import type { TriageService } from '../../src/service/triage.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { associateRq, cEchoRq, cStoreRq, CR_IMAGE, EXPLICIT_LE, open, pdata, PduReader, statusOf, VERIFICATION } from '../support/dimse-pdu.js';

let db: TestDatabase;
let scp: DimseServer;
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

before(async () => {
  db = await createTestDatabase();
  await insertClient(db.ds, { id: 'ws-1', role: 'workstation', secretHash: 'x', description: '', createdBy: 'test', aeTitle: 'WS-1' });
  // accept is never what matters here: refuse everything with a 4xx code
  const service = { accept: async () => Promise.reject(new CxrError('E_MALFORMED', 'stub')) } as unknown as TriageService;
  scp = await startDimseServer({ aeTitle: 'CXRTRIAGE', host: '127.0.0.1', port: 0, maxBytes: 1 << 20, ds: db.ds, service, log: silentLogger });
  process.on('uncaughtException', onUncaught);
});
after(async () => {
  process.off('uncaughtException', onUncaught);
  await scp?.close(500);
  await db?.drop();
});

test('a C-STORE data set followed at once by a C-ECHO (one write) does not throw an uncaught exception', async () => {
  const sock = await open(scp.port);
  const rd = new PduReader(sock);
  sock.write(
    associateRq('WS-1', 'CXRTRIAGE', [
      { id: 1, abstract: CR_IMAGE, syntaxes: [EXPLICIT_LE] },
      { id: 3, abstract: VERIFICATION, syntaxes: [EXPLICIT_LE] },
    ]),
  );
  const ac = await rd.next();
  assert.equal(ac?.[0], 0x02, 'association accepted');
  const ds = Buffer.alloc(64, 0); // content irrelevant: accept is stubbed
  sock.write(
    Buffer.concat([
      pdata([{ pc: 1, command: true, last: true, value: cStoreRq(1, CR_IMAGE, '1.2.3.4.5.6') }]),
      pdata([{ pc: 1, command: false, last: true, value: ds }]),
      pdata([{ pc: 3, command: true, last: true, value: cEchoRq(2) }]),
    ]),
  );
  const responses: (number | null)[] = [];
  for (;;) {
    const p = await rd.next(3000);
    if (!p) break;
    responses.push(p[0] === 0x04 ? statusOf(p) : -p[0]);
  }
  sock.destroy();
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(uncaught, [], 'no uncaught exception in the service process');
  // a well-behaved SCP answers both: the C-STORE (refused here, 0xC000) and the C-ECHO (0x0000)
  assert.deepEqual([...responses].sort(), [0x0000, 0xc000].sort());
});
