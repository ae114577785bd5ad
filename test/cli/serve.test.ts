/**
 * The one-command start end to end: `cxr-triage serve` with no DATABASE_URL starts the
 * embedded PostgreSQL of the data directory, migrates, serves on the models directory;
 * `cxr-triage token` and `cxr-triage client add` work against it from the same data
 * directory; SIGTERM stops everything, and a second start finds its data again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { randomModels } from '../support/random-models.js';
import { runCli, spawnCliSync } from '../support/cli.js';
import { freePort, startServe as spawnServe } from '../support/serve-process.js';

// As root (this project's machines, most containers) the embedded PostgreSQL runs as
// 'postgres', which cannot traverse the 0700 directory mkdtemp makes: the data directory is
// left private on purpose, and the cluster must then live in a directory of its own.
const asRoot = userInfo().uid === 0;
let root: string;
let env: NodeJS.ProcessEnv;
let operatorEnv: Record<string, string | undefined>;
const running = new Set<ChildProcess>();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cxr-serve-'));
  await randomModels(join(root, 'models'), { size: 'small', seed: 1, threshold: 0.4 });
  const { DATABASE_URL: _omit, CXR_JWT_SECRET: _j, CXR_HMAC_KEY: _h, ...rest } = process.env;
  env = { ...rest, CXR_DATA_DIR: join(root, 'data'), CXR_MODELS_DIR: join(root, 'models'), CXR_PG_PORT: String(await freePort()), CXR_TTA: '2' };
  env.CXR_DIMSE_PORT = String(await freePort());
  operatorEnv = { DATABASE_URL: undefined, CXR_JWT_SECRET: undefined, CXR_HMAC_KEY: undefined };
  for (const k of ['CXR_DATA_DIR', 'CXR_MODELS_DIR', 'CXR_PG_PORT', 'CXR_TTA', 'CXR_DIMSE_PORT']) operatorEnv[k] = env[k];
});

after(async () => {
  // a failed assertion must not leave a server (and its PostgreSQL) behind
  await Promise.all(
    [...running].map((p) => {
      p.kill('SIGTERM');
      return new Promise((r) => p.once('close', r));
    }),
  );
  if (root) {
    const marker = join(root, 'data', 'pg-location');
    if (existsSync(marker)) await rm((await readFile(marker, 'utf8')).trim(), { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  }
});

interface Running {
  proc: ChildProcess;
  url: string;
  /** the study file the banner tells people to post */
  example: string;
  stderr: () => string;
  /** what it printed on stdout (the start banner) */
  banner: () => string;
  exited: Promise<number | null>;
}

async function startServe(): Promise<Running> {
  const s = await spawnServe(env, { timeoutMs: 90_000 });
  running.add(s.proc);
  const exited = s.exited.then(({ code }) => {
    running.delete(s.proc);
    return code;
  });
  const out = s.stdout();
  assert.match(out, /TOKEN=\$\(.*npx cxr-triage token --role workstation --sub ws-1\)/);
  const example = /--data-binary @(\S+\.dcm)/.exec(out);
  assert.ok(example, 'the banner shows how to post the example study');
  return { proc: s.proc, url: s.url, example: example[1], stderr: s.stderr, banner: s.stdout, exited };
}

// The operator commands run in this process (same program, no Node start), with the server's
// environment: no DATABASE_URL, so they find the embedded cluster of the data directory.
const cli = (args: string[]) => runCli(args, operatorEnv);

async function pgReachable(port: string): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port: Number(port), user: 'nobody', database: 'x', connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch (e) {
    return !/ECONNREFUSED/.test(String((e as Error).message));
  }
}

