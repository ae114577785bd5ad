/** C-STORE statuses for refusals (PS3.4 B.2.3): out-of-room conditions are A700, so a sender retries later. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cStoreStatusFor } from '../../src/api/dimse/scp.js';

test('a full queue, a full data directory and an oversize instance are Refused: Out of Resources (A700); a bug is a Processing Failure; bad input Cannot Understand', () => {
  assert.deepEqual(
    (['E_QUEUE_FULL', 'E_STORAGE_FULL', 'E_PAYLOAD_TOO_LARGE', 'E_CONFLICT', 'E_FORBIDDEN', 'E_INTERNAL', 'E_MALFORMED'] as const).map(cStoreStatusFor),
    [0xa700, 0xa700, 0xa700, 0x0111, 0x0124, 0x0110, 0xc000],
  );
});
