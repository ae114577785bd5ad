/** Picks the object store CXR_STORE names. */
import type { DataSource } from 'typeorm';
import { FsObjectStore } from './fs-store.js';
import type { ObjectStore, StoreKind } from './object-store.js';
import { PgObjectStore } from './pg-store.js';

export function openObjectStore(kind: StoreKind, o: { dir: string; ds: DataSource }): ObjectStore {
  return kind === 'pg' ? new PgObjectStore(o.ds) : new FsObjectStore(o.dir);
}
