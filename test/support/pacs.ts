/**
 * Shared helpers for tests against real PACS tools: a private Orthanc (Debian `orthanc` +
 * `orthanc-dicomweb`) with its own configuration, ports and storage, and the DICOM checkers
 * `dciodvfy` (dicom3tools) and `dsrdump` (dcmtk). A missing tool fails the test, never skips it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './serve-process.js';

export { freePort };

export const ORTHANC = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface Orthanc {
  url: string;
  httpPort: number;
  dicomPort: number;
  aeTitle: string;
  /** everything Orthanc printed so far */
  log(): string;
  /** a REST call; throws with Orthanc's answer and log tail on a non-2xx status */
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * Starts Orthanc with `extra` merged into a private configuration under `dir`; resolves once
 * its REST API answers. `ports` keeps the ports of an earlier instance (a restart).
 */
export async function startOrthanc(dir: string, extra: Record<string, unknown>, ports?: { httpPort: number; dicomPort: number }): Promise<Orthanc> {
  await mkdir(join(dir, 'db'), { recursive: true });
  const httpPort = ports?.httpPort ?? (await freePort());
  const dicomPort = ports?.dicomPort ?? (await freePort());
  const aeTitle = (extra.DicomAet as string | undefined) ?? 'ORTHANC';
  const config = {
    Name: 'cxr-test-orthanc',
    StorageDirectory: join(dir, 'db'),
    IndexDirectory: join(dir, 'db'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aeTitle,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    StableAge: 1,
    Plugins: [DICOMWEB_PLUGIN],
    ...extra,
  };
  await writeFile(join(dir, 'orthanc.json'), JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${httpPort}`;
  let output = '';
  const proc: ChildProcess = spawn(ORTHANC, [join(dir, 'orthanc.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<never>((_, reject) => {
    proc.once('error', (e) => reject(new Error(`cannot run ${ORTHANC} (${e.message}); CI installs orthanc and orthanc-dicomweb`)));
    proc.once('exit', (code) => reject(new Error(`Orthanc exited with ${code}:\n${output}`)));
  });
  exited.catch(() => undefined);
  const up = (async () => {
    for (let i = 0; i < 200; i++) {
      try {
        const r = await fetch(`${url}/system`);
        // 401: it is up, and asks for the credentials it was configured with
        if (r.ok || r.status === 401) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Orthanc did not start in 20 s:\n${output}`);
  })();
  await Promise.race([up, exited]);
  return {
    url,
    httpPort,
    dicomPort,
    aeTitle,
    log: () => output,
    async api(method, path, body) {
      const res = await fetch(`${url}${path}`, {
        method,
        body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
        headers: body instanceof Uint8Array ? { 'Content-Type': 'application/dicom' } : undefined,
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`Orthanc ${method} ${path}: ${res.status} ${text}\n${output.slice(-2000)}`);
      return text ? JSON.parse(text) : null;
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

function run(cmd: string, args: string[], what: string): { out: string; status: number | null } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${what}: cannot run ${cmd} (${r.error.message}); CI installs dicom3tools and dcmtk`);
  return { out: `${r.stdout}${r.stderr}`, status: r.status };
}

/** dciodvfy's findings on a file: its error lines (none for a valid object) and its warnings. */
export function dciodvfy(path: string): { errors: string[]; warnings: string[]; iod: string } {
  const { out } = run('dciodvfy', [path], 'dciodvfy');
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  return {
    errors: lines.filter((l) => /^Error/.test(l)),
    warnings: lines.filter((l) => /^Warning/.test(l)),
    iod: lines.find((l) => !/^(Error|Warning)/.test(l)) ?? '',
  };
}

/** dsrdump's rendering of an SR (fails the test when it cannot read the file). */
export function dsrdump(path: string): string {
  const { out, status } = run('dsrdump', [path], 'dsrdump');
  if (status !== 0) throw new Error(`dsrdump exited ${status}: ${out.slice(0, 2000)}`);
  return out;
}
