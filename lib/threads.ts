// SPDX-License-Identifier: MIT
/**
 * The native thread pool and CPU features.
 * @module
 */
import { native } from './native';
import { checkInteger } from './validate';

/**
 * Sets the number of native threads (including the caller) used by kernels, 1..256. Outputs are
 * bit-identical for any count. Default: `WEIGHTSMITH_THREADS`, else the number of cores.
 */
export function setThreads(n: number): void {
  native.setThreads(checkInteger(n, 'n', 1, 256));
}

/** The number of native threads kernels use. */
export function getThreads(): number {
  return native.getThreads();
}

/** CPU features the native code detected at load time, and whether optimized kernels are in use. */
export interface CpuInfo {
  /** AVX2 integer and float vectors. */
  avx2: boolean;
  /** Fused multiply-add. */
  fma: boolean;
  /** f16 <-> f32 conversion instructions. */
  f16c: boolean;
  /** AVX-512 foundation. */
  avx512f: boolean;
  /** AVX-512 byte and word instructions. */
  avx512bw: boolean;
  /** The SIMD tier kernels use now ('baseline', 'avx2' or 'avx512'). */
  simd: 'baseline' | 'avx2' | 'avx512';
  /** The widest tier the CPU supports. */
  simdSupported: 'baseline' | 'avx2' | 'avx512';
}

/** What the CPU supports, as detected by the addon. */
export function cpuInfo(): CpuInfo {
  return native.cpuInfo();
}
