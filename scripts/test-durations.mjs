// A node:test reporter that sums, per test file, the durations of its top-level tests and writes
// them as JSON (seconds, source paths relative to the root, longest first). scripts/test.mjs uses the committed
// result (test/durations.json) to start the longest files first, so two slow files do not end
// up running alone at the tail of the suite. Recorded by `TEST_RECORD_DURATIONS=1 npm test`.
import { sourcePath } from './test-bundle.mjs';

export default async function* durations(source) {
  const perFile = {};
  for await (const ev of source) {
    if ((ev.type === 'test:pass' || ev.type === 'test:fail') && ev.data.nesting === 0 && ev.data.file) {
      const f = sourcePath(ev.data.file);
      perFile[f] = (perFile[f] ?? 0) + (ev.data.details?.duration_ms ?? 0) / 1000;
    }
  }
  const sorted = Object.entries(perFile)
    .sort(([, a], [, b]) => b - a)
    .map(([f, s]) => [f, Math.round(s * 10) / 10]);
  yield `${JSON.stringify(Object.fromEntries(sorted), null, 2)}\n`;
}
