/**
 * Graceful stop of the HTTP side on SIGTERM/SIGINT, bounded in time. Every request already
 * on a connection gets an answer before the process exits: a client waiting with ?wait=true
 * gets its result if its study is scored within the drain time, or else 202 with the study's
 * location (the study is stored and stays queued for the next start or another instance).
 *
 *   1. stop listening (new connections are refused) and close idle keep-alive connections;
 *      every answer from now on says `Connection: close`
 *   2. stop taking work: waiters on studies not yet running are answered at once (202), the
 *      running inference goes on
 *   3. when it has not finished within the drain time, its waiters are answered too (202)
 *   4. wait (a few seconds at most) for those answers to be written, then close what is left
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface Drainable {
  /** stops taking work; resolves when running inference has finished */
  close(): Promise<void>;
  /** answers every client still waiting for a result (with the study as it stands) */
  releaseWaiters(): void;
}

export interface DrainOptions {
  server: Server;
  service: Drainable;
  /** longest wait for running inference before its waiters are answered 202 */
  drainMs: number;
  /** longest wait for the last answers to be written once every waiter was released */
  flushMs?: number;
  log?: (msg: string) => void;
}

export interface DrainResult {
  /** running inference finished within the drain time (the engine may be closed) */
  workFinished: boolean;
  /** connections still open after the flush time, closed by force */
  forced: number;
}

/** Tracks in-flight responses from the start, so that a drain can tell them to close their connection. */
export function trackResponses(server: Server): Set<ServerResponse> {
  const inFlight = new Set<ServerResponse>();
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
  });
  return inFlight;
}

export async function drainHttp(o: DrainOptions, inFlight: Set<ServerResponse>): Promise<DrainResult> {
  const log = o.log ?? (() => {});
  // 1. no new connections; answers on kept-alive ones close them (a client then reconnects elsewhere)
  for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
  o.server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    res.shouldKeepAlive = false;
  });
  let connectionsClosed = false;
  const allClosed = new Promise<void>((resolve) =>
    o.server.close(() => {
      connectionsClosed = true;
      resolve();
    }),
  );
  o.server.closeIdleConnections();
  log(`draining: ${inFlight.size} request(s) in flight, up to ${Math.round(o.drainMs / 1000)} s for running inference`);

  // 2 + 3. stop taking work; running inference gets the drain time
  let timer: NodeJS.Timeout | undefined;
  const workFinished = await Promise.race([
    o.service.close().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), o.drainMs);
    }),
  ]);
  clearTimeout(timer);
  o.service.releaseWaiters();
  if (!workFinished) log("drain time over: clients still waiting get 202 with their study's location");

  // 4. the released requests write their answers; then whatever is left is closed
  let flushTimer: NodeJS.Timeout | undefined;
  await Promise.race([allClosed, new Promise<void>((resolve) => (flushTimer = setTimeout(resolve, o.flushMs ?? 5000)))]);
  clearTimeout(flushTimer);
  let forced = 0;
  if (!connectionsClosed) {
    forced = inFlight.size;
    o.server.closeAllConnections();
  }
  return { workFinished, forced };
}
