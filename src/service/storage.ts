/**
 * The data directory running out of room. A write that fails for lack of space (ENOSPC), a
 * quota (EDQUOT), or a file-size limit (EFBIG, e.g. RLIMIT_FSIZE), and PostgreSQL's own
 * disk_full (SQLSTATE 53100), are one condition with one code, E_STORAGE_FULL: the client is
 * told to come back later (507 with Retry-After), readiness reports it, and it is logged once
 * when it starts and once when it ends — not once per refused request. While it lasts, a
 * probe checks every few seconds whether room has come back (free space for the largest body
 * the service accepts, and a small write that really lands), so the service recovers by itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { CxrError, isCxrError } from '../errors.js';
import type { Logger } from './log.js';

const FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);
/** PostgreSQL: disk_full */
const PG_DISK_FULL = '53100';

/** seconds a refused client is asked to wait */
export const STORAGE_RETRY_AFTER_S = 30;

/** True for an error that means "no room to write", whatever layer it comes from. */
export function isStorageFullError(e: unknown): boolean {
  if (isCxrError(e)) return e.code === 'E_STORAGE_FULL';
  const err = e as { code?: unknown; driverError?: { code?: unknown } } | null;
  const code = err?.code ?? err?.driverError?.code;
  return typeof code === 'string' && (FULL_ERRNOS.has(code) || code === PG_DISK_FULL);
}

export function storageFullError(what: string): CxrError {
  return new CxrError('E_STORAGE_FULL', `storage is full: ${what}; retry later`, { retryAfterSeconds: STORAGE_RETRY_AFTER_S });
}

export interface StorageMonitorOptions {
  /** the directory whose file system is probed (where originals are stored) */
  dir: string;
  log: Logger;
  /** free bytes needed before the service calls itself writable again (the largest accepted body) */
  needBytes: number;
  /** how often the probe runs while storage is full */
  probeEveryMs?: number;
  /** called on every change of state (metrics) */
  onChange?: (full: boolean) => void;
}

export class StorageMonitor {
  private isFull = false;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;

  constructor(private readonly o: StorageMonitorOptions) {}

  get full(): boolean {
    return this.isFull;
  }

  /** A write failed for lack of room (`e` says how): the service is full until the probe finds room. */
  noteFull(e: unknown): void {
    if (this.isFull || this.closed) return;
    this.isFull = true;
    this.o.log.error('storage full: refusing new studies with 507 E_STORAGE_FULL until room comes back', {
      dir: this.o.dir,
      cause: String((e as Error)?.message ?? e).slice(0, 300),
    });
    this.o.onChange?.(true);
    this.timer = setInterval(() => void this.probe(), this.o.probeEveryMs ?? 2000);
    this.timer.unref();
  }

  /** One check for room; leaves the full state when there is. Exposed for tests and for readiness. */
  async probe(): Promise<boolean> {
    if (!this.isFull || this.probing) return !this.isFull;
    this.probing = true;
    try {
      if (!(await this.hasRoom())) return false;
      this.isFull = false;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      this.o.log.info('storage available again: accepting studies', { dir: this.o.dir });
      this.o.onChange?.(false);
      return true;
    } finally {
      this.probing = false;
    }
  }

  private async hasRoom(): Promise<boolean> {
    try {
      await mkdir(this.o.dir, { recursive: true });
      const s = await statfs(this.o.dir);
      if (s.bavail * s.bsize < this.o.needBytes) return false;
      // free blocks are not the whole story (quotas, file-size limits, a read-only remount): write for real
      const path = join(this.o.dir, `.probe-${randomBytes(6).toString('hex')}.tmp`);
      try {
        const fh = await open(path, 'wx', 0o600);
        try {
          await fh.writeFile(Buffer.alloc(64 * 1024));
          await fh.sync();
        } finally {
          await fh.close();
        }
      } finally {
        await rm(path, { force: true });
      }
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
