/**
 * Service configuration from the environment, validated at start: every problem is reported
 * at once, with the variable's name and what it must look like.
 */
import { DEFAULT_SESSION_IDLE_S, DEFAULT_SESSION_MAX_S } from '../service/web-sessions.js';
import { resolve } from 'node:path';
import { CxrError } from '../errors.js';
import { DEFAULT_JOB_SETTINGS, type JobSettings } from '../service/jobs.js';
import { STORE_KINDS, type StoreKind } from '../service/object-store.js';
import { loadOrCreateDevSecret, type LoadedSecret } from './keys.js';
import { DEFAULT_AUTH_MAX_FAILURES, DEFAULT_AUTH_WINDOW_S } from '../service/login-throttle.js';
import type { JwtConfig } from '../api/tokens.js';
import { DEFAULT_RESULTS_SETTINGS, type ResultDestination, type ResultsSettings } from '../service/results.js';

export interface ServiceConfig {
  host: string;
  port: number;
  /** null: start embedded PostgreSQL under dataDir */
  databaseUrl: string | null;
  dataDir: string;
  dicomDir: string;
  modelsDir: string;
  embeddedPgPort: number;
  jwt: JwtConfig;
  hmacKey: Buffer;
  maxBodyBytes: number;
  queueSize: number;
  /** scoring jobs one worker process runs at once (CXR_INFER_CONCURRENCY) */
  inferConcurrency: number;
  /** in-process scoring workers of `serve` (CXR_WORKERS, or --workers; default inferConcurrency; 0: API only) */
  workers: number;
  /** where originals and derived objects live: a directory (fs) or PostgreSQL (pg) */
  store: StoreKind;
  jobs: JobSettings;
  /** unreferenced stored objects older than this are garbage-collected */
  storeGcGraceMs: number;
  jobPollMs: number;
  inferThreads: number | null;
  tta: number | null;
  waitTimeoutMs: number;
  /** on SIGTERM, longest wait for running inference before waiting clients get 202 */
  drainTimeoutMs: number;
  /** failed token requests per name or address within authWindowMs before it is locked (0: no limit) */
  authMaxFailures: number;
  authWindowMs: number;
  /** people's web sessions: signed out after this long without a request, and this long after sign-in whatever happens */
  sessionIdleMs: number;
  sessionMaxMs: number;
  /** DIMSE Storage SCP: our AE title, and its port on `host` (0: off) */
  dimse: DimseConfig;
  /** AI result objects: where they are sent (CXR_RESULTS_STOW_URL, CXR_RESULTS_AE) and the retry policy */
  results: ResultsSettings;
  /** the share of pneumonia the site expects among its studies (CXR_SITE_PREVALENCE): what the expected flag rate and drift compare against; null: the validation split's */
  sitePrevalence: number | null;
  /** loud messages the server prints at start (generated development keys) */
  notices: string[];
}

export interface DimseConfig {
  aeTitle: string;
  port: number;
}

type Env = Record<string, string | undefined>;

