/**
 * Publishes in processes of their own (test/support/stalled-publish.ts), for the tests of
 * staging folders left behind: one caught midway and held there until the test kills it, and
 * one that runs to the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { nodeArgsFor } from './compiled.js';

const SCRIPT = join(import.meta.dirname, 'stalled-publish.ts');

export interface StalledPublish {
  child: ChildProcess;
  pid: number;
  /** its staging folder */
  dir: string;
  /** sends the signal and waits until the process is gone (reaped) */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A publish of `version` into `modelDir` that stops with 3 MB written into its staging folder. */
export async function stalledPublish(modelDir: string, version: string): Promise<StalledPublish> {
  const child = spawn(process.execPath, [...(await nodeArgsFor(SCRIPT)), modelDir, version, 'stall'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const dir = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /^staged (.+)$/m.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('close', (code) => reject(new Error(`the stalled publish exited (${code}) before staging: ${err}`)));
  });
  return {
    child,
    pid: child.pid!,
    dir,
    async kill(signal = 'SIGKILL') {
      child.kill(signal);
      await closed;
    },
  };
}

/** A publish of `version` into `modelDir` that runs to the end, in its own process. */
export async function runPublish(modelDir: string, version: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...(await nodeArgsFor(SCRIPT)), modelDir, version, 'publish'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}
