/** Prometheus metrics, one registry per app so that several apps (tests) never share counters. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServiceHooks } from '../service/triage.js';

export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  requestSeconds: Histogram<'method' | 'route'>;
  refusals: Counter<'code' | 'route'>;
  studies: Counter<'outcome'>;
  queueDepth: Gauge;
  queueRunning: Gauge;
  inferenceSeconds: Histogram;
  /** DIMSE operations: associate, echo, store; outcome ok or the refusal code */
  dimse: Counter<'operation' | 'outcome'>;
  hooks: ServiceHooks;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'cxr_' });
  const requests = new Counter({
    name: 'cxr_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const requestSeconds = new Histogram({
    name: 'cxr_http_request_duration_seconds',
    help: 'HTTP request latency by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'cxr_http_refusals_total',
    help: 'Refused HTTP requests (status >= 400) by error code and route template',
    labelNames: ['code', 'route'] as const,
    registers: [registry],
  });
  const studies = new Counter({
    name: 'cxr_studies_total',
    help: 'Studies by outcome: accepted, duplicate, rejected (at ingestion), scored, failed (at inference)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const o of ['accepted', 'duplicate', 'rejected', 'scored', 'failed']) studies.inc({ outcome: o }, 0);
  const queueDepth = new Gauge({ name: 'cxr_inference_queue_depth', help: 'Studies waiting for inference', registers: [registry] });
  const queueRunning = new Gauge({ name: 'cxr_inference_running', help: 'Studies being scored now', registers: [registry] });
  const inferenceSeconds = new Histogram({
    name: 'cxr_inference_duration_seconds',
    help: 'Time to score one study (decode, segment, classify with TTA, CAM)',
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
    registers: [registry],
  });
  const dimse = new Counter({
    name: 'cxr_dimse_operations_total',
    help: 'DIMSE operations (associate, echo, store) by outcome: ok, or the stable code of the refusal',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  return {
    registry,
    dimse,
    requests,
    requestSeconds,
    refusals,
    studies,
    queueDepth,
    queueRunning,
    inferenceSeconds,
    hooks: {
      study: (outcome) => studies.inc({ outcome }),
      inferenceSeconds: (s) => inferenceSeconds.observe(s),
      queue: (waiting, running) => {
        queueDepth.set(waiting);
        queueRunning.set(running);
      },
    },
  };
}
