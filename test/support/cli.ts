/**
 * Running `cxr-triage` from tests. `runCli` runs a command in this process through
 * src/cli/program.ts (no Node start, no tsx compile, modules loaded once per test file:
 * the subprocesses were 45% of the suite's time). `spawnCli` runs bin/cxr-triage.js as a
 * user does; keep it for smoke tests, servers, and commands whose environment changes
 * process-wide state chosen once (CXR_BACKEND, thread counts).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { runCli as runProgram } from '../../src/cli/program.js';
import { CLI } from './serve-process.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cxr-triage ARGS...` as a user would (bin/cxr-triage.js of this repository). */
export function spawnCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface SyncCliOptions {
  /** the whole environment (default: this process's) */
  env?: NodeJS.ProcessEnv;
  /** killed after this long (default 240 s: tiny training runs on a busy machine) */
  timeoutMs?: number;
  /** written to its stdin */
  input?: string;
}

/**
 * `cxr-triage ARGS...` as a child process, waited for: for training, whose backend and thread
 * counts are chosen once per process, and for commands a test wants to see exit on their own.
 */
export function spawnCliSync(args: string[], o: SyncCliOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: o.env ?? process.env, input: o.input, encoding: 'utf8', timeout: o.timeoutMs ?? 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `cxr-triage ARGS...` started and left running: the test reads its output and sends it signals. */
export function startCli(args: string[], o: { env?: NodeJS.ProcessEnv } = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CLI, ...args], { env: o.env ?? process.env, stdio: 'pipe' });
}

type Write = typeof process.stdout.write;

/**
 * Sends the text a command writes to `sink`. Only strings are taken: the commands write
 * text, while node:test's reporter in this process writes Buffers to stdout, which must
 * still reach the runner.
 */
function capture(stream: NodeJS.WriteStream, sink: (s: string) => void): () => void {
  const original = stream.write;
  stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk !== 'string') return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    sink(chunk);
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (done) queueMicrotask(done);
    return true;
  } as Write;
  return () => {
    stream.write = original;
  };
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `cxr-triage ARGS...` in this process with `env` added to process.env for its
 * duration (an undefined value removes that variable); output and exit status as from a
 * subprocess. Calls run one at a time.
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const run = async (): Promise<CliResult> => {
    let stdout = '';
    let stderr = '';
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const restoreOut = capture(process.stdout, (s) => (stdout += s));
    const restoreErr = capture(process.stderr, (s) => (stderr += s));
    try {
      const code = await runProgram(args, { inProcess: true });
      return { code, stdout, stderr };
    } finally {
      restoreOut();
      restoreErr();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => {});
  return result;
}
