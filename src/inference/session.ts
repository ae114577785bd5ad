import * as ort from 'onnxruntime-node';
import { CxrError } from '../errors.js';

/** Execution providers a deployment may name; CPU always works (its library ships in npm). */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'tensorrt'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface SessionConfig {
  /** intra-op threads per session (default 2: one per core of the target server) */
  threads?: number;
  /** tried in order; 'cpu' is appended when missing so the model always has a home */
  providers?: ExecutionProvider[];
  /**
   * let idle intra-op threads spin-wait for the next parallel section (default false). The
   * pipeline holds two sessions, each with its own pool; a pool left spinning after its run
   * takes a core from the other session's run (measured here on 2 cores: U-Net + DenseNet x4
   * 151-154 ms per study spinning, 130-136 ms not).
   */
  allowSpinning?: boolean;
  /** called when a named provider cannot start and the session falls back to CPU */
  onWarning?: (message: string) => void;
}

export interface OpenSession {
  session: ort.InferenceSession;
  /** providers the session was created with */
  providers: ExecutionProvider[];
}

export function parseProviders(value: string): ExecutionProvider[] {
  const names = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const n of names) {
    if (!(EXECUTION_PROVIDERS as readonly string[]).includes(n)) {
      throw new CxrError('E_BAD_ARGUMENT', `unknown execution provider '${n}' (use ${EXECUTION_PROVIDERS.join(', ')})`);
    }
  }
  if (names.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'no execution provider given');
  return names as ExecutionProvider[];
}

export function sessionOptions(threads: number, providers: ExecutionProvider[], quiet: boolean, spin: boolean): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    // 'all' adds the NCHWc layout transform for x86 convolutions: ~2x over 'basic' on DenseNet
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
    // a provider that cannot load is reported by us, once, not by ORT's own error log
    logSeverityLevel: quiet ? 4 : 2,
    extra: { session: { 'intra_op.allow_spinning': spin ? '1' : '0' } },
  };
}

/**
 * Creates a session on the configured providers. When a GPU provider cannot start (its
 * libraries are not installed: the npm package's CUDA download is skipped on CPU servers)
 * the session falls back to CPU and says so through onWarning.
 */
export async function openSession(model: Uint8Array, label: string, cfg: SessionConfig = {}): Promise<OpenSession> {
  const threads = cfg.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1) throw new CxrError('E_BAD_ARGUMENT', `threads must be a positive integer, got ${threads}`);
  const wanted = cfg.providers && cfg.providers.length > 0 ? [...cfg.providers] : ['cpu' as const];
  const providers: ExecutionProvider[] = wanted.includes('cpu') ? wanted : [...wanted, 'cpu'];
  try {
    return {
      session: await ort.InferenceSession.create(model, sessionOptions(threads, providers, providers.length > 1, cfg.allowSpinning ?? false)),
      providers,
    };
  } catch (e) {
    if (providers.length === 1) throw new CxrError('E_BACKEND', `${label}: onnxruntime cannot load the model (${(e as Error).message})`);
    cfg.onWarning?.(`${label}: execution providers ${providers.join(',')} unavailable (${(e as Error).message}); using cpu`);
  }
  try {
    return { session: await ort.InferenceSession.create(model, sessionOptions(threads, ['cpu'], false, cfg.allowSpinning ?? false)), providers: ['cpu'] };
  } catch (e) {
    throw new CxrError('E_BACKEND', `${label}: onnxruntime cannot load the model (${(e as Error).message})`);
  }
}
