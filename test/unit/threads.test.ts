// SPDX-License-Identifier: MIT
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpuInfo, getThreads, setThreads } from '../../lib/index';
import { repoRoot } from '../helpers/paths';

const before = getThreads();
afterAll(() => setThreads(before));

describe('thread pool', () => {
  it('setThreads/getThreads round-trip and validate their argument', () => {
    setThreads(3);
    expect(getThreads()).toBe(3);
    setThreads(1);
    expect(getThreads()).toBe(1);
    for (const bad of [0, 257, 1.5, NaN, -1]) expect(() => setThreads(bad)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => setThreads('2' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('WEIGHTSMITH_THREADS sets the default; a malformed value falls back to the core count', () => {
    const script = `const ws = require(${JSON.stringify(path.join(repoRoot, 'dist/cjs/index.js'))}); console.log(ws.getThreads())`;
    const run = (env: string | undefined) => Number(execFileSync(process.execPath, ['-e', script], {
      encoding: 'utf8', env: { ...process.env, WEIGHTSMITH_THREADS: env },
    }).trim());
    expect(run('3')).toBe(3);
    expect(run('1')).toBe(1);
    const cores = run('nonsense');
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(run('0')).toBe(cores);
  });

  it('reports CPU features and the SIMD tier in use', () => {
    const info = cpuInfo();
    expect(['baseline', 'avx2', 'avx512']).toContain(info.simd);
    expect(info.simd).toBe(info.simdSupported);
    if (info.simd !== 'baseline') expect(info.avx2 && info.fma && info.f16c).toBe(true);
  });
});
