/**
 * DICOM DIMSE Storage SCP (dcmjs-dimse): C-ECHO, and C-STORE of CR, DX and Secondary Capture
 * images into the same ingestion path as HTTP (`TriageService.accept`): validated and decoded,
 * stored durably and recorded before the success status goes back, duplicate-safe, and a bad
 * instance answered with a failure status whose Error Comment carries the stable code.
 *
 * Callers are workstation clients that registered their calling AE title; any other caller is
 * rejected at association (the DIMSE analogue of 401) and the refusal is audited, logged and
 * counted. The received data set is kept byte for byte, wrapped in Part 10 file meta, so what
 * is stored is exactly what the modality sent.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import dcmjsDimse from 'dcmjs-dimse';
import type { DataSource } from 'typeorm';
import { appendAudit, appendAuditInTransaction } from '../../db/audit.js';
import type { ApiClientRow } from '../../db/entities.js';
import { findActiveClient, findActiveClientByAeTitle } from '../../db/principals.js';
import { isSyntaxSupported, SOP_CLASS, wrapPart10 } from '../../dicom/index.js';
import { CxrError, httpStatusFor, isCxrError, type ErrorCode } from '../../errors.js';
import type { Logger } from '../../service/log.js';
import type { AcceptResult, TriageService } from '../../service/triage.js';
import type { ServiceMetrics } from '../metrics.js';

const { Scp, Dataset, constants, responses } = dcmjsDimse;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason, Status } = constants;

type Association = dcmjsDimse.association.Association;
type PresentationContext = dcmjsDimse.association.PresentationContext;
type CStoreRequest = dcmjsDimse.requests.CStoreRequest;
type CEchoRequest = dcmjsDimse.requests.CEchoRequest;
type CStoreResponse = dcmjsDimse.responses.CStoreResponse;
type CEchoResponse = dcmjsDimse.responses.CEchoResponse;

// The library logs every PDU to the console; this module logs what matters as JSON lines.
dcmjsDimse.log.setLevel('silent');

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';

/** The storage SOP classes accepted: the chest radiograph classes, and Secondary Capture. */
export const STORAGE_SOP_CLASSES: readonly string[] = [SOP_CLASS.crImage, SOP_CLASS.dxForPresentation, SOP_CLASS.dxForProcessing, SOP_CLASS.secondaryCapture];

/** C-STORE status for a refused instance (PS3.4 B.2.3 and PS3.7 C). */
export function cStoreStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'E_QUEUE_FULL':
    case 'E_STORAGE_FULL':
    case 'E_PAYLOAD_TOO_LARGE':
      return 0xa700; // Refused: Out of Resources
    case 'E_CONFLICT':
      return 0x0111; // Duplicate SOP Instance (same UID, different content)
    case 'E_UNAUTHENTICATED':
    case 'E_FORBIDDEN':
      return 0x0124; // Refused: Not Authorized
    default:
      return httpStatusFor(code) >= 500 ? 0x0110 /* Processing Failure */ : 0xc000; /* Error: Cannot Understand */
  }
}

/**
 * The syntax to accept from a proposed list: the sender's first choice that ingestion decodes
 * (usually the syntax the file is stored in, so nothing is transcoded on the way — a sender
 * may have no codec to decompress with). Null when none is decodable: the sender then hears
 * "transfer syntaxes not supported" for that context.
 */
export function pickTransferSyntax(proposed: readonly string[]): string | null {
  return proposed.find(isSyntaxSupported) ?? null;
}

export interface DimseOptions {
  /** our AE title; a request addressed to another one is rejected */
  aeTitle: string;
  host: string;
  /** 0 picks a free port */
  port: number;
  /** largest data set accepted, in bytes (the HTTP body limit) */
  maxBytes: number;
  ds: DataSource;
  service: TriageService;
  log: Logger;
  metrics?: ServiceMetrics;
}

export interface DimseServer {
  aeTitle: string;
  host: string;
  port: number;
  /** stops accepting associations; lets running ones finish for up to graceMs, then closes them */
  close(graceMs?: number): Promise<void>;
}

/** Collects one C-STORE data set as it streams in, up to a limit. */
class DatasetCollector extends Writable {
  readonly chunks: Buffer[] = [];
  size = 0;
  overflow = false;
  constructor(
    readonly request: CStoreRequest,
    private readonly limit: number,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.size += chunk.length;
    if (this.size > this.limit) this.overflow = true;
    else this.chunks.push(chunk);
    done();
  }
}

type Received = { bytes: Uint8Array } | { error: CxrError };

function trimAe(s: string | undefined): string {
  return (s ?? '').trim();
}

