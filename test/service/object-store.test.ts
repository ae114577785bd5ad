/** Reading stored objects back: only the bytes asked for where the store can, whole objects as before, and why a read failed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCxrError } from '../../src/errors.js';
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

test('a file-store object that is not there is E_NOT_FOUND; one that cannot be read for another reason is E_INTERNAL, so its job is retried, not failed for good', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cxr-read-fail-'));
  try {
    const store = new FsObjectStore(root);
    const code = async (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: unknown) => (isCxrError(e) ? `${e.code}: ${e.message}` : String(e)),
      );
    const absent = 'ab'.repeat(32);
    assert.match(await code(store.get(absent)), /^E_NOT_FOUND: stored object abababababab… is missing: ENOENT$/);
    assert.match(await code(readHead(store, absent, 10)), /^E_NOT_FOUND: .*missing: ENOENT$/);
    // a symbolic link to itself: reading it fails with ELOOP, an error that is not "no such file"
    const looped = 'cd'.repeat(32);
    await mkdir(join(root, 'cd'), { recursive: true });
    await symlink(store.pathFor(looped), store.pathFor(looped));
    assert.match(await code(store.get(looped)), /^E_INTERNAL: cannot read stored object cdcdcdcdcdcd…: ELOOP$/);
    assert.match(await code(readHead(store, looped, 10)), /^E_INTERNAL: cannot read stored object cdcdcdcdcdcd…: ELOOP$/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
