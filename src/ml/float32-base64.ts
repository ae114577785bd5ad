/** float32 arrays as base64 text (little-endian, as the machine holds them): feature caches and manifest weights. */
export function float32ToBase64(f: Float32Array): string {
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

export function base64ToFloat32(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
