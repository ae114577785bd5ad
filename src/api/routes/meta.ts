/** Liveness, readiness, metrics and the API description: unauthenticated, no patient data. */
import { json, ref } from '../openapi-types.js';
import type { RouteDef } from '../route.js';

export const healthz: RouteDef = {
  method: 'get',
  path: '/healthz',
  roles: 'public',
  doc: { summary: 'Liveness', tags: ['operations'], responses: { '200': { description: 'The process is up', content: json(ref('Health')) } } },
  async handle() {
    return { status: 200, json: { status: 'ok' } };
  },
};

export const readyz: RouteDef = {
  method: 'get',
  path: '/readyz',
  roles: 'public',
  doc: {
    summary: 'Readiness',
    tags: ['operations'],
    description: 'Ready when the database answers, the models are loaded and the data directory has room.',
    responses: {
      '200': { description: 'Ready', content: json(ref('Readiness')) },
      '503': { description: 'Not ready', content: json(ref('Readiness')) },
    },
  },
  async handle(c) {
    let database = 'ok';
    try {
      await c.deps.ds.query('SELECT 1');
    } catch {
      database = 'unavailable';
    }
    const models = c.deps.modelsReady() ? 'ok' : 'not_loaded';
    // while the data directory is full, a load balancer should send studies elsewhere
    const storage = c.deps.storage?.full ? 'full' : 'ok';
    const ready = database === 'ok' && models === 'ok' && storage === 'ok';
    return { status: ready ? 200 : 503, json: { status: ready ? 'ready' : 'not_ready', checks: { database, models, storage } } };
  },
};

export const metrics: RouteDef = {
  method: 'get',
  path: '/metrics',
  roles: 'public',
  doc: {
    summary: 'Prometheus metrics',
    tags: ['operations'],
    description: 'Request counts and latencies, studies by outcome, queue depth, inference time, process metrics.',
    responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },
  async handle(c) {
    const reg = c.deps.metrics.registry;
    return { status: 200, body: await reg.metrics(), type: reg.contentType };
  },
};

export const metaRoutes = [healthz, readyz, metrics];
