/** Usage mistakes are input errors like any other: status 2 and `error E_BAD_ARGUMENT: …`; --help is 0; an empty number is no number. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, spawnCliSync } from '../support/cli.js';

test('a missing argument, an unknown option and an unknown command exit 2 with error E_BAD_ARGUMENT, as the process a user runs', () => {
  for (const [args, message] of [
    [['inspect'], /^error E_BAD_ARGUMENT: missing required argument 'file'/m],
    [['render', 'x.dcm', '--out', 'y.png', '--cneter', '5'], /^error E_BAD_ARGUMENT: unknown option '--cneter'/m],
    [['bogus'], /^error E_BAD_ARGUMENT: unknown command 'bogus'/m],
  ] as const) {
    const r = spawnCliSync([...args], { timeoutMs: 60_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(spawnCliSync(['--help'], { timeoutMs: 60_000 }).status, 0);
  assert.equal(spawnCliSync(['inspect', '--help'], { timeoutMs: 60_000 }).status, 0);
});

test('an empty value for a number option (an unset shell variable) is E_BAD_ARGUMENT, not 0', async () => {
  const r = await runCli(['analyze', 'fixtures/example/chest.dcm', '--uncertain-bound', '']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /error E_BAD_ARGUMENT: --uncertain-bound must be a number, got ''/);
  const blank = await runCli(['render', 'fixtures/example/chest.dcm', '--out', '/tmp/never-written.png', '--center', ' ', '--width', '1500']);
  assert.equal(blank.code, 2, blank.stderr);
  assert.match(blank.stderr, /--center must be a number, got ' '/);
});
