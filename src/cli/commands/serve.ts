import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { loadConfig, type ServiceConfig } from '../../app/config.js';
import { openServiceDatabase } from '../../app/database.js';
import { openServiceEngine } from '../../app/engine.js';
import { startDimseServer, type DimseServer } from '../../api/dimse/scp.js';
import { buildService, closeServer, listen } from '../../app/server.js';
import { drainHttp, trackResponses } from '../../app/shutdown.js';
import { jsonLogger } from '../../service/log.js';
import { destinationKey } from '../../service/results.js';
import { action, parseInteger } from '../run.js';

/** The example study the start banner tells people to post (fixtures/ of this package). */
export function exampleStudy(root = join(import.meta.dirname, '..', '..', '..')): string | null {
  const candidates = [join(root, 'fixtures', 'example', 'chest.dcm'), join(root, 'fixtures', 'example-chest.dcm')];
  let found = candidates.find((c) => existsSync(c)) ?? null;
  if (!found) {
    const dir = join(root, 'fixtures', 'dicom');
    const files = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.dcm'))
          .sort()
      : [];
    const pick = files.find((f) => /chest|cxr|cr-|dx-/i.test(f)) ?? files[0];
    found = pick ? join(dir, pick) : null;
  }
  if (!found) return null;
  const rel = relative(process.cwd(), found);
  return rel.startsWith('..') ? found : rel;
}

