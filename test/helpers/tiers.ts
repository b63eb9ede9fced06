// SPDX-License-Identifier: MIT
/** The SIMD tiers this machine can run, and a hook that restores the thread count and tier after a test file. */
import { afterAll } from 'vitest';
import { getThreads, setThreads } from '../../lib/index';
import { native } from '../../lib/native';

export const ALL_TIERS = ['baseline', 'avx2', 'avx512'] as const;
/** Every tier up to the widest this CPU supports. */
export const TIERS = ALL_TIERS.slice(0, ALL_TIERS.indexOf(native.cpuInfo().simdSupported) + 1);

/** Registers an afterAll that puts back the thread count and the widest SIMD tier; returns the thread count. */
export function restoreThreadsAndSimdAfterAll(): number {
  const threads0 = getThreads();
  afterAll(() => {
    setThreads(threads0);
    native.setSimd(native.cpuInfo().simdSupported);
  });
  return threads0;
}
