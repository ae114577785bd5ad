/**
 * Composition of the running service from a migrated database and a loaded engine: the
 * runtime (store, job queue, triage service and its in-process workers), metrics and the
 * express app. `serve`, the tests and the load check all build the service through here.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { DataSource } from 'typeorm';
import type { TriageEngine } from '../inference/types.js';
import type { Logger } from '../service/log.js';
import { StorageMonitor } from '../service/storage.js';
import { activateModelVersion, manifestReader, type EngineLoader } from '../service/model-activation.js';
import { startRuntime, type Runtime, type RuntimeSettings } from '../service/runtime.js';
import type { TriageService } from '../service/triage.js';
import { DEFAULT_SESSION_IDLE_S, DEFAULT_SESSION_MAX_S } from '../service/web-sessions.js';
import { createApp } from '../api/app.js';
import { StudyEvents } from '../api/events.js';
import type { ServiceConfig } from './config.js';
import { createMetrics, type ServiceMetrics } from '../api/metrics.js';
import { registerModelMetrics } from '../api/model-metrics.js';
import { DEFAULT_AUTH_MAX_FAILURES, DEFAULT_AUTH_WINDOW_S, LoginThrottle } from '../service/login-throttle.js';

export type ServiceSettings = Pick<ServiceConfig, 'jwt' | 'hmacKey' | 'dicomDir' | 'maxBodyBytes' | 'queueSize' | 'inferConcurrency' | 'waitTimeoutMs'> &
  Partial<
    Pick<ServiceConfig, 'authMaxFailures' | 'authWindowMs' | 'store' | 'jobs' | 'storeGcGraceMs' | 'sessionIdleMs' | 'sessionMaxMs' | 'sitePrevalence'>
  > & {
    /** AI result objects and their destinations (null: none made, for tests that count every decode) */
    results?: ServiceConfig['results'] | null;
    modelsDir?: string;
    /** in-process scoring workers (default inferConcurrency; 0: API only) */
    workers?: number;
    jobPollMs?: number;
    /** the results outbox polls this often when idle (tests shorten it) */
    outboxPollMs?: number;
    /** how often a full data directory is checked for room again (tests shorten it) */
    storageProbeMs?: number;
  };

export interface ServiceParts {
  app: Express;
  service: TriageService;
  metrics: ServiceMetrics;
  /** whether the data directory has room (readiness, 507 refusals) */
  storage: StorageMonitor;
  /** studies found accepted without a live job at start and queued */
  recovered: number;
  /** stops taking work and lets running inference finish (the database stays open; waiting jobs stay in it) */
  close(): Promise<void>;
  /** answers every ?wait=true client now, with its study as it stands (shutdown) */
  releaseWaiters(): void;
}

export interface BuildOptions {
  ds: DataSource;
  engine: TriageEngine;
  settings: ServiceSettings;
  log: Logger;
  /** loads an engine from the models directory as it stands (or given version folders); enables model activation, following the registry and shadow scoring */
  loadEngine?: EngineLoader;
  /** process metrics (CPU, memory, event loop); off in tests */
  defaultMetrics?: boolean;
}

export async function buildService(o: BuildOptions): Promise<ServiceParts> {
  let runtime: Runtime | null = null;
  // Job gauges are read from PostgreSQL at scrape time: every process reports the shared queue.
  const metrics = createMetrics({ defaultMetrics: o.defaultMetrics, jobCounts: () => runtime?.jobs.counts() ?? Promise.resolve(null) });
  const settings: RuntimeSettings = { ...o.settings, workers: o.settings.workers ?? o.settings.inferConcurrency };
  runtime = await startRuntime({
    ds: o.ds,
    engine: o.engine,
    settings,
    log: o.log,
    hooks: metrics.hooks,
    readManifest: o.settings.modelsDir ? manifestReader(o.settings.modelsDir) : undefined,
    modelsDir: o.settings.modelsDir,
    loadEngine: o.loadEngine,
  });
  const { service, recovered } = runtime;
  const close = runtime.close;
  let ready = true;
  const storage = new StorageMonitor({ dir: o.settings.dicomDir, log: o.log, needBytes: o.settings.maxBodyBytes, probeEveryMs: o.settings.storageProbeMs });
  registerModelMetrics({ ds: o.ds, registry: metrics.registry, storageFull: () => storage.full, sitePrevalence: o.settings.sitePrevalence ?? null });
  const modelsDir = o.settings.modelsDir;
  const loadEngine = o.loadEngine;
  const events = new StudyEvents(o.ds, o.log);
  const app = createApp({
    events,
    config: o.settings,
    ds: o.ds,
    service,
    metrics,
    log: o.log,
    // not ready while no engine thread can score (they are being replaced)
    modelsReady: () => ready && service.engineAvailable,
    sessionPolicy: {
      idleMs: o.settings.sessionIdleMs ?? DEFAULT_SESSION_IDLE_S * 1000,
      absoluteMs: o.settings.sessionMaxMs ?? DEFAULT_SESSION_MAX_S * 1000,
    },
    storage,
    loginThrottle: new LoginThrottle(o.ds, {
      maxFailures: o.settings.authMaxFailures ?? DEFAULT_AUTH_MAX_FAILURES,
      windowMs: o.settings.authWindowMs ?? DEFAULT_AUTH_WINDOW_S * 1000,
    }),
    activateModel:
      modelsDir && loadEngine ? (name, version, by) => activateModelVersion({ ds: o.ds, modelsDir, service, loadEngine }, name, version, by) : undefined,
    modelsDir,
  });
  return {
    app,
    service,
    metrics,
    recovered,
    storage,
    releaseWaiters: () => service.releaseWaiters(),
    close: async () => {
      ready = false;
      await events.close();
      storage.close();
      await close();
    },
  };
}

/** Listens and resolves with the bound address (port 0 picks a free one). */
export function listen(app: Express, port: number, host: string): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({ server, url: `http://${h}:${a.port}` });
    });
    // Slow clients cannot hold a connection open forever; large uploads still get minutes.
    server.requestTimeout = 5 * 60_000;
    // Idle keep-alive outlives the usual 60 s of proxies and clients, so they (not we) close
    // idle connections — closing them here races a client's next request on the same socket.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
  });
}

/** Stops accepting connections, lets in-flight requests finish (up to graceMs), then closes the rest. */
export function closeServer(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
