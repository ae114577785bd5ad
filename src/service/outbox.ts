/**
 * The results outbox dispatcher. One loop per worker process: build the next result object
 * that is due (claimed with SKIP LOCKED, so processes share the work), else send the next
 * delivery that is due. A failed send is retried with exponential back-off (doubling from
 * retryDelayMs, capped, with a little jitter so many results to one restored PACS spread
 * out); after the last attempt it is failed with its reason. Every attempt is an audit row,
 * written in the transaction that records its outcome.
 */
import type { DataSource } from 'typeorm';
import { appendAuditInTransaction } from '../db/audit.js';
import { claimDelivery, claimUnbuilt, markBuildFailed, markBuildFailedIn, settleDelivery, type ClaimedDelivery } from '../db/results.js';
import { httpStatusFor, isCxrError } from '../errors.js';
import type { Logger } from './log.js';
import { sha256Hex, type ObjectStore } from './object-store.js';
import { sendResult } from './result-senders.js';
import { buildResultBytes, destinationKey, storeBuilt, type ResultsSettings } from './results.js';
import { Sleepers } from './sleepers.js';

export const OUTBOX_ACTOR = 'system:outbox';
/** A claimed send is hidden from other processes this long: longer than any send may take. */
const SEND_TIMEOUT_MS = 60_000;
const LEASE_MS = 2 * SEND_TIMEOUT_MS;
const BUILD_ATTEMPTS = 3;

export interface OutboxOptions {
  ds: DataSource;
  store: ObjectStore;
  settings: ResultsSettings;
  log: Logger;
  pollMs?: number;
  /**
   * true while this process has studies to score: objects that no destination waits for (only
   * served by DICOMweb) are then left for later, since building one (a film read, hashed,
   * decoded, drawn over and encoded) costs a good part of what scoring a study does.
   */
  busy?: () => boolean;
  /** counts per outcome for /metrics */
  onAttempt?: (outcome: 'delivered' | 'retry' | 'failed') => void;
}

/** Delay before retry number `attempt` (1 = the first retry). */
export function backoffMs(s: Pick<ResultsSettings, 'retryDelayMs' | 'maxRetryDelayMs'>, attempt: number, jitter = Math.random()): number {
  const base = Math.min(s.maxRetryDelayMs, s.retryDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + 0.1 * jitter));
}

/**
 * Loops per process: while one waits out a destination that does not answer (up to the send
 * timeout), the other keeps building and sending to the rest.
 */
const LOOPS = 2;

/** Why a build attempt failed, and what becomes of the object: retried after retryInMs, or given up (final). */
interface BuildFailure {
  code: string;
  message: string;
  final: boolean;
  retryInMs: number;
}

export class ResultsOutbox {
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly sleepers = new Sleepers();

  constructor(private readonly o: OutboxOptions) {}

  start(): void {
    if (this.loops.length > 0) return;
    for (let i = 0; i < LOOPS; i++) this.loops.push(this.run());
  }

