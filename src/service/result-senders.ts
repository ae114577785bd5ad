/**
 * Sending one result object to one destination: DICOMweb STOW-RS (PS3.18 10.5, a
 * multipart/related POST) or DIMSE C-STORE (dcmjs-dimse as the SCU). Each resolves when
 * the destination said it stored the object, and throws E_DESTINATION with what it said
 * (or why it could not be reached) otherwise; the outbox decides about retrying.
 */
import { randomBytes } from 'node:crypto';
import dcmjs from 'dcmjs';
import dcmjsDimse from 'dcmjs-dimse';
import { CxrError } from '../errors.js';
import type { ResultDestination } from './results.js';

const { Client, Dataset } = dcmjsDimse;
const { CStoreRequest } = dcmjsDimse.requests;
const { Status } = dcmjsDimse.constants;
dcmjsDimse.log.setLevel('silent');

export interface SendOptions {
  callingAeTitle: string;
  timeoutMs: number;
}

export async function sendResult(d: ResultDestination, bytes: Uint8Array, o: SendOptions): Promise<string> {
  return d.kind === 'stow' ? stow(d.url, d.auth, bytes, o.timeoutMs) : cStore(d, bytes, o);
}

function fail(message: string): CxrError {
  return new CxrError('E_DESTINATION', message.slice(0, 500));
}

async function stow(url: string, auth: string | null, bytes: Uint8Array, timeoutMs: number): Promise<string> {
  const boundary = `cxr-result-${randomBytes(12).toString('hex')}`;
  const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      body,
      headers: {
        'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        Accept: 'application/dicom+json',
        ...(auth ? { Authorization: auth } : {}),
      },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw fail(`STOW-RS to ${url} failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text().catch(() => '');
  // 200: every instance stored; 202 (some failed) and 409 (none stored) are failures for a single instance
  if (res.status !== 200) throw fail(`STOW-RS to ${url} answered ${res.status}${text ? `: ${text.slice(0, 300)}` : ''}`);
  return `STOW-RS ${res.status}`;
}

/** dcmjs-dimse wants a naturalized dataset; the stored bytes are Part 10 in Explicit VR Little Endian. */
export function datasetOf(bytes: Uint8Array): InstanceType<typeof Dataset> {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const dict = dcmjs.data.DicomMessage.readFile(ab);
  const ts = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta).TransferSyntaxUID as string;
  return new Dataset(dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict), ts);
}

function cStore(d: Extract<ResultDestination, { kind: 'dimse' }>, bytes: Uint8Array, o: SendOptions): Promise<string> {
  const where = `${d.aeTitle}@${d.host}:${d.port}`;
  return new Promise((resolve, reject) => {
    const client = new Client();
    const request = new CStoreRequest(datasetOf(bytes));
    let status: number | null = null;
    let problem: string | null = null;
    request.on('response', (response: { getStatus(): number; getErrorComment?(): string | undefined }) => {
      status = response.getStatus();
    });
    client.on('associationRejected', (r: { result?: number; source?: number; reason?: number }) => {
      problem = `association rejected by ${where} (result ${r?.result}, source ${r?.source}, reason ${r?.reason})`;
    });
    client.on('networkError', (e: Error) => {
      problem ??= `C-STORE to ${where} failed: ${(e as { code?: string }).code ?? e.message.replace(/^\s*->\s*/, '')}`;
    });
    const timer = setTimeout(() => {
      problem ??= `C-STORE to ${where} timed out after ${o.timeoutMs} ms`;
      try {
        client.abort();
      } catch {
        // not connected yet: closing the socket is all there is
      }
    }, o.timeoutMs);
    client.on('closed', () => {
      clearTimeout(timer);
      // 0xB000-0xBFFF: stored, with a warning (e.g. elements coerced)
      if (status === Status.Success || (status !== null && (status & 0xf000) === 0xb000)) resolve(`C-STORE status 0x${status.toString(16).padStart(4, '0')}`);
      else if (status !== null) reject(fail(`C-STORE to ${where} answered status 0x${status.toString(16).padStart(4, '0')}`));
      else reject(fail(problem ?? `C-STORE to ${where} ended without a response`));
    });
    client.addRequest(request);
    try {
      client.send(d.host, d.port, o.callingAeTitle, d.aeTitle, { connectTimeout: o.timeoutMs, associationTimeout: o.timeoutMs, pduTimeout: o.timeoutMs });
    } catch (e) {
      clearTimeout(timer);
      reject(fail(`C-STORE to ${where} could not start: ${(e as Error).message}`));
    }
  });
}
