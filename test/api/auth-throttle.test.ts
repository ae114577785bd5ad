import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle } from '../../src/api/login-throttle.js';
import { startHarness, type Harness } from './harness.js';

test('the throttle locks a key at the failure limit until the window since its first failure ends', () => {
  let t = 1_000_000;
  const th = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: () => t });
  th.fail(['name:a', 'address:x']);
  t += 10_000;
  th.fail(['name:a', 'address:x']);
  assert.equal(th.retryAfterSeconds(['name:a', 'address:x']), 0);
  t += 5_000;
  th.fail(['name:a', 'address:x']);
  // locked from the third failure until 60 s after the first
  assert.equal(th.retryAfterSeconds(['name:a']), 45);
  assert.equal(th.retryAfterSeconds(['name:b', 'address:x']), 45);
  assert.equal(th.retryAfterSeconds(['name:b', 'address:y']), 0);
  t += 44_500;
  assert.equal(th.retryAfterSeconds(['name:a']), 1);
  t += 500;
  assert.equal(th.retryAfterSeconds(['name:a', 'address:x']), 0);
  // a success clears the name's count; the address keeps its own
  th.fail(['name:c', 'address:z']);
  th.fail(['name:c', 'address:z']);
  th.succeed('name:c');
  th.fail(['name:c', 'address:z']);
  assert.equal(th.retryAfterSeconds(['name:c']), 0);
  assert.ok(th.retryAfterSeconds(['address:z']) > 0);
  const off = new LoginThrottle({ maxFailures: 0, windowMs: 60_000 });
  for (let i = 0; i < 5; i++) off.fail(['name:a']);
  assert.equal(off.retryAfterSeconds(['name:a']), 0);
});

let h: Harness;
before(async () => {
  h = await startHarness({ authMaxFailures: 3, authWindowMs: 600_000 });
});
after(async () => {
  await h?.close();
});

test('POST /v1/auth/token answers 429 E_RATE_LIMITED with Retry-After after repeated failures, even to the right secret, and audits it', async () => {
  const admin = h.token('admin');
  const created = await h.http.post('/v1/admin/clients').set('Authorization', `Bearer ${admin}`).send({ id: 'ws-guessed', role: 'workstation' });
  assert.equal(created.status, 201);
  const secret: string = created.body.secret;
  const attempt = (s: string) => h.http.post('/v1/auth/token').send({ client_id: 'ws-guessed', client_secret: s });
  for (let i = 0; i < 3; i++) assert.equal((await attempt(`guess-${i}`)).status, 401);
  const locked = await attempt(secret);
  assert.equal(locked.status, 429);
  assert.equal(locked.body.error.code, 'E_RATE_LIMITED');
  const retry = Number(locked.headers['retry-after']);
  assert.ok(retry > 590 && retry <= 600, `Retry-After ${locked.headers['retry-after']}`);
  // the address is locked too: another name from the same host is refused
  assert.equal((await h.http.post('/v1/auth/token').send({ client_id: 'someone-else', client_secret: 'x' })).status, 429);
  const audit: { outcome: string }[] = await h.db.ds.query(`SELECT outcome FROM audit_log WHERE action = 'auth.token' AND actor = 'ws-guessed' ORDER BY seq`);
  assert.deepEqual(
    audit.map((a) => a.outcome),
    ['E_UNAUTHENTICATED', 'E_UNAUTHENTICATED', 'E_UNAUTHENTICATED', 'E_RATE_LIMITED'],
  );
});
