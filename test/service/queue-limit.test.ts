/**
 * CXR_QUEUE_SIZE holds under concurrent uploads: the count that decides is taken under one
 * lock across processes inside the transaction that inserts the study. And an upload against a
 * queue already full is refused before its body is read.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { closeServer, listen } from '../../src/app/server.js';
import { startHarness, study, type Harness } from '../support/api.js';

let h: Harness;
before(async () => {
  // no scoring here: the queue only fills
  h = await startHarness({ workers: 0, queueSize: 4 });
});
after(async () => {
  await h?.close();
});

const queued = async () => ((await h.db.ds.query(`SELECT count(*)::int AS n FROM studies WHERE status = 'queued'`)) as { n: number }[])[0].n;

test('40 distinct studies posted at once into a queue of 4: exactly 4 accepted, the rest 503 E_QUEUE_FULL, and no file of a refused one left behind', async () => {
  const ws = `Bearer ${h.token('workstation', 'ws-burst')}`;
  const replies = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      h.http
        .post('/v1/studies')
        .set('Authorization', ws)
        .set('Content-Type', 'application/dicom')
        .send(study(600 + i, { size: 128 })),
    ),
  );
  const statuses = replies.map((r) => `${r.status} ${r.body?.error?.code ?? ''}`.trim()).sort();
  assert.deepEqual([...new Set(statuses)], ['202', '503 E_QUEUE_FULL']);
  assert.equal(statuses.filter((s) => s === '202').length, 4);
  assert.equal(await queued(), 4);
  // every stored original belongs to an accepted study
  await h.parts.service.collectGarbage(0);
  const stored: { n: number }[] = await h.db.ds.query(`SELECT count(DISTINCT sha256)::int AS n FROM studies`);
  assert.equal(stored[0].n, 4);
});

test('against a full queue an upload is refused before its body is read: 503 with Retry-After and Connection: close while the body is still unsent', async () => {
  assert.equal(await queued(), 4);
  const { server, url } = await listen(h.parts.app, 0, '127.0.0.1');
  try {
    // headers promising 8 MiB, and not one byte of it sent: an answer can only come from before the body
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${url}/v1/studies`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${h.token('workstation', 'ws-burst')}`, 'Content-Type': 'application/dicom', 'Content-Length': String(8 << 20) },
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.flushHeaders();
    });
    let text = '';
    for await (const chunk of res) text += chunk;
    assert.equal(res.statusCode, 503);
    assert.equal(JSON.parse(text).error.code, 'E_QUEUE_FULL');
    assert.ok(Number(res.headers['retry-after']) > 0);
    assert.equal(res.headers.connection, 'close');
  } finally {
    await closeServer(server, 1000);
  }
});