  /** Looks for work now (a prediction was just recorded in this process). */
  poke(): void {
    this.sleepers.wakeAll();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.poke();
    await Promise.all(this.loops);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let worked = false;
      try {
        // with no destination and scoring busy there is nothing to do now: not even a query
        if (this.o.settings.destinations.length === 0 && this.o.busy?.()) worked = false;
        else worked = (await this.buildNext()) || (await this.sendNext());
      } catch (e) {
        this.o.log.warn('results outbox step failed', { error: String((e as Error)?.message ?? e) });
      }
      if (!worked && !this.stopping) await this.sleepers.sleep(this.o.pollMs ?? 1000);
    }
  }

  /** Builds one due object; true when there was one. */
  async buildNext(): Promise<boolean> {
    let claimed: { id: string; attempts: number } | null = null;
    let failed: BuildFailure | null = null;
    let recorded = false;
    let found = false;
    const failure = (e: unknown, attempts: number): BuildFailure => {
      const code = isCxrError(e) ? e.code : 'E_INTERNAL';
      const message = String((e as Error)?.message ?? e);
      // what was wrong with the stored data stays wrong: give up at once; anything else may pass
      const final = attempts >= BUILD_ATTEMPTS || (isCxrError(e) && httpStatusFor(e.code) < 500);
      return { code, message, final, retryInMs: backoffMs(this.o.settings, attempts) };
    };
    try {
      found = await this.o.ds.transaction(async (m) => {
        const obj = await claimUnbuilt(m, this.o.busy?.() ?? false);
        if (!obj) return false;
        claimed = { id: obj.id, attempts: obj.buildAttempts + 1 };
        // a failed statement in storeBuilt must not abort the transaction the failure is recorded in
        await m.query('SAVEPOINT build');
        try {
          const built = await buildResultBytes(this.o.ds, this.o.store, obj);
          await storeBuilt(m, this.o.store, obj, built, sha256Hex(built.bytes));
        } catch (e) {
          failed = failure(e, claimed.attempts);
          await m.query('ROLLBACK TO SAVEPOINT build');
          // recorded while the object is still locked: another process polling now finds it
          // backing off, instead of claiming it again at once with a stale attempt count
          await markBuildFailedIn(m, obj.id, failed.code, failed.message, failed.final, failed.retryInMs);
          recorded = true;
        }
        return true;
      });
    } catch (e) {
      // the claiming transaction itself failed (its commit, or a statement that aborted it)
      if (!claimed) throw e;
      failed ??= failure(e, (claimed as { attempts: number }).attempts);
      recorded = false;
      found = true;
    }
    if (claimed && failed) {
      const f: BuildFailure = failed;
      this.o.log.warn('building a result object failed', { objectId: (claimed as { id: string }).id, code: f.code, error: f.message, final: f.final });
      if (!recorded) await markBuildFailed(this.o.ds, (claimed as { id: string }).id, f.code, f.message, f.final, f.retryInMs);
    }
    return found;
  }

  /** Sends one due delivery; true when there was one. */
  async sendNext(): Promise<boolean> {
    const d = await claimDelivery(this.o.ds, LEASE_MS);
    if (!d) return false;
    const dest = this.o.settings.destinations.find((x) => destinationKey(x) === d.destination);
    let outcome: { ok: true; detail: string } | { ok: false; code: string; message: string };
    if (!dest) {
      outcome = { ok: false, code: 'E_CONFIG', message: `destination ${d.destination} is no longer configured` };
    } else {
      try {
        const bytes = await this.o.store.get(d.object.sha256!);
        outcome = { ok: true, detail: await sendResult(dest, bytes, { callingAeTitle: this.o.settings.callingAeTitle, timeoutMs: SEND_TIMEOUT_MS }) };
      } catch (e) {
        outcome = { ok: false, code: isCxrError(e) ? e.code : 'E_INTERNAL', message: String((e as Error)?.message ?? e) };
      }
    }
    await this.record(d, outcome, !dest);
    return true;
  }

  private async record(
    d: ClaimedDelivery,
    outcome: { ok: true; detail: string } | { ok: false; code: string; message: string },
    final: boolean,
  ): Promise<void> {
    const last = final || d.attempts >= d.maxAttempts;
    const status = outcome.ok ? 'delivered' : last ? 'failed' : 'retry';
    const retryInMs = backoffMs(this.o.settings, d.attempts);
    await this.o.ds.transaction(async (m) => {
      if (outcome.ok) await settleDelivery(m, d.id, { status: 'delivered' });
      else if (last) await settleDelivery(m, d.id, { status: 'failed', code: outcome.code, message: outcome.message });
      else await settleDelivery(m, d.id, { status: 'pending', retryInMs, code: outcome.code, message: outcome.message });
      await appendAuditInTransaction(m, {
        actor: OUTBOX_ACTOR,
        role: null,
        action: 'result.send',
        studyId: d.object.sourceId,
        requestId: `delivery-${d.id}-${d.attempts}`,
        outcome: status,
        detail: {
          destination: d.destination,
          kind: d.object.kind,
          sopInstanceUid: d.object.sopInstanceUid,
          studyInstanceUid: d.object.studyInstanceUid,
          attempt: d.attempts,
          maxAttempts: d.maxAttempts,
          ...(outcome.ok ? { response: outcome.detail } : { code: outcome.code, error: outcome.message.slice(0, 300) }),
          ...(status === 'retry' ? { retryInMs } : {}),
        },
      });
    });
    this.o.onAttempt?.(status);
    const fields = { destination: d.destination, kind: d.object.kind, sopInstanceUid: d.object.sopInstanceUid, attempt: d.attempts };
    if (outcome.ok) this.o.log.info('result delivered', fields);
    else if (last) this.o.log.error('result delivery failed for good', { ...fields, code: outcome.code, error: outcome.message });
    else this.o.log.warn('result delivery failed; will retry', { ...fields, code: outcome.code, error: outcome.message, retryInMs });
  }
}