test('serve starts on an embedded PostgreSQL (as root too, with a private data directory), scores a study, works with the operator CLI, stops cleanly, and takes over the PostgreSQL a killed server left running', {
  // several starts of serve and its embedded PostgreSQL: minutes when the machine is busy
  timeout: 480_000,
}, async () => {
  const s = await startServe();
  assert.match(s.stderr(), /DEVELOPMENT KEYS IN USE/);
  if (asRoot) {
    // 'postgres' cannot reach the private data directory: the cluster lives in a directory of its own, owned by 'postgres'
    const dir = (await readFile(join(root, 'data', 'pg-location'), 'utf8')).trim();
    assert.match(dir, /^\/var\/lib\/cxr-triage\/pg-[0-9a-f]{16}$/);
    assert.ok(existsSync(join(dir, 'PG_VERSION')), 'cluster initialised in its own directory');
    const owner = spawnSync('stat', ['-c', '%U', dir], { encoding: 'utf8' }).stdout.trim();
    assert.equal(owner, 'postgres');
    assert.match(s.banner(), new RegExp(`cluster in ${dir}`));
  } else {
    assert.ok(existsSync(join(root, 'data', 'pg', 'PG_VERSION')), 'cluster initialised under the data directory');
  }
  const ready = await fetch(`${s.url}/readyz`);
  assert.equal(ready.status, 200);

  const tok = await cli(['token', '--role', 'workstation', '--sub', 'ws-e2e']);
  assert.equal(tok.code, 0, tok.stderr);
  const token = tok.stdout.trim();
  const posted = await fetch(`${s.url}/v1/studies?wait=true`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/dicom' },
    body: await readFile(s.example),
  });
  assert.equal(posted.status, 200);
  const report = (await posted.json()) as { id: string; status: string; prediction: { decision: string } };
  assert.equal(report.status, 'scored');

  // the operator CLI reuses the running cluster
  const added = await cli(['client', 'add', '--id', 'ws-cli', '--role', 'workstation']);
  assert.equal(added.code, 0, added.stderr);
  const secret = added.stdout.trim();
  const issued = await fetch(`${s.url}/v1/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'ws-cli', client_secret: secret }),
  });
  assert.equal(issued.status, 200);
  const bad = await cli(['client', 'add', '--id', 'ws-cli', '--role', 'workstation']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error E_CONFLICT: client id 'ws-cli' is taken/m);
  assert.match((await cli(['token', '--role', 'root', '--sub', 'x'])).stderr, /error E_BAD_ARGUMENT: --role must be one of/);

  // DIMSE: a workstation registered with its calling AE title may C-ECHO the service's SCP
  const modality = await cli(['client', 'add', '--id', 'ws-modality', '--role', 'workstation', '--ae-title', 'MODALITY1']);
  assert.equal(modality.code, 0, modality.stderr);
  assert.match((await cli(['client', 'list'])).stdout, /"id":"ws-modality","role":"workstation","aeTitle":"MODALITY1"/);
  assert.match(
    (await cli(['client', 'add', '--id', 'ws-dup-ae', '--role', 'workstation', '--ae-title', 'modality1'])).stderr,
    /E_CONFLICT: AE title 'MODALITY1' is registered/,
  );
  const echo = spawnSync('echoscu', ['-aet', 'MODALITY1', '-aec', 'CXRTRIAGE', '127.0.0.1', env.CXR_DIMSE_PORT!], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(echo.status, 0, echo.stderr);

  s.proc.kill('SIGTERM');
  assert.equal(await s.exited, 0);
  assert.match(s.stderr(), /stopped/);
  assert.equal(await pgReachable(env.CXR_PG_PORT!), false);

  // second start: same cluster (no re-initialisation), same data, same keys
  const s2 = await startServe();
  try {
    const clin = (await cli(['token', '--role', 'clinician', '--sub', 'dr-e2e'])).stdout.trim();
    const got = await fetch(`${s2.url}/v1/studies/${report.id}`, { headers: { Authorization: `Bearer ${clin}` } });
    assert.equal(got.status, 200);
    assert.equal(((await got.json()) as { prediction: { decision: string } }).prediction.decision, report.prediction.decision);
    const verify = await fetch(`${s2.url}/v1/audit/verify`, {
      headers: { Authorization: `Bearer ${(await cli(['token', '--role', 'auditor', '--sub', 'a'])).stdout.trim()}` },
    });
    assert.equal(((await verify.json()) as { ok: boolean }).ok, true);
  } finally {
    s2.proc.kill('SIGINT');
    assert.equal(await s2.exited, 0);
  }
  assert.equal(await pgReachable(env.CXR_PG_PORT!), false);

  // a server killed with -9 leaves its PostgreSQL running; the next server takes it over and stops it with itself
  const s3 = await startServe();
  s3.proc.kill('SIGKILL');
  await s3.exited;
  assert.equal(await pgReachable(env.CXR_PG_PORT!), true, 'the killed server left its PostgreSQL running');
  const s4 = await startServe();
  assert.match(s4.banner() + s4.stderr(), /left running by a server that stopped without stopping it, taken over/);
  s4.proc.kill('SIGTERM');
  assert.equal(await s4.exited, 0);
  assert.equal(await pgReachable(env.CXR_PG_PORT!), false, 'the PostgreSQL it took over stopped with it');
});

test('serve refuses an invalid configuration with every problem listed and exit status 3', () => {
  const r = spawnCliSync(['serve'], { env: { ...env, PORT: 'x', CXR_QUEUE_SIZE: '-1' }, timeoutMs: 60_000 });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /^error E_CONFIG: invalid configuration:\n {2}PORT must be an integer from 0 to 65535 \(got 'x'\)\n {2}CXR_QUEUE_SIZE must be/m);
});
