/**
 * TensorBoard event files, written directly (the format is small): a file of records, each
 * `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`, where data
 * is an `Event` protobuf (wall_time = 1 double, step = 2 int64, file_version = 3 string,
 * summary = 5 Summary{ value = 1 repeated Value{ tag = 1 string, simple_value = 2 float } }).
 * `tensorboard --logdir runs/` reads them; the first record names the file version.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord uses. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add a constant. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

class Proto {
  private readonly parts: number[] = [];
  varint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.parts.push(b);
    } while (x > 0n);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  double(field: number, v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.tag(field, 1).parts.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.tag(field, 5).parts.push(...b);
    return this;
  }
  bytes(field: number, v: Uint8Array): this {
    this.tag(field, 2)
      .varint(v.length)
      .parts.push(...v);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function record(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

export function scalarEvent(tag: string, value: number, step: number, wallTime: number): Uint8Array {
  const v = new Proto().string(1, tag).float(2, value).done();
  const summary = new Proto().bytes(1, v).done();
  return new Proto().double(1, wallTime).tag(2, 0).varint(step).bytes(5, summary).done();
}

/** Appends scalar summaries to `<dir>/events.out.tfevents.<time>.<host>` (a new file per writer, as TensorBoard expects). */
export class EventFileWriter {
  readonly path: string;
  constructor(dir: string, now = Date.now()) {
    // a resumed run adds a file; the random part keeps two writers in one second apart
    this.path = join(
      dir,
      `events.out.tfevents.${Math.floor(now / 1000)}.${hostname().replace(/[^A-Za-z0-9.-]/g, '_')}.${process.pid}.${randomBytes(3).toString('hex')}`,
    );
    const header = new Proto()
      .double(1, now / 1000)
      .string(3, 'brain.Event:2')
      .done();
    writeFileSync(this.path, record(header));
  }

  scalars(values: Record<string, number | null | undefined>, step: number, wallTime = Date.now() / 1000): void {
    const recs: Uint8Array[] = [];
    for (const [tag, v] of Object.entries(values)) if (typeof v === 'number' && Number.isFinite(v)) recs.push(record(scalarEvent(tag, v, step, wallTime)));
    if (recs.length > 0) appendFileSync(this.path, Buffer.concat(recs));
  }
}

export interface ReadScalar {
  tag: string;
  value: number;
  step: number;
  wallTime: number;
}

/** Reads an event file back, checking every CRC (for tests and `runs compare`). */
export function readScalars(bytes: Uint8Array): { fileVersion: string | null; scalars: ReadScalar[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let fileVersion: string | null = null;
  const scalars: ReadScalar[] = [];
  while (at < bytes.length) {
    const len = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== maskedCrc32c(bytes.subarray(at, at + 8))) throw new Error(`bad length CRC at byte ${at}`);
    const data = bytes.subarray(at + 12, at + 12 + len);
    if (view.getUint32(at + 12 + len, true) !== maskedCrc32c(data)) throw new Error(`bad data CRC at byte ${at}`);
    at += 16 + len;
    const ev = decode(data);
    if (ev.fileVersion) fileVersion = ev.fileVersion;
    for (const v of ev.values) scalars.push({ ...v, step: ev.step, wallTime: ev.wallTime });
  }
  return { fileVersion, scalars };
}

function decode(d: Uint8Array): { wallTime: number; step: number; fileVersion: string | null; values: { tag: string; value: number }[] } {
  const out = { wallTime: 0, step: 0, fileVersion: null as string | null, values: [] as { tag: string; value: number }[] };
  for (const f of fields(d)) {
    if (f.field === 1 && f.fixed64) out.wallTime = new DataView(f.fixed64.buffer, f.fixed64.byteOffset, 8).getFloat64(0, true);
    else if (f.field === 2 && f.varint !== undefined) out.step = Number(f.varint);
    else if (f.field === 3 && f.bytes) out.fileVersion = new TextDecoder().decode(f.bytes);
    else if (f.field === 5 && f.bytes) {
      for (const v of fields(f.bytes)) {
        if (v.field !== 1 || !v.bytes) continue;
        let tag = '';
        let value = Number.NaN;
        for (const x of fields(v.bytes)) {
          if (x.field === 1 && x.bytes) tag = new TextDecoder().decode(x.bytes);
          if (x.field === 2 && x.fixed32) value = new DataView(x.fixed32.buffer, x.fixed32.byteOffset, 4).getFloat32(0, true);
        }
        out.values.push({ tag, value });
      }
    }
  }
  return out;
}

function* fields(d: Uint8Array): Generator<{ field: number; varint?: bigint; fixed64?: Uint8Array; fixed32?: Uint8Array; bytes?: Uint8Array }> {
  let at = 0;
  const varint = (): bigint => {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      const b = d[at++];
      x |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return x;
      shift += 7n;
    }
  };
  while (at < d.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { field, varint: varint() };
    else if (wire === 1) {
      yield { field, fixed64: d.subarray(at, at + 8) };
      at += 8;
    } else if (wire === 5) {
      yield { field, fixed32: d.subarray(at, at + 4) };
      at += 4;
    } else if (wire === 2) {
      const n = Number(varint());
      yield { field, bytes: d.subarray(at, at + n) };
      at += n;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}