/** PS3.5 AE title: 1-16 characters, no backslash or control characters, not only spaces. */
const AE_TITLE = /^[\x21-\x5b\x5d-\x7e]([\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$/;

/** `AET@host:port` (CXR_RESULTS_AE), or why not. */
export function parseAeAddress(raw: string): { aeTitle: string; host: string; port: number } | string {
  const m = /^(.+)@([0-9A-Za-z.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(raw.trim());
  if (!m) return `must be AET@host:port, e.g. ORTHANC@pacs.example.org:4242 (got '${raw}')`;
  const port = Number(m[3]);
  if (!AE_TITLE.test(m[1])) return `has an AE title '${m[1]}' that is not 1-16 characters without backslash`;
  if (port < 1 || port > 65535) return `has port ${m[3]}, not 1-65535`;
  return { aeTitle: m[1], host: m[2].replace(/^\[|\]$/g, ''), port };
}

function resultDestinations(env: Env, list: string[]): ResultDestination[] {
  const out: ResultDestination[] = [];
  const url = env.CXR_RESULTS_STOW_URL?.trim();
  const auth = env.CXR_RESULTS_STOW_AUTH?.trim() || null;
  if (url) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(url).protocol);
    } catch {
      ok = false;
    }
    if (!ok) list.push(`CXR_RESULTS_STOW_URL must be an http:// or https:// STOW-RS URL, e.g. http://orthanc:8042/dicom-web/studies (got '${url}')`);
    else out.push({ kind: 'stow', url, auth });
  } else if (auth) {
    list.push('CXR_RESULTS_STOW_AUTH is set but CXR_RESULTS_STOW_URL is not');
  }
  const ae = env.CXR_RESULTS_AE?.trim();
  if (ae) {
    const parsed = parseAeAddress(ae);
    if (typeof parsed === 'string') list.push(`CXR_RESULTS_AE ${parsed}`);
    else out.push({ kind: 'dimse', ...parsed });
  }
  return out;
}

class Problems {
  readonly list: string[] = [];
  int(env: Env, name: string, def: number, min: number, max: number): number {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.list.push(`${name} must be an integer from ${min} to ${max} (got '${raw}')`);
      return def;
    }
    return n;
  }
  /** a share strictly between 0 and 1, or null when unset */
  optionalShare(env: Env, name: string): number | null {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return null;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || n >= 1) {
      this.list.push(`${name} must be a share between 0 and 1, such as 0.15 (got '${raw}')`);
      return null;
    }
    return n;
  }
  optionalInt(env: Env, name: string, min: number, max: number): number | null {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return null;
    return this.int(env, name, min, min, max);
  }
  text(env: Env, name: string, def: string, pattern?: RegExp, shape?: string): string {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return def;
    if (pattern && !pattern.test(raw)) this.list.push(`${name} must be ${shape} (got '${raw}')`);
    return raw;
  }
}

function secret(env: Env, name: string, dataDir: string, file: string, problems: Problems, notices: string[], what: string, consequence: string): Buffer {
  const raw = env[name];
  if (raw !== undefined && raw !== '') {
    if (raw.length < 32) problems.list.push(`${name} must be at least 32 characters (got ${raw.length})`);
    return Buffer.from(raw, 'utf8');
  }
  let loaded: LoadedSecret;
  try {
    loaded = loadOrCreateDevSecret(dataDir, file);
  } catch (e) {
    problems.list.push(`${name} is not set and ${(e as Error).message}`);
    return Buffer.alloc(0);
  }
  notices.push(
    `${name} is not set: using a ${loaded.source === 'generated' ? 'newly generated' : 'generated'} development ${what} from ${loaded.path}. ` +
      `Set ${name} (32+ characters) for production; ${consequence}`,
  );
  return loaded.value;
}

