/** Hand-built DICOM Upper Layer PDUs for hostile-peer tests (PS3.8 9.3). */
import { connect, type Socket } from 'node:net';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const CR_IMAGE = '1.2.840.10008.5.1.4.1.1.1';
export const VERIFICATION = '1.2.840.10008.1.1';

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function item(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u16(body.length), body]);
}
function ae(s: string): Buffer {
  return Buffer.from(s.padEnd(16, ' ').slice(0, 16), 'ascii');
}

export function associateRq(calling: string, called: string, contexts: { id: number; abstract: string; syntaxes: string[] }[]): Buffer {
  const body = Buffer.concat([
    u16(1),
    Buffer.alloc(2),
    ae(called),
    ae(calling),
    Buffer.alloc(32),
    item(0x10, Buffer.from('1.2.840.10008.3.1.1.1')),
    ...contexts.map((c) =>
      item(0x20, Buffer.concat([Buffer.from([c.id, 0, 0, 0]), item(0x30, Buffer.from(c.abstract)), ...c.syntaxes.map((s) => item(0x40, Buffer.from(s)))])),
    ),
    item(0x50, Buffer.concat([item(0x51, u32(16384)), item(0x52, Buffer.from('1.2.3.4.5'))])),
  ]);
  return Buffer.concat([Buffer.from([0x01, 0]), u32(body.length), body]);
}

/** One P-DATA-TF PDU with the given PDVs. */
export function pdata(pdvs: { pc: number; command: boolean; last: boolean; value: Buffer }[]): Buffer {
  const body = Buffer.concat(pdvs.map((p) => Buffer.concat([u32(p.value.length + 2), Buffer.from([p.pc, (p.command ? 1 : 0) | (p.last ? 2 : 0)]), p.value])));
  return Buffer.concat([Buffer.from([0x04, 0]), u32(body.length), body]);
}

function elem(group: number, element: number, value: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(group, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(value.length, 4);
  return Buffer.concat([h, value]);
}
function uid(s: string): Buffer {
  const b = Buffer.from(s, 'ascii');
  return b.length % 2 ? Buffer.concat([b, Buffer.from([0])]) : b;
}
function us(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

/** A command set (implicit VR LE, group 0000) with its group length. */
function command(els: Buffer[]): Buffer {
  const rest = Buffer.concat(els);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(rest.length);
  return Buffer.concat([elem(0, 0, gl), rest]);
}

export function cStoreRq(messageId: number, sopClass: string, sopInstance: string): Buffer {
  return command([
    elem(0, 0x0002, uid(sopClass)),
    elem(0, 0x0100, us(0x0001)),
    elem(0, 0x0110, us(messageId)),
    elem(0, 0x0700, us(0)),
    elem(0, 0x0800, us(0x0000)),
    elem(0, 0x1000, uid(sopInstance)),
  ]);
}

export function cEchoRq(messageId: number): Buffer {
  return command([elem(0, 0x0002, uid(VERIFICATION)), elem(0, 0x0100, us(0x0030)), elem(0, 0x0110, us(messageId)), elem(0, 0x0800, us(0x0101))]);
}

export { EXPLICIT_LE };

/** Reads PDUs off a socket. */
export class PduReader {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly pdus: Buffer[] = [];
  closed = false;
  constructor(readonly sock: Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 6) {
        const len = this.buf.readUInt32BE(2);
        if (this.buf.length < 6 + len) break;
        this.pdus.push(this.buf.subarray(0, 6 + len));
        this.buf = this.buf.subarray(6 + len);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('error', () => undefined);
  }
  async next(timeoutMs = 10_000): Promise<Buffer | null> {
    const end = Date.now() + timeoutMs;
    while (this.pdus.length === 0) {
      if (this.closed || Date.now() > end) return null;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.pdus.shift()!;
  }
}

export function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** The Status (0000,0900) of a response command in a P-DATA-TF PDU, or null. */
export function statusOf(pdu: Buffer): number | null {
  if (pdu[0] !== 0x04) return null;
  // first PDV value starts at 6 + 4 + 2
  const v = pdu.subarray(12);
  for (let at = 0; at + 8 <= v.length; ) {
    const g = v.readUInt16LE(at);
    const e = v.readUInt16LE(at + 2);
    const l = v.readUInt32LE(at + 4);
    if (g === 0 && e === 0x0900) return v.readUInt16LE(at + 8);
    at += 8 + l;
  }
  return null;
}
