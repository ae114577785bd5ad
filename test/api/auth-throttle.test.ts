/**
 * Issue 10 row 3: the sign-in brake is counted in PostgreSQL, before each secret is checked.
 * Replayed over real HTTP (the app listening on loopback) on a real database: hundreds of
 * concurrent wrong secrets get exactly CXR_AUTH_MAX_FAILURES checks, two service instances on
 * one database share the count, and a restart keeps it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { closeServer, listen, type ServiceParts } from '../../src/app/server.js';
import { startHarness, type Harness } from '../support/api.js';

const MAX = 10;
let h: Harness;
const servers: Server[] = [];

before(async () => {
  h = await startHarness({ authMaxFailures: MAX, authWindowMs: 600_000 });
});
after(async () => {
  for (const s of servers) await closeServer(s, 1000);
  await h?.close();
});

async function serve(parts: ServiceParts): Promise<string> {
  const { server, url } = await listen(parts.app, 0, '127.0.0.1');
  servers.push(server);
  return url;
}

function tokenRequest(url: string, body: Record<string, string>): Promise<Response> {
  return fetch(`${url}/v1/auth/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function outcomes(actor: string): Promise<string[]> {
  const rows: { outcome: string }[] = await h.db.ds.query(`SELECT outcome FROM audit_log WHERE action = 'auth.token' AND actor = $1 ORDER BY seq`, [actor]);
  return rows.map((r) => r.outcome);
}

async function createClient(id: string): Promise<string> {
  const created = await h.http
    .post('/v1/admin/clients')
    .set('Authorization', `Bearer ${h.token('admin')}`)
    .send({ id, role: 'workstation' });
  assert.equal(created.status, 201);
  return created.body.secret as string;
}

/** Every key's window started `seconds` earlier, as if that much time had passed. */
async function age(seconds: number): Promise<void> {
  await h.db.ds.query(`UPDATE login_attempts SET window_start = window_start - $1 * interval '1 second'`, [seconds]);
}

test('300 concurrent wrong secrets for one client: exactly CXR_AUTH_MAX_FAILURES are checked, the rest are refused unchecked (429 with Retry-After, or 503 when the burst outruns the pool), refusals audited', async () => {
  const url = await serve(h.parts);
  const secret = await createClient('ws-burst');
  const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => tokenRequest(url, { client_id: 'ws-burst', client_secret: `guess-${i}` })));
  const statuses = replies.map((r) => r.status);
  // On a loaded machine a burst this size can outrun the connection pool: those requests are
  // shed with 503 E_UNAVAILABLE + Retry-After before any secret is checked — never a 500.
  const shed = replies.filter((r) => r.status !== 401 && r.status !== 429);
  for (const r of shed) {
    assert.equal(r.status, 503, `only 401, 429 or 503: ${statuses.join(',')}`);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'E_UNAVAILABLE');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
  }
  assert.equal(statuses.filter((s) => s === 401).length, MAX, `statuses: ${statuses.join(',')}`);
  const limited = replies.filter((r) => r.status === 429);
  assert.equal(limited.length, 300 - MAX - shed.length);
  for (const r of limited) {
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 600, `Retry-After ${r.headers.get('retry-after')}`);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'E_RATE_LIMITED');
  }
  const audit = await outcomes('ws-burst');
  assert.equal(audit.filter((o) => o === 'E_UNAUTHENTICATED').length, MAX, 'only MAX secrets were checked');
  assert.equal(audit.filter((o) => o === 'E_RATE_LIMITED').length, limited.length, 'every refusal is audited');
  // the right secret is refused too while the name is locked
  assert.equal((await tokenRequest(url, { client_id: 'ws-burst', client_secret: secret })).status, 429);
  // once the window has passed, the name and the address may try again, and the right secret works
  await age(601);
  assert.equal((await tokenRequest(url, { client_id: 'ws-burst', client_secret: secret })).status, 200);
});