export function loadConfig(env: Env = process.env): ServiceConfig {
  const p = new Problems();
  const notices: string[] = [];
  const dataDir = resolve(p.text(env, 'CXR_DATA_DIR', './.cxr-data'));
  const databaseUrl = env.DATABASE_URL?.trim() ? env.DATABASE_URL.trim() : null;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl))
    p.list.push(`DATABASE_URL must be a postgres:// URL (got '${databaseUrl.replace(/:[^:@/]*@/, ':***@')}')`);
  const port = p.int(env, 'PORT', 8080, 0, 65535);
  const host = p.text(env, 'HOST', '127.0.0.1', /^[0-9A-Za-z.:-]+$/, 'a host name or IP address');
  const ttl = p.int(env, 'CXR_TOKEN_TTL_S', 3600, 60, 7 * 24 * 3600);
  const maxBodyMb = p.int(env, 'CXR_MAX_BODY_MB', 64, 1, 2048);
  const cfg: ServiceConfig = {
    host,
    port,
    databaseUrl,
    dataDir,
    dicomDir: resolve(p.text(env, 'CXR_DICOM_DIR', resolve(dataDir, 'dicom'))),
    modelsDir: resolve(p.text(env, 'CXR_MODELS_DIR', './models')),
    embeddedPgPort: p.int(env, 'CXR_PG_PORT', 54329, 1024, 65535),
    jwt: {
      secret: Buffer.alloc(0),
      issuer: p.text(env, 'CXR_JWT_ISSUER', 'cxr-triage'),
      audience: p.text(env, 'CXR_JWT_AUDIENCE', 'cxr-triage-api'),
      ttlSeconds: ttl,
    },
    hmacKey: Buffer.alloc(0),
    maxBodyBytes: maxBodyMb * 1024 * 1024,
    queueSize: p.int(env, 'CXR_QUEUE_SIZE', 64, 1, 100_000),
    inferConcurrency: p.int(env, 'CXR_INFER_CONCURRENCY', 1, 1, 64),
    workers: 0,
    store: p.text(env, 'CXR_STORE', 'fs', new RegExp(`^(${STORE_KINDS.join('|')})$`), STORE_KINDS.join(' or ')) as StoreKind,
    jobs: {
      retryLimit: p.int(env, 'CXR_JOB_RETRIES', DEFAULT_JOB_SETTINGS.retryLimit, 0, 100),
      retryDelaySeconds: p.int(env, 'CXR_JOB_RETRY_DELAY_S', DEFAULT_JOB_SETTINGS.retryDelaySeconds, 1, 3600),
      expireInSeconds: p.int(env, 'CXR_JOB_TIMEOUT_S', DEFAULT_JOB_SETTINGS.expireInSeconds, 1, 86_400),
      maintenanceIntervalSeconds: p.int(env, 'CXR_JOB_MAINTENANCE_S', DEFAULT_JOB_SETTINGS.maintenanceIntervalSeconds, 1, 3600),
    },
    storeGcGraceMs: p.int(env, 'CXR_STORE_GC_GRACE_S', 3600, 0, 30 * 86_400) * 1000,
    jobPollMs: p.int(env, 'CXR_JOB_POLL_MS', 500, 10, 60_000),
    inferThreads: p.optionalInt(env, 'CXR_INFER_THREADS', 1, 256),
    tta: p.optionalInt(env, 'CXR_TTA', 1, 32),
    waitTimeoutMs: p.int(env, 'CXR_WAIT_TIMEOUT_S', 60, 1, 3600) * 1000,
    drainTimeoutMs: p.int(env, 'CXR_DRAIN_TIMEOUT_S', 20, 0, 3600) * 1000,
    authMaxFailures: p.int(env, 'CXR_AUTH_MAX_FAILURES', DEFAULT_AUTH_MAX_FAILURES, 0, 1_000_000),
    authWindowMs: p.int(env, 'CXR_AUTH_WINDOW_S', DEFAULT_AUTH_WINDOW_S, 1, 86_400) * 1000,
    sessionIdleMs: p.int(env, 'CXR_SESSION_IDLE_S', DEFAULT_SESSION_IDLE_S, 1, 7 * 86_400) * 1000,
    sessionMaxMs: p.int(env, 'CXR_SESSION_MAX_S', DEFAULT_SESSION_MAX_S, 1, 30 * 86_400) * 1000,
    dimse: {
      aeTitle: p.text(env, 'CXR_DIMSE_AET', 'CXRTRIAGE', AE_TITLE, 'an AE title of 1-16 characters without backslash'),
      port: p.int(env, 'CXR_DIMSE_PORT', 11112, 0, 65535),
    },
    results: {
      destinations: resultDestinations(env, p.list),
      maxAttempts: p.int(env, 'CXR_RESULTS_ATTEMPTS', DEFAULT_RESULTS_SETTINGS.maxAttempts, 1, 100),
      retryDelayMs: p.int(env, 'CXR_RESULTS_RETRY_DELAY_S', DEFAULT_RESULTS_SETTINGS.retryDelayMs / 1000, 1, 3600) * 1000,
      maxRetryDelayMs: p.int(env, 'CXR_RESULTS_MAX_RETRY_DELAY_S', DEFAULT_RESULTS_SETTINGS.maxRetryDelayMs / 1000, 1, 86_400) * 1000,
      callingAeTitle: DEFAULT_RESULTS_SETTINGS.callingAeTitle,
    },
    sitePrevalence: p.optionalShare(env, 'CXR_SITE_PREVALENCE'),
    notices,
  };
  cfg.workers = p.int(env, 'CXR_WORKERS', cfg.inferConcurrency, 0, 64);
  // C-STOREs of results come from the AE title the service answers to
  cfg.results.callingAeTitle = cfg.dimse.aeTitle;
  cfg.jwt.secret = secret(env, 'CXR_JWT_SECRET', dataDir, 'jwt-secret', p, notices, 'JWT signing key', 'tokens signed with it stop working when it changes.');
  cfg.hmacKey = secret(
    env,
    'CXR_HMAC_KEY',
    dataDir,
    'hmac-key',
    p,
    notices,
    'patient-id pseudonymisation key',
    'keep it stable: a new key gives the same patient a new pseudonym.',
  );
  if (p.list.length > 0) throw new CxrError('E_CONFIG', `invalid configuration:\n  ${p.list.join('\n  ')}`);
  return cfg;
}