export async function startDimseServer(o: DimseOptions): Promise<DimseServer> {
  const ownAe = o.aeTitle.trim().toUpperCase();
  const count = (operation: string, outcome: string) => o.metrics?.dimse.inc({ operation, outcome });

  class TriageScp extends Scp {
    private client: ApiClientRow | null = null;
    private callingAe = '';
    private readonly associationId = `dimse-${randomUUID()}`;
    private readonly received = new WeakMap<CStoreRequest, Received>();

    constructor(
      private readonly sock: Socket,
      opts: ConstructorParameters<typeof Scp>[1],
    ) {
      super(sock, opts);
    }

    private remote(): string {
      return `${this.sock.remoteAddress ?? '?'}:${this.sock.remotePort ?? '?'}`;
    }

    override associationRequested(association: Association): void {
      void this.decide(association).catch((e: unknown) => {
        o.log.error('dimse association handling failed', { error: String((e as Error)?.stack ?? e) });
        this.sendAssociationReject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.TemporaryCongestion);
      });
    }

    private async decide(association: Association): Promise<void> {
      this.callingAe = trimAe(association.getCallingAeTitle());
      const calledAe = trimAe(association.getCalledAeTitle());
      let refusal: { code: ErrorCode; reason: number; why: string } | null = null;
      if (calledAe.toUpperCase() !== ownAe) {
        refusal = { code: 'E_NOT_FOUND', reason: RejectReason.CalledAeNotRecognized, why: `called AE title '${calledAe}' is not ours ('${ownAe}')` };
      } else {
        const client = await findActiveClientByAeTitle(o.ds, this.callingAe);
        if (!client) {
          refusal = {
            code: 'E_UNAUTHENTICATED',
            reason: RejectReason.CallingAeNotRecognized,
            why: `calling AE title '${this.callingAe}' is not registered to an active client`,
          };
        } else if (client.role !== 'workstation') {
          refusal = {
            code: 'E_FORBIDDEN',
            reason: RejectReason.CallingAeNotRecognized,
            why: `client '${client.id}' has role '${client.role}', not workstation`,
          };
        } else {
          this.client = client;
        }
      }
      if (refusal) {
        count('associate', refusal.code);
        o.log.warn('dimse association refused', { code: refusal.code, callingAe: this.callingAe, calledAe, remote: this.remote(), reason: refusal.why });
        await appendAudit(o.ds, {
          actor: `ae:${this.callingAe || '?'}`,
          role: null,
          action: 'dimse.associate',
          studyId: null,
          requestId: this.associationId,
          outcome: refusal.code,
          detail: { callingAe: this.callingAe, calledAe, remote: this.remote(), reason: refusal.why },
        }).catch((e: unknown) => o.log.error('audit append failed', { requestId: this.associationId, error: String(e) }));
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, refusal.reason);
        return;
      }
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        const abstract = context.getAbstractSyntaxUid();
        if (abstract !== VERIFICATION_SOP_CLASS && !STORAGE_SOP_CLASSES.includes(abstract)) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const syntax = pickTransferSyntax(context.getTransferSyntaxUids());
        if (syntax) context.setResult(PresentationContextResult.Accept, syntax);
        else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      count('associate', 'ok');
      this.sendAssociationAccept();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
      const response = responses.CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      count('echo', 'ok');
      callback(response);
    }

    override createStoreWritableStream(_context: PresentationContext, request: CStoreRequest): Writable {
      return new DatasetCollector(request, o.maxBytes);
    }

    override createDatasetFromStoreWritableStream(writable: Writable, context: PresentationContext, callback: (dataset: dcmjsDimse.Dataset) => void): void {
      const collector = writable as DatasetCollector;
      const finish = () => {
        const request = collector.request;
        const syntax = context.getAcceptedTransferSyntaxUid();
        if (collector.overflow) {
          this.received.set(request, { error: new CxrError('E_PAYLOAD_TOO_LARGE', `data set larger than ${o.maxBytes} bytes`) });
        } else if (!syntax) {
          this.received.set(request, { error: new CxrError('E_MALFORMED', 'data set on a presentation context that was not accepted') });
        } else {
          const dataset = Buffer.concat(collector.chunks);
          const sopClass = request.getAffectedSopClassUid();
          const sopInstance = request.getAffectedSopInstanceUid();
          this.received.set(request, { bytes: wrapPart10(dataset, sopClass, sopInstance, syntax) });
        }
        // The library wants a parsed dataset; ours is the bytes above, so hand it an empty one.
        callback(new Dataset({}));
      };
      // every chunk is already in (the collector's _write is synchronous): answer now, so the
      // library drops this store stream before it reads the next PDV of the same chunk; waiting
      // for 'finish' (next tick) let a pipelined message be written into the ended collector,
      // an unhandled 'error' that took the whole process down
      collector.on('error', () => undefined);
      finish();
    }

    override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
      void this.store(request).then(callback, (e: unknown) => {
        o.log.error('dimse c-store failed', { error: String((e as Error)?.stack ?? e) });
        const response = responses.CStoreResponse.fromRequest(request);
        response.setStatus(0x0110);
        response.setErrorComment('E_INTERNAL');
        callback(response);
      });
    }

    private async store(request: CStoreRequest): Promise<CStoreResponse> {
      const response = responses.CStoreResponse.fromRequest(request);
      const client = this.client;
      const got = this.received.get(request);
      this.received.delete(request);
      const sopInstanceUid = request.getAffectedSopInstanceUid();
      const entry = (studyId: string | null, outcome: string, duplicate: boolean, message: string) => ({
        actor: client?.id ?? `ae:${this.callingAe}`,
        role: client?.role ?? null,
        action: 'study.create',
        studyId,
        requestId: this.associationId,
        outcome,
        detail: { via: 'dimse', callingAe: this.callingAe, sopInstanceUid, duplicate, ...(message ? { message: message.slice(0, 300) } : {}) },
      });
      // Stored under the data set's own UID; the command's disagreeing UID is only noted.
      const differs = (r: AcceptResult) =>
        r.study.sopInstanceUid !== sopInstanceUid ? `data set SOP Instance UID ${r.study.sopInstanceUid} differs from the command's` : '';
      let studyId: string | null = null;
      let outcome = 'ok';
      let duplicate = false;
      let message = '';
      // a stored study's audit row commits with it, as over HTTP: never a study without its row
      let auditedInTx = false;
      try {
        if (!client) throw new CxrError('E_UNAUTHENTICATED', 'no accepted association');
        // checked on every C-STORE, as HTTP Basic is on every request: a client revoked while its
        // association stays open stores nothing more
        if (!(await findActiveClient(o.ds, client.id))) throw new CxrError('E_UNAUTHENTICATED', `client ${client.id} was revoked`);
        if (!got) throw new CxrError('E_MALFORMED', 'no data set received');
        if ('error' in got) throw got.error;
        const res = await o.service.accept(got.bytes, client.id, async (m, r) => {
          await appendAuditInTransaction(m, entry(r.study.id, 'ok', !r.created, differs(r)));
          auditedInTx = true;
        });
        studyId = res.study.id;
        duplicate = !res.created;
        message = differs(res);
        response.setStatus(Status.Success);
      } catch (e) {
        // whatever was appended inside the accept's transaction did not commit
        auditedInTx = false;
        const err = isCxrError(e) ? e : new CxrError('E_INTERNAL', 'the instance could not be stored');
        if (!isCxrError(e)) o.log.error('dimse c-store failed', { error: String((e as Error)?.stack ?? e) });
        outcome = err.code;
        message = err.message;
        studyId = (err.details?.studyId as string | undefined) ?? null;
        response.setStatus(cStoreStatusFor(err.code));
        // Error Comment (0000,0902) is at most 64 characters: the stable code first.
        response.setErrorComment(`${err.code}: ${err.message}`.slice(0, 64));
        if (isCxrError(e))
          o.log.warn('dimse c-store refused', { code: err.code, client: client?.id ?? null, callingAe: this.callingAe, sopInstanceUid, reason: err.message });
      }
      count('store', outcome);
      // refusals, and a re-send found before any transaction, are audited on their own
      if (!auditedInTx) await appendAudit(o.ds, entry(studyId, outcome, duplicate, message));
      return response;
    }
  }

  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const scp = new TriageScp(socket, { associationTimeout: 30_000, pduTimeout: 120_000 });
    // The library's own Server sets these; the association timeout counts from here.
    Object.assign(scp, { connected: true, connectedTime: Date.now() });
    // After an A-ABORT the peer waits (ARTIM, 30 s by default) for us to close the connection.
    scp.on('abort', () => socket.destroy());
    scp.on('networkError', (e: Error) => {
      o.log.warn('dimse connection error', { remote: `${socket.remoteAddress}:${socket.remotePort}`, error: e.message });
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => o.log.error('dimse server error', { error: String(e) }));
  const port = (server.address() as AddressInfo).port;
  return {
    aeTitle: ownAe,
    host: o.host,
    port,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        server.close();
        const end = Date.now() + graceMs;
        const poll = () => {
          if (sockets.size === 0) return resolve();
          if (Date.now() >= end) {
            for (const s of sockets) s.destroy();
            return resolve();
          }
          setTimeout(poll, 50).unref();
        };
        poll();
      }),
  };
}