test('two instances on one database share the count, and a restarted instance still refuses', async () => {
  await h.db.ds.query('DELETE FROM login_attempts');
  const secret = await createClient('ws-shared');
  const a = await serve(h.parts);
  const b = await serve(await h.restart());
  // 100 guesses at once, split over both instances: still only MAX checked in total
  const replies = await Promise.all(
    Array.from({ length: 100 }, (_, i) => tokenRequest(i % 2 === 0 ? a : b, { client_id: 'ws-shared', client_secret: `guess-${i}` })),
  );
  assert.equal(replies.filter((r) => r.status === 401).length, MAX);
  assert.ok(replies.every((r) => [401, 429, 503].includes(r.status)));
  assert.equal((await outcomes('ws-shared')).filter((o) => o === 'E_UNAUTHENTICATED').length, MAX);
  // a third instance built after the others (a restart) reads the same count
  const c = await serve(await h.restart());
  const after = await tokenRequest(c, { client_id: 'ws-shared', client_secret: secret });
  assert.equal(after.status, 429);
  assert.ok(Number(after.headers.get('retry-after')) > 0);
});

test("a success clears the name's count but not the address's; another name from a locked address is refused", async () => {
  await h.db.ds.query('DELETE FROM login_attempts');
  const url = await serve(h.parts);
  const secret = await createClient('ws-mixed');
  for (let i = 0; i < MAX - 1; i++) assert.equal((await tokenRequest(url, { client_id: 'ws-mixed', client_secret: `guess-${i}` })).status, 401);
  assert.equal((await tokenRequest(url, { client_id: 'ws-mixed', client_secret: secret })).status, 200);
  const rows: { key: string; attempts: number }[] = await h.db.ds.query('SELECT key, attempts FROM login_attempts ORDER BY key');
  assert.deepEqual(rows, [{ key: 'address:127.0.0.1', attempts: MAX - 1 }], 'the name is cleared; the address keeps its failures, not the success');
  // one more failure (another name) locks the address
  assert.equal((await tokenRequest(url, { client_id: 'someone', client_secret: 'x' })).status, 401);
  const refused = await tokenRequest(url, { client_id: 'someone-else', client_secret: 'y' });
  assert.equal(refused.status, 429);
  assert.deepEqual(await outcomes('someone-else'), ['E_RATE_LIMITED']);
});

test('CXR_AUTH_MAX_FAILURES=0 turns the brake off and writes no rows', async () => {
  await h.db.ds.query('DELETE FROM login_attempts');
  const off = await serve(await h.restart({ authMaxFailures: 0 }));
  const replies = await Promise.all(Array.from({ length: 2 * MAX }, (_, i) => tokenRequest(off, { client_id: 'ws-off', client_secret: `g${i}` })));
  assert.ok(replies.every((r) => r.status === 401));
  assert.deepEqual(await h.db.ds.query('SELECT key FROM login_attempts'), []);
});

test('HTTP Basic on DICOMweb counts wrong secrets in the same brake: after the limit even the right secret gets 429 unchecked; right secrets at once, more than the limit, are never refused', async () => {
  // counts left by the tests above (this address among them) would lock it earlier
  await h.db.ds.query('DELETE FROM login_attempts');
  const secret = await createClient('pacs-basic');
  const basic = (s: string) => `Basic ${Buffer.from(`pacs-basic:${s}`).toString('base64')}`;
  // a PACS forwarding many studies at once with the right secret: nothing is reserved per request
  const burst = await Promise.all(Array.from({ length: MAX + 5 }, () => h.http.get('/dicomweb/studies').set('Authorization', basic(secret))));
  assert.deepEqual([...new Set(burst.map((r) => r.status))], [200]);
  const statuses: number[] = [];
  for (let i = 0; i < MAX + 2; i++) statuses.push((await h.http.get('/dicomweb/studies').set('Authorization', basic(`wrong-${i}`))).status);
  assert.deepEqual(statuses, [...Array(MAX).fill(401), 429, 429]);
  const right = await h.http.get('/dicomweb/studies').set('Authorization', basic(secret));
  assert.equal(right.status, 429);
  assert.equal(right.body.error.code, 'E_RATE_LIMITED');
  assert.ok(Number(right.headers['retry-after']) > 0);
  // the token endpoint's lock is the same one
  const token = await h.http.post('/v1/auth/token').send({ grant_type: 'client_credentials', client_id: 'pacs-basic', client_secret: secret });
  assert.equal(token.status, 429);
  await age(601);
  assert.equal((await h.http.get('/dicomweb/studies').set('Authorization', basic(secret))).status, 200);
});
