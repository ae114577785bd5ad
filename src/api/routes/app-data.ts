/**
 * What the web app reads beyond the machine API: the film for the viewer (16-bit codes, windowed
 * in the browser), the patient's prior studies, worklist counts, live study events, and the
 * auditor's charts. Same roles, same audit as every other route.
 */
import { dailyStats, priorStudies, probabilityHistograms, worklistCounts } from '../../db/stats.js';
import { findPrediction, findStudy } from '../../db/studies.js';
import { CxrError } from '../../errors.js';
import { filmCodes } from '../../service/stored-images.js';
import type { StudyEvent } from '../events.js';
import { Query, UUID_RE } from '../http.js';
import { json, ref } from '../openapi-types.js';
import { stillAuthenticated, type Ctx, type RouteDef } from '../route.js';

/** how often an open event stream checks that its session or token still admits it */
const STREAM_RECHECK_MS = 5000;

async function studyOf(c: Ctx) {
  const id = String(c.req.params.id ?? '');
  if (!UUID_RE.test(id)) throw new CxrError('E_NOT_FOUND', `no study ${id}`);
  c.studyId = id.toLowerCase();
  const study = await findStudy(c.deps.ds, c.studyId);
  if (!study) throw new CxrError('E_NOT_FOUND', `no study ${id}`);
  return study;
}

const notFound = { '404': { description: 'No such study', content: json(ref('Error')) } };

export const getFilm: RouteDef = {
  method: 'get',
  path: '/v1/studies/:id/film',
  studyParam: true,
  roles: ['clinician'],
  audit: 'study.image.read',
  doc: {
    summary: 'Read the film for the viewer',
    tags: ['studies'],
    description:
      'The modality values as little-endian 16-bit codes spanning [X-Film-Min, X-Film-Max], row-major, X-Film-Width by X-Film-Height; ' +
      'X-Film-Invert is 1 for MONOCHROME1; X-Film-Window-Center/Width carry the window the prediction was made with. The browser windows it.',
    responses: { '200': { description: 'Film codes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...notFound },
  },
  async handle(c) {
    const study = await studyOf(c);
    c.detail = { image: 'film' };
    const [film, prediction] = await Promise.all([c.deps.service.original(study).then(filmCodes), findPrediction(c.deps.ds, study.id)]);
    const w = (prediction?.report as { window?: { center: number | null; width: number | null } } | undefined)?.window;
    const headers: Record<string, string> = {
      'X-Film-Width': String(film.width),
      'X-Film-Height': String(film.height),
      'X-Film-Min': String(film.min),
      'X-Film-Max': String(film.max),
      'X-Film-Invert': film.invert ? '1' : '0',
    };
    if (w && w.center !== null && w.width !== null) {
      headers['X-Film-Window-Center'] = String(w.center);
      headers['X-Film-Window-Width'] = String(w.width);
    }
    return { status: 200, body: film.codes, type: 'application/octet-stream', headers };
  },
};

export const getPriors: RouteDef = {
  method: 'get',
  path: '/v1/studies/:id/priors',
  studyParam: true,
  roles: ['clinician'],
  audit: 'study.priors.read',
  doc: {
    summary: "Read the patient's previous studies",
    tags: ['studies'],
    description: 'Earlier studies with the same patient pseudonym, newest first.',
    responses: { '200': { description: 'Prior studies', content: json({ type: 'object' }) }, ...notFound },
  },
  async handle(c) {
    const study = await studyOf(c);
    const items = await priorStudies(c.deps.ds, study.id);
    c.detail = { studyIds: items.map((p) => p.studyId) };
    return { status: 200, json: { items: items.map((p) => ({ ...p, receivedAt: p.receivedAt.toISOString() })) } };
  },
};

export const getWorklistCounts: RouteDef = {
  method: 'get',
  path: '/v1/worklist/counts',
  roles: ['clinician'],
  doc: {
    summary: 'Count what is waiting',
    tags: ['worklist'],
    responses: { '200': { description: 'Counts', content: json({ type: 'object' }) } },
  },
  async handle(c) {
    return { status: 200, json: await worklistCounts(c.deps.ds) };
  },
};

export const getEvents: RouteDef = {
  method: 'get',
  path: '/v1/events',
  roles: ['clinician'],
  doc: {
    summary: 'Follow study events (server-sent events)',
    tags: ['worklist'],
    description: 'A text/event-stream of `study` events ({"event":"received|scored|failed|reviewed","studyId":...}) as they happen in any process.',
    responses: { '200': { description: 'Event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
  },
  async handle(c) {
    const events = c.deps.events;
    if (!events) throw new CxrError('E_NOT_FOUND', 'live events are not enabled on this instance');
    const res = c.res;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 3000\n\n');
    const send = (e: StudyEvent) => res.write(`event: study\ndata: ${JSON.stringify(e)}\n\n`);
    const unsubscribe = await events.subscribe(send, () => res.end());
    // a comment every 25 s keeps proxies from closing an idle stream
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    ping.unref();
    // the stream ends with its session (signed out, expired, the user disabled) or token: checked
    // when it opened, it would otherwise go on telling every study event to whoever held it
    const recheck = setInterval(() => {
      void stillAuthenticated(c, getEvents).then((ok) => {
        if (!ok) {
          end();
          res.end();
        }
      });
    }, STREAM_RECHECK_MS);
    recheck.unref();
    const end = () => {
      clearInterval(ping);
      clearInterval(recheck);
      unsubscribe();
    };
    c.req.on('close', end);
    res.on('error', end);
    return { status: 200, streamed: true };
  },
};

export const getDailyStats: RouteDef = {
  method: 'get',
  path: '/v1/stats/daily',
  roles: ['auditor'],
  audit: 'stats.read',
  doc: {
    summary: 'Daily volume, flag rate and agreement per model version',
    tags: ['audit'],
    query: [{ name: 'days', description: 'how many days back (1-366, default 30)', schema: { type: 'integer', minimum: 1, maximum: 366 } }],
    responses: { '200': { description: 'One row per day and classifier version', content: json({ type: 'object' }) } },
  },
  async handle(c) {
    const days = new Query(c.req.query).int('days', 30, 1, 366);
    return { status: 200, json: { items: await dailyStats(c.deps.ds, days) } };
  },
};

export const getProbabilityStats: RouteDef = {
  method: 'get',
  path: '/v1/stats/probabilities',
  roles: ['auditor'],
  audit: 'stats.read',
  doc: {
    summary: 'Probability distribution per model version',
    tags: ['audit'],
    responses: { '200': { description: 'Histograms (10 bins over [0,1])', content: json({ type: 'object' }) } },
  },
  async handle(c) {
    return { status: 200, json: { items: await probabilityHistograms(c.deps.ds) } };
  },
};

export const appDataRoutes = [getFilm, getPriors, getWorklistCounts, getEvents, getDailyStats, getProbabilityStats];
