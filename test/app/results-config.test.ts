/** Results destinations from the environment: what is accepted, and the clear refusal of what is not. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseAeAddress } from '../../src/app/config.js';
import { backoffMs } from '../../src/service/outbox.js';
import { destinationKey } from '../../src/service/results.js';

const base = { CXR_DATA_DIR: join(mkdtempSync(join(tmpdir(), 'cxr-results-config-')), 'data'), CXR_JWT_SECRET: 'j'.repeat(32), CXR_HMAC_KEY: 'h'.repeat(32) };

test('no destination by default: objects are made and kept, sent nowhere; retry policy defaults', () => {
  const cfg = loadConfig(base);
  assert.deepEqual(cfg.results, { destinations: [], maxAttempts: 8, retryDelayMs: 10_000, maxRetryDelayMs: 1_800_000, callingAeTitle: 'CXRTRIAGE' });
});

test('STOW-RS URL with its Authorization header and a C-STORE AE; calling AE is CXR_DIMSE_AET', () => {
  const cfg = loadConfig({
    ...base,
    CXR_RESULTS_STOW_URL: 'http://orthanc:8042/dicom-web/studies',
    CXR_RESULTS_STOW_AUTH: 'Basic eDp5',
    CXR_RESULTS_AE: 'ORTHANC@pacs.example.org:4242',
    CXR_DIMSE_AET: 'CXR1',
    CXR_RESULTS_ATTEMPTS: '3',
    CXR_RESULTS_RETRY_DELAY_S: '2',
    CXR_RESULTS_MAX_RETRY_DELAY_S: '60',
  });
  assert.deepEqual(cfg.results, {
    destinations: [
      { kind: 'stow', url: 'http://orthanc:8042/dicom-web/studies', auth: 'Basic eDp5' },
      { kind: 'dimse', aeTitle: 'ORTHANC', host: 'pacs.example.org', port: 4242 },
    ],
    maxAttempts: 3,
    retryDelayMs: 2000,
    maxRetryDelayMs: 60_000,
    callingAeTitle: 'CXR1',
  });
  // the outbox names destinations without their credentials
  assert.deepEqual(cfg.results.destinations.map(destinationKey), ['stow:http://orthanc:8042/dicom-web/studies', 'dimse:ORTHANC@pacs.example.org:4242']);
});

test('malformed destinations are refused at start, every one named with the shape it must have', () => {
  assert.throws(
    () => loadConfig({ ...base, CXR_RESULTS_STOW_URL: 'orthanc:8042/dicom-web', CXR_RESULTS_AE: 'ORTHANC@pacs', CXR_RESULTS_ATTEMPTS: '0' }),
    (e: Error & { code?: string }) =>
      e.code === 'E_CONFIG' &&
      /CXR_RESULTS_STOW_URL must be an http:\/\/ or https:\/\/ STOW-RS URL/.test(e.message) &&
      /CXR_RESULTS_AE must be AET@host:port, e.g. ORTHANC@pacs.example.org:4242 \(got 'ORTHANC@pacs'\)/.test(e.message) &&
      /CXR_RESULTS_ATTEMPTS must be an integer from 1 to 100/.test(e.message),
  );
  assert.throws(() => loadConfig({ ...base, CXR_RESULTS_STOW_AUTH: 'Basic eDp5' }), /CXR_RESULTS_STOW_AUTH is set but CXR_RESULTS_STOW_URL is not/);
  assert.equal(parseAeAddress('A\\B@host:104'), "has an AE title 'A\\B' that is not 1-16 characters without backslash");
  assert.equal(parseAeAddress('SEVENTEEN_CHARS_X@host:104'), "has an AE title 'SEVENTEEN_CHARS_X' that is not 1-16 characters without backslash");
  assert.equal(parseAeAddress('PACS@host:70000'), 'has port 70000, not 1-65535');
  assert.deepEqual(parseAeAddress('PACS@[::1]:104'), { aeTitle: 'PACS', host: '::1', port: 104 });
});

test('back-off doubles from the first delay up to the cap, with at most 10 % jitter', () => {
  const s = { retryDelayMs: 1000, maxRetryDelayMs: 5000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffMs(s, n, 0)),
    [1000, 2000, 4000, 5000, 5000],
  );
  assert.equal(backoffMs(s, 2, 1), 2200);
});
