import type { Command } from 'commander';
import { loadConfig } from '../../app/config.js';
import { openServiceDatabase } from '../../app/database.js';
import { openServiceEngine } from '../../app/engine.js';
import { startWorkerHttp, type WorkerHttp } from '../../app/worker-http.js';
import { createMetrics } from '../../api/metrics.js';
import { CxrError } from '../../errors.js';
import { jsonLogger } from '../../service/log.js';
import { manifestReader } from '../../service/model-activation.js';
import { startRuntime } from '../../service/runtime.js';
import type { StudyOutcome } from '../../service/triage.js';
import { action, parseInteger } from '../run.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description(
      'score studies from the job queue in PostgreSQL, without serving HTTP: run as many as the machines allow next to ' +
        '`cxr-triage serve --workers 0` (same DATABASE_URL, same CXR_STORE and store directory or volume). ' +
        'Configuration by environment as for serve: DATABASE_URL, CXR_DATA_DIR, CXR_HMAC_KEY, CXR_MODELS_DIR, CXR_STORE, CXR_DICOM_DIR, ' +
        'CXR_INFER_THREADS, CXR_INFER_CONCURRENCY, CXR_TTA, CXR_JOB_RETRIES, CXR_JOB_RETRY_DELAY_S, CXR_JOB_TIMEOUT_S, CXR_JOB_MAINTENANCE_S, CXR_JOB_POLL_MS, ' +
        'and the results destinations: CXR_RESULTS_STOW_URL, CXR_RESULTS_STOW_AUTH, CXR_RESULTS_AE (AET@host:port), CXR_RESULTS_ATTEMPTS, CXR_RESULTS_RETRY_DELAY_S, CXR_RESULTS_MAX_RETRY_DELAY_S, CXR_DIMSE_AET (calling AE). ' +
        "CXR_WORKER_PORT (with HOST): answer /healthz, /readyz and /metrics (this process's counters) there, for probes and Prometheus",
    )
    .option('--concurrency <n>', 'jobs scored at once in this process (overrides CXR_INFER_CONCURRENCY; default 1)')
    .option('--progress-s <n>', 'seconds between progress lines', '30')
    .action(
      action(async (opts: { concurrency?: string; progressS: string }) => {
        const env = { ...process.env };
        if (opts.concurrency !== undefined) env.CXR_INFER_CONCURRENCY = String(parseInteger('--concurrency', opts.concurrency, 1));
        const progressMs = parseInteger('--progress-s', opts.progressS, 1) * 1000;
        const workerPort = env.CXR_WORKER_PORT ? parseInteger('CXR_WORKER_PORT', env.CXR_WORKER_PORT, 1) : null;
        if (workerPort !== null && workerPort > 65535) throw new CxrError('E_CONFIG', `CXR_WORKER_PORT must be a port number, got ${workerPort}`);
        const cfg = loadConfig(env);
        const metrics = createMetrics();
        const log = jsonLogger();
        const db = await openServiceDatabase(cfg);
        const { engine, load } = await openServiceEngine(db, cfg, log, cfg.inferConcurrency);
        const counts: Partial<Record<StudyOutcome | 'shadow_scored' | 'shadow_failed', number>> = {};
        let runtime;
        try {
          runtime = await startRuntime({
            ds: db.ds,
            engine,
            settings: { ...cfg, workers: cfg.inferConcurrency },
            log,
            hooks: {
              ...metrics.hooks,
              study: (o) => {
                counts[o] = (counts[o] ?? 0) + 1;
                metrics.hooks.study?.(o);
              },
              shadow: (o) => {
                counts[`shadow_${o}`] = (counts[`shadow_${o}`] ?? 0) + 1;
                metrics.hooks.shadow?.(o);
              },
            },
            readManifest: manifestReader(cfg.modelsDir),
            modelsDir: cfg.modelsDir,
            // the registry's active versions and shadow candidates load from the same folder
            loadEngine: load,
          });
        } catch (e) {
          await engine.close();
          await db.close();
          throw e;
        }
        let http: WorkerHttp | null = null;
        if (workerPort !== null) {
          const started = runtime;
          http = await startWorkerHttp({
            port: workerPort,
            host: cfg.host,
            registry: metrics.registry,
            ready: async () =>
              started.service.engineAvailable &&
              (await db.ds.query('SELECT 1').then(
                () => true,
                () => false,
              )),
          });
        }
        const m = engine.models;
        log.info('worker ready', {
          ...(http ? { health: `http://${cfg.host}:${http.port}/healthz`, metrics: `http://${cfg.host}:${http.port}/metrics` } : {}),
          pid: process.pid,
          concurrency: cfg.inferConcurrency,
          store: cfg.store,
          database: db.where,
          segmenter: `${m.segmenter.name}@${m.segmenter.version}`,
          classifier: `${m.classifier.name}@${m.classifier.version}`,
          queuedAtStart: runtime.recovered,
        });
        const progress = setInterval(() => {
          runtime.jobs
            .counts()
            .then((c) => log.info('worker progress', { ...counts, queueWaiting: c.waiting, queueActive: c.active, deadLetter: c.deadLetter }))
            .catch(() => log.info('worker progress', { ...counts }));
        }, progressMs);
        progress.unref();

        let stopping = false;
        const shutdown = async (signal: string) => {
          if (stopping) process.exit(130);
          stopping = true;
          clearInterval(progress);
          log.info(`${signal}: stopping after the jobs running now; waiting jobs stay queued for other workers`);
          await http?.close();
          await runtime.close();
          // the engine serving now (a registry follow may have swapped the first one out) and the first
          await runtime.service.closeEngine();
          await engine.close();
          await db.close();
          process.exit(0);
        };
        process.on('SIGINT', () => void shutdown('SIGINT'));
        process.on('SIGTERM', () => void shutdown('SIGTERM'));
      }),
    );
}
