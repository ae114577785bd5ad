/** ARCHITECTURE.md stays true: every source path it names exists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

test('every file ARCHITECTURE.md names in backticks exists (under src/ or from the repository root)', () => {
  const text = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
  const named = [...text.matchAll(/`([a-z][a-z0-9/._-]*\.(?:ts|tsx|cjs|mjs|json|md))`/g)].map((m) => m[1]);
  assert.ok(named.length > 20, `expected the map to name its modules, found ${named.length}`);
  const missing = named.filter((p) => !existsSync(join(root, 'src', p)) && !existsSync(join(root, p)));
  assert.deepEqual(missing, []);
});