function loud(lines: string[]): void {
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n${lines.map((l) => `!! ${l}`).join('\n')}\n${bar}\n\n`);
}

function banner(cfg: ServiceConfig, url: string, where: string, recovered: number, dimse: DimseServer | null): string {
  const example = exampleStudy();
  const dataEnv = cfg.dataDir === join(process.cwd(), '.cxr-data') ? '' : `CXR_DATA_DIR=${relative(process.cwd(), cfg.dataDir) || '.'} `;
  const lines = [
    `cxr-triage is listening on ${url}`,
    `  database: ${where}`,
    `  stored objects: ${cfg.store === 'pg' ? 'PostgreSQL (CXR_STORE=pg)' : cfg.dicomDir}`,
    `  scoring workers in this process: ${cfg.workers}${cfg.workers === 0 ? ' (API only: run `cxr-triage worker` against the same database)' : ''}`,
    recovered > 0 ? `  re-queued ${recovered} accepted but unscored studies` : null,
    dimse
      ? `  DIMSE Storage SCP: AE title ${dimse.aeTitle} on ${dimse.host}:${dimse.port} (callers: \`cxr-triage client add --role workstation --ae-title AET ...\`)`
      : `  DIMSE Storage SCP: off (CXR_DIMSE_PORT=0)`,
    `  AI results (SR + Secondary Capture) to PACS: ${
      cfg.results.destinations.length > 0
        ? cfg.results.destinations.map(destinationKey).join(', ')
        : 'made and served by DICOMweb, sent nowhere (CXR_RESULTS_STOW_URL, CXR_RESULTS_AE)'
    }`,
    ``,
    `Mint a token (same data directory / env as this server) and post the example study:`,
    `  TOKEN=$(${dataEnv}npx cxr-triage token --role workstation --sub ws-1)`,
    example
      ? `  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/dicom' --data-binary @${example} '${url}/v1/studies?wait=true'`
      : `  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/dicom' --data-binary @study.dcm '${url}/v1/studies?wait=true'`,
    `Read it back as a clinician:`,
    `  CLIN=$(${dataEnv}npx cxr-triage token --role clinician --sub dr-1); curl -s -H "Authorization: Bearer $CLIN" ${url}/v1/worklist`,
    `Web app for people: ${url}/app/   (create one: ${dataEnv}npx cxr-triage user add NAME --role clinician)`,
    `API description: ${url}/v1/openapi.json   health: ${url}/readyz   metrics: ${url}/metrics`,
  ];
  return `${lines.filter((l) => l !== null).join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'run the triage API on the shipped models; without DATABASE_URL an embedded PostgreSQL starts under CXR_DATA_DIR. ' +
        'Configuration by environment: PORT, HOST, DATABASE_URL, CXR_DATA_DIR, CXR_JWT_SECRET, CXR_HMAC_KEY, CXR_MODELS_DIR, ' +
        'CXR_MAX_BODY_MB, CXR_QUEUE_SIZE, CXR_INFER_THREADS, CXR_INFER_CONCURRENCY, CXR_TTA, CXR_WAIT_TIMEOUT_S, CXR_DRAIN_TIMEOUT_S, CXR_PG_PORT, CXR_TOKEN_TTL_S, ' +
        'CXR_DIMSE_AET, CXR_DIMSE_PORT, ' +
        'AI results to PACS: CXR_RESULTS_STOW_URL (STOW-RS URL), CXR_RESULTS_STOW_AUTH (Authorization header value), CXR_RESULTS_AE (AET@host:port, C-STORE), ' +
        'CXR_RESULTS_ATTEMPTS (default 8), CXR_RESULTS_RETRY_DELAY_S (first retry, doubling; default 10), CXR_RESULTS_MAX_RETRY_DELAY_S (default 1800), ' +
        'CXR_WORKERS, CXR_STORE (fs|pg), CXR_DICOM_DIR, CXR_JOB_RETRIES, CXR_JOB_RETRY_DELAY_S, CXR_JOB_TIMEOUT_S, CXR_JOB_MAINTENANCE_S, CXR_JOB_POLL_MS, CXR_STORE_GC_GRACE_S, ' +
        "CXR_SITE_PREVALENCE (the share of pneumonia the site expects, e.g. 0.15: the expected flag rate and drift on /metrics use it instead of the validation split's)",
    )
    .option('--workers <n>', 'scoring workers inside this process (overrides CXR_WORKERS; default 1; 0 = API only, scoring left to `cxr-triage worker`)')
    .option('--port <n>', 'listen port (overrides PORT)')
    .option('--host <addr>', 'listen address (overrides HOST; default 127.0.0.1)')
    .action(
      action(async (opts: { port?: string; host?: string; workers?: string }) => {
        const env = { ...process.env };
        if (opts.port !== undefined) env.PORT = String(parseInteger('--port', opts.port, 0));
        if (opts.host !== undefined) env.HOST = opts.host;
        if (opts.workers !== undefined) env.CXR_WORKERS = String(parseInteger('--workers', opts.workers, 0));
        const cfg = loadConfig(env);
        const log = jsonLogger();
        if (cfg.notices.length > 0) loud(['DEVELOPMENT KEYS IN USE', ...cfg.notices]);

        process.stderr.write(cfg.databaseUrl ? 'connecting to PostgreSQL…\n' : `starting embedded PostgreSQL on 127.0.0.1:${cfg.embeddedPgPort}…\n`);
        const db = await openServiceDatabase(cfg, { adoptOrphan: true });
        const { engine, load } = await openServiceEngine(db, cfg, log, cfg.workers, () => process.stderr.write(`loading models from ${cfg.modelsDir}…\n`));
        let parts;
        try {
          // checks the registry against the models folder before taking work (service/model-registry.ts)
          parts = await buildService({
            ds: db.ds,
            engine,
            settings: cfg,
            log,
            loadEngine: load,
            defaultMetrics: true,
          });
        } catch (e) {
          await engine.close();
          await db.close();
          throw e;
        }
        let server;
        let dimse: DimseServer | null = null;
        try {
          server = await listen(parts.app, cfg.port, cfg.host);
          if (cfg.dimse.port !== 0) {
            dimse = await startDimseServer({
              aeTitle: cfg.dimse.aeTitle,
              host: cfg.host,
              port: cfg.dimse.port,
              maxBytes: cfg.maxBodyBytes,
              ds: db.ds,
              service: parts.service,
              log,
              metrics: parts.metrics,
            });
          }
        } catch (e) {
          if (server) await closeServer(server.server);
          await parts.close();
          await engine.close();
          await db.close();
          throw e;
        }
        const inFlight = trackResponses(server.server);
        const m = parts.service.models;
        log.info('models loaded', { segmenter: `${m.segmenter.name}@${m.segmenter.version}`, classifier: `${m.classifier.name}@${m.classifier.version}` });

        let stopping = false;
        const shutdown = async (signal: string) => {
          if (stopping) {
            process.stderr.write(`${signal} again: exiting now\n`);
            process.exit(130);
          }
          stopping = true;
          process.stderr.write(
            `${signal}: stopping: no new connections; waiting clients get their result or 202 within ${cfg.drainTimeoutMs / 1000} s; waiting jobs stay in PostgreSQL for any worker…\n`,
          );
          const [drained] = await Promise.all([
            drainHttp({ server: server.server, service: parts, drainMs: cfg.drainTimeoutMs, log: (m) => process.stderr.write(`${m}\n`) }, inFlight),
            dimse?.close(),
          ]);
          // inference still running past the drain time: its job goes back to the queue now, for the next
          // start or another worker, instead of after its time limit; its result will not be recorded
          if (!drained.workFinished) await parts.service.releaseRunningJobs();
          // engine threads finish the study in hand (a fraction of a second) and release their sessions:
          // a process that exits while ONNX Runtime runs in a thread aborts instead of exiting 0
          await parts.service.closeEngine();
          await db.close();
          process.stderr.write('stopped\n');
          process.exit(0);
        };
        process.on('SIGINT', () => void shutdown('SIGINT'));
        process.on('SIGTERM', () => void shutdown('SIGTERM'));
        // the banner last: a supervisor (or test) that stops the server as soon as it reads it finds the handlers in place
        process.stdout.write(banner(cfg, server.url, db.where, parts.recovered, dimse));
      }),
    );
}
