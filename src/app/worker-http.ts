/**
 * What a `cxr-triage worker` answers on CXR_WORKER_PORT: liveness, readiness and its own
 * Prometheus metrics. A worker serves no API, but an orchestrator probes it and Prometheus
 * scrapes its per-process counters (studies scored and failed, inference time, shadow results),
 * which no API process can report for it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface WorkerHttpOptions {
  port: number;
  host: string;
  registry: Registry;
  /** ready to take jobs: the database answers and an engine can score */
  ready(): Promise<boolean>;
}

export interface WorkerHttp {
  port: number;
  close(): Promise<void>;
}

export async function startWorkerHttp(o: WorkerHttpOptions): Promise<WorkerHttp> {
  const server: Server = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: { code: 'E_METHOD', message: 'GET only' } });
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      void o.ready().then(
        (ok) => json(ok ? 200 : 503, { status: ok ? 'ready' : 'not_ready' }),
        () => json(503, { status: 'not_ready' }),
      );
      return;
    }
    if (path === '/metrics') {
      void o.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': o.registry.contentType });
          res.end(text);
        },
        () => json(500, { error: { code: 'E_INTERNAL', message: 'metrics unavailable' } }),
      );
      return;
    }
    json(404, { error: { code: 'E_NOT_FOUND', message: 'a worker answers /healthz, /readyz and /metrics' } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
