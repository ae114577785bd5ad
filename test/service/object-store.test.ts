/** Reading the head of a stored object: only the bytes asked for where the store can, and whole objects as before. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsObjectStore } from '../../src/service/fs-store.js';
import { readHead } from '../../src/service/object-store.js';

test('readHead of a file-store object reads its first bytes only; read without a limit streams all of it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cxr-head-'));
  try {
    const store = new FsObjectStore(root);
    const bytes = randomBytes(3 * (1 << 20) + 17);
    const { sha256 } = await store.put(bytes);
    const head = await readHead(store, sha256, 64 * 1024);
    assert.equal(head.length, 64 * 1024);
    assert.ok(head.equals(bytes.subarray(0, 64 * 1024)));
    const small = await readHead(store, sha256, 10);
    assert.ok(small.equals(bytes.subarray(0, 10)));
    const pieces: Buffer[] = [];
    for await (const p of store.read(sha256)) pieces.push(p);
    assert.ok(Buffer.concat(pieces).equals(bytes));
    // asking for more than there is gives what there is
    const tiny = await store.put(Buffer.from('short'));
    assert.equal((await readHead(store, tiny.sha256, 64 * 1024)).toString(), 'short');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
