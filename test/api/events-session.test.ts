/** The live event stream ends with the session that opened it: signed out, or the user disabled. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { closeServer, listen } from '../../src/app/server.js';
import { startHarness, type Harness } from '../support/api.js';

let h: Harness;
let server: Server;
let url: string;
before(async () => {
  h = await startHarness();
  ({ server, url } = await listen(h.parts.app, 0, '127.0.0.1'));
});
after(async () => {
  if (server) await closeServer(server, 1000);
  await h?.close();
});

async function signedIn(id: string): Promise<{ cookie: string; csrf: string }> {
  const created = await h.http
    .post('/v1/admin/users')
    .set('Authorization', `Bearer ${h.token('admin')}`)
    .send({ id, role: 'clinician', displayName: id });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const r = await h.http.post('/v1/auth/session').send({ username: id, password: created.body.password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { cookie: String(r.headers['set-cookie']).split(';')[0], csrf: r.body.csrfToken as string };
}

/** Opens the stream and resolves when the server ends it (or rejects after `ms`). */
async function streamEnds(cookie: string, ms: number): Promise<{ ended: Promise<void> }> {
  const res = await fetch(`${url}/v1/events`, { headers: { Cookie: cookie } });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const ended = (async () => {
    const until = Date.now() + ms;
    for (;;) {
      const { done } = await Promise.race([
        reader.read(),
        new Promise<never>((_, no) => setTimeout(() => no(new Error('the stream did not end')), Math.max(0, until - Date.now()))),
      ]);
      if (done) return;
    }
  })();
  return { ended };
}

test('signing out ends the event stream the session opened', async () => {
  const s = await signedIn('dr-stream-1');
  const { ended } = await streamEnds(s.cookie, 30_000);
  const out = await h.http.delete('/v1/auth/session').set('Cookie', s.cookie).set('X-CSRF-Token', s.csrf);
  assert.equal(out.status, 204);
  await ended;
});

test('disabling the user ends the event stream of their session', async () => {
  const s = await signedIn('dr-stream-2');
  const { ended } = await streamEnds(s.cookie, 30_000);
  const off = await h.http.delete('/v1/admin/users/dr-stream-2').set('Authorization', `Bearer ${h.token('admin')}`);
  assert.equal(off.status, 204);
  await ended;
});
