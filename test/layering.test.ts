/**
 * The import rules of .dependency-cruiser.cjs (layer order, no circles) hold on src/, and they
 * do bite: the fixture tree with a deliberately wrong import and a circle fails them. The
 * checker runs as `npm run depcheck` does, in its own process (its swc visitor does not run
 * under the tsx loader of the tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = resolve(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

/** Runs the checker exactly as `npm run depcheck` does and returns its exit status and report. */
function depcruise(cwd: string): { status: number | null; report: string } {
  const r = spawnSync(process.execPath, [BIN, 'src', '--config', resolve(ROOT, '.dependency-cruiser.cjs')], { cwd, encoding: 'utf8' });
  assert.equal(r.error, undefined);
  return { status: r.status, report: `${r.stdout}${r.stderr}` };
}

/** `error <rule>: <from> → <to>` lines of the report, the arrow written as ->. */
function violations(report: string): string[] {
  return [...report.matchAll(/^\s*error ([\w-]+): (\S+) →\s*(\S+)/gm)].map((m) => `${m[1]}: ${m[2]} -> ${m[3]}`).sort();
}

test('src/ has no upward import and no circle beyond the listed ones', () => {
  const r = depcruise(ROOT);
  assert.deepEqual(violations(r.report), []);
  const cruised = Number(/\((\d+) modules/.exec(r.report)?.[1]);
  assert.ok(cruised > 100, `only ${cruised} modules cruised: the parser did not read the sources\n${r.report}`);
  assert.match(r.report, /no dependency violations found/);
  assert.equal(r.status, 0);
});

test('a lower layer importing a higher one, and a circle, fail the check', () => {
  const r = depcruise(resolve(ROOT, 'test/fixtures/layering'));
  assert.deepEqual(violations(r.report), ['layer-dicom: src/dicom/parse.ts -> src/api/http.ts', 'no-circular: src/imaging/a.ts -> src/imaging/b.ts']);
  assert.match(r.report, /2 dependency violations \(2 errors/);
  assert.equal(r.status, 2);
});
