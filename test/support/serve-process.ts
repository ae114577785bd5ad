/**
 * `cxr-triage serve` as a child process, for the fault bench and the fault tests: started
 * with the given environment on a free loopback port, its banner awaited, its output kept,
 * its exit observable — the real server a deployment runs, not the app in-process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cxr-triage.js');

export interface ServeProcess {
  proc: ChildProcess;
  pid: number;
  url: string;
  stdout(): string;
  stderr(): string;
  /** resolves with the exit code (null when killed by a signal) and the signal */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  /** listen port (0, the default: a free one); a restart on the same port keeps clients' URL */
  port?: number;
  timeoutMs?: number;
}

/** Starts serve; rejects with its output if it exits or does not listen within the timeout (120 s). */
export async function startServe(env: NodeJS.ProcessEnv, opts: StartOptions = {}): Promise<ServeProcess> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  // No DIMSE listener unless asked for: benches and test files run side by side and would race for port 11112.
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(opts.port ?? 0)], {
    env: { CXR_DIMSE_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('close', (code, signal) => r({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`serve did not listen within ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening:\n${err}`));
    });
  });
  return { proc, pid: proc.pid!, url, stdout: () => out, stderr: () => err, exited };
}

/** Peak resident set size of a process so far (VmHWM, Linux), in MiB; null when unreadable. */
export async function peakRssMiB(pid: number): Promise<number | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** A loopback port nobody listens on right now (for a server that must keep its port across restarts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
