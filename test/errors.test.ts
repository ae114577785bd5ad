import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CxrError, exitCodeFor, httpStatusFor } from '../src/errors.js';

test('input errors exit with status 2 and map to 4xx', () => {
  for (const code of ['E_NOT_DICOM', 'E_TRUNCATED', 'E_UNSUPPORTED_SYNTAX', 'E_MULTI_FRAME'] as const) {
    assert.equal(exitCodeFor(code), 2);
    const status = httpStatusFor(code);
    assert.ok(status >= 400 && status < 500, `${code} -> ${status}`);
  }
});

test('auth errors map to 401 and 403, oversize to 413, media type to 415, Accept to 406', () => {
  assert.equal(httpStatusFor('E_UNAUTHENTICATED'), 401);
  assert.equal(httpStatusFor('E_FORBIDDEN'), 403);
  assert.equal(httpStatusFor('E_PAYLOAD_TOO_LARGE'), 413);
  assert.equal(httpStatusFor('E_UNSUPPORTED_MEDIA_TYPE'), 415);
  assert.equal(httpStatusFor('E_NOT_ACCEPTABLE'), 406);
});

test('CxrError carries its code and message', () => {
  const e = new CxrError('E_NOT_DICOM', 'no DICM marker');
  assert.equal(e.code, 'E_NOT_DICOM');
  assert.equal(e.message, 'no DICM marker');
  assert.ok(e instanceof Error);
});
