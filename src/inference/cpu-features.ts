import { readFileSync } from 'node:fs';
import { arch, platform } from 'node:process';

/**
 * Whether ONNX Runtime's int8 convolutions multiply with VPMADDUBSW on this CPU, whose
 * int16 pair sums saturate for 8-bit weights: x86-64 with AVX2 (or AVX-512) but neither
 * AVX-512 VNNI nor AVX-VNNI. ARM and VNNI CPUs accumulate in 32 bits.
 */
export function saturatingInt8(cpuArch: string, flags: ReadonlySet<string>): boolean {
  if (cpuArch !== 'x64') return false;
  if (flags.has('avx512_vnni') || flags.has('avx_vnni')) return false;
  return flags.has('avx2');
}

let cached: boolean | undefined;

/** saturatingInt8 for this machine (Linux /proc/cpuinfo; false where the flags cannot be read). */
export function int8SaturatesHere(): boolean {
  if (cached !== undefined) return cached;
  let flags = new Set<string>();
  if (platform === 'linux') {
    try {
      const line = /^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
      flags = new Set((line?.[1] ?? '').split(/\s+/));
    } catch {
      // unreadable: assume the kernels accumulate exactly
    }
  }
  cached = saturatingInt8(arch, flags);
  return cached;
}
