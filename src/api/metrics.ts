/** Prometheus metrics, one registry per app so that several apps (tests) never share counters. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobCounts } from '../service/jobs.js';
import type { ServiceHooks, StudyOutcome } from '../service/triage.js';

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

export interface MetricsOptions {
  /** process metrics (CPU, memory, event loop) */
  defaultMetrics?: boolean;
  /** the shared job queue's counts, read at scrape time (null: not known yet) */
  jobCounts?: () => Promise<JobCounts | null>;
}

export function createMetrics(opts: MetricsOptions = {}): ServiceMetrics {
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
    help:
      'Studies by outcome in this process: accepted, duplicate, rejected (at ingestion), scored, failed (unreadable at inference), ' +
      'retried (a job attempt after a failed one), dead_letter (gave up after every retry)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const outcomes: StudyOutcome[] = ['accepted', 'duplicate', 'rejected', 'scored', 'failed', 'retried', 'dead_letter'];
  for (const o of outcomes) studies.inc({ outcome: o }, 0);
  // One read of the job table per scrape feeds every job gauge.
  let pending: Promise<JobCounts | null> | null = null;
  const counts = async (): Promise<JobCounts | null> => {
    pending ??= (opts.jobCounts?.() ?? Promise.resolve(null)).catch(() => null).finally(() => setTimeout(() => (pending = null), 100));
    return pending;
  };
  const jobGauge = (name: string, help: string, pick: (c: JobCounts) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const c = await counts();
        if (c) this.set(pick(c));
      },
    });
  const queueDepth = jobGauge(
    'cxr_inference_queue_depth',
    'Scoring jobs waiting to run, in the queue every process shares (includes retrying)',
    (c) => c.waiting,
  );
  jobGauge('cxr_jobs_retrying', 'Scoring jobs waiting out a back-off delay after a failed attempt', (c) => c.retrying);
  jobGauge('cxr_jobs_active', 'Scoring jobs being run by some worker now', (c) => c.active);
  jobGauge('cxr_jobs_dead', 'Scoring jobs that ran out of attempts (their studies are failed with error E_JOB_DEAD)', (c) => c.deadLetter);
  jobGauge('cxr_jobs_oldest_age_seconds', 'Age of the oldest scoring job still waiting to run', (c) => c.oldestWaitingSeconds);
  const queueRunning = new Gauge({ name: 'cxr_inference_running', help: 'Studies being scored now by this process', registers: [registry] });
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
  const resultSends = new Counter({
    name: 'cxr_result_sends_total',
    help: 'Attempts to send an AI result object (SR, Secondary Capture) to a PACS, by outcome: delivered, retry, failed',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const shadow = new Counter({
    name: 'cxr_shadow_results_total',
    help: 'Sampled studies a shadow candidate scored (outcome ok) or failed to score (failed: logged; the study keeps its result), by this process',
    labelNames: ['outcome'] as const,
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
      running: (n) => queueRunning.set(n),
      resultSend: (outcome) => resultSends.inc({ outcome }),
      shadow: (outcome) => shadow.inc({ outcome: outcome === 'scored' ? 'ok' : 'failed' }),
    },
  };
}
