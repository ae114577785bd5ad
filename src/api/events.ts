/**
 * Study events for the web app's live worklist. One LISTEN connection per process receives what
 * PostgreSQL's triggers announce (received, scored, failed, reviewed: see the web-sessions
 * migration), whichever process or worker made the change, and fans it out to the open
 * server-sent-event streams. The connection is opened by the first subscriber and reopened after
 * a database failure.
 */
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import type { Logger } from '../service/log.js';

export interface StudyEvent {
  event: 'received' | 'scored' | 'failed' | 'reviewed';
  studyId: string;
}

type Listener = (e: StudyEvent) => void;

interface PgNotifyClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', fn: (m: { channel: string; payload?: string }) => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  removeAllListeners(): void;
}

export const STUDY_EVENTS_CHANNEL = 'cxr_study_events';

export class StudyEvents {
  private readonly listeners = new Set<Listener>();
  /** how to end each open stream when the process shuts down (server.close() waits for them otherwise) */
  private readonly enders = new Map<Listener, () => void>();
  private client: { c: PgNotifyClient; release: (e?: unknown) => void } | null = null;
  private opening: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly ds: DataSource,
    private readonly log: Logger,
  ) {}

  async subscribe(fn: Listener, end: () => void): Promise<() => void> {
    this.listeners.add(fn);
    this.enders.set(fn, end);
    await this.open();
    return () => {
      this.listeners.delete(fn);
      this.enders.delete(fn);
    };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  private async open(): Promise<void> {
    if (this.client || this.closed) return;
    this.opening ??= (async () => {
      const [c, release] = (await (this.ds.driver as PostgresDriver).obtainMasterConnection()) as [PgNotifyClient, (e?: unknown) => void];
      c.on('notification', (m) => {
        if (m.channel !== STUDY_EVENTS_CHANNEL || !m.payload) return;
        let e: StudyEvent;
        try {
          e = JSON.parse(m.payload) as StudyEvent;
        } catch {
          return;
        }
        for (const l of this.listeners) l(e);
      });
      c.on('error', (err) => {
        this.log.warn('study event listener lost its connection; reopening on the next subscriber or in 5 s', { error: String(err) });
        this.drop(err);
        setTimeout(() => {
          if (this.listeners.size > 0) this.open().catch(() => {});
        }, 5000).unref();
      });
      await c.query(`LISTEN ${STUDY_EVENTS_CHANNEL}`);
      this.client = { c, release };
    })().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private drop(err?: unknown): void {
    const h = this.client;
    this.client = null;
    if (!h) return;
    h.c.removeAllListeners();
    // a client that failed goes back to the pool as broken, so the pool replaces it
    h.release(err ?? undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const end of this.enders.values()) end();
    this.enders.clear();
    this.listeners.clear();
    if (this.opening) await this.opening.catch(() => {});
    const h = this.client;
    if (h) {
      try {
        await h.c.query(`UNLISTEN ${STUDY_EVENTS_CHANNEL}`);
      } catch {
        // the connection is going back to the pool anyway
      }
      this.drop();
    }
  }
}
