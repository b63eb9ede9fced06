// SPDX-License-Identifier: MIT
// qr, svd and svdBatched: the "done means" properties of issue 5 on many shapes (1xn, nx1, tall, wide, rank-deficient,
// zero, tiny and huge entries): ||A - U S Vt||_F / ||A||_F <= 1e-5 sqrt(max(m, n)), ||UᵀU - I||_max <= 1e-4 and the
// same for V, S descending and non-negative; singular values against scipy (fixtures); the optimized kernels against
// the scalar references; identical bits for 1 and 2 threads and every SIMD tier; bad inputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qr, qrSync, setThreads, svd, svdBatched, svdBatchedSync, svdSync, tensor } from '../../lib/index';
import { native } from '../../lib/native';
import { restoreThreadsAndSimdAfterAll, TIERS } from '../helpers/tiers';

const threads0 = restoreThreadsAndSimdAfterAll();

interface Fixture { name: string; shape: [number, number]; data: number[]; s: number[] }
const fixtures = (JSON.parse(readFileSync(join(__dirname, '../fixtures/svd-fixtures.json'), 'utf8')) as { cases: Fixture[] }).cases;

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2);
}

// A random m x n matrix of rank r (product of m x r and r x n factors), in f32.
function lowRank(m: number, n: number, r: number, seed: number): Float32Array {
  const x = rand(m * r, seed), y = rand(r * n, seed + 1), a = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < r; t++) s += x[i * r + t] * y[t * n + j];
    a[i * n + j] = s;
  }
  return a;
}

function transpose(a: Float32Array, m: number, n: number): Float32Array {
  const t = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// max |XᵀX - I| for X [rows, cols] (orthonormal columns), in f64.
function orthoColsErr(x: Float32Array, rows: number, cols: number): number {
  let worst = 0;
  for (let i = 0; i < cols; i++) for (let j = i; j < cols; j++) {
    let s = 0;
    for (let t = 0; t < rows; t++) s += x[t * cols + i] * x[t * cols + j];
    worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
  }
  return worst;
}
// max |X Xᵀ - I| for X [rows, cols] (orthonormal rows).
function orthoRowsErr(x: Float32Array, rows: number, cols: number): number {
  let worst = 0;
  for (let i = 0; i < rows; i++) for (let j = i; j < rows; j++) {
    let s = 0;
    for (let t = 0; t < cols; t++) s += x[i * cols + t] * x[j * cols + t];
    worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
  }
  return worst;
}

// Checks one thin SVD of a (m x n) with k triplets; returns the relative reconstruction error.
function checkSvd(a: Float32Array, m: number, n: number, u: Float32Array, s: Float32Array, vt: Float32Array, label: string): number {
  const k = s.length;
  let num = 0, den = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let x = 0;
    for (let t = 0; t < k; t++) x += u[i * k + t] * s[t] * vt[t * n + j];
    num += (a[i * n + j] - x) ** 2;
    den += a[i * n + j] ** 2;
  }
  const rel = den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  expect(rel, `${label}: ||A - U S Vt|| / ||A||`).toBeLessThanOrEqual(1e-5 * Math.sqrt(Math.max(m, n)));
  expect(orthoColsErr(u, m, k), `${label}: UᵀU - I`).toBeLessThanOrEqual(1e-4);
  expect(orthoRowsErr(vt, k, n), `${label}: V ᵀV - I`).toBeLessThanOrEqual(1e-4);
  for (let i = 0; i < k; i++) {
    expect(s[i], `${label}: S[${i}] >= 0`).toBeGreaterThanOrEqual(0);
    if (i > 0) expect(s[i], `${label}: S descending at ${i}`).toBeLessThanOrEqual(s[i - 1]);
  }
  return rel;
}

// Singular values against a reference: 1e-4 relative; values the reference finds numerically zero (<= 1e-5 sigma_max:
// the rank-deficient inputs are rounded to f32, so their "zero" singular values are noise of order eps sigma_max and no
// two f32 methods agree on them relatively) are compared absolutely, within 1e-4 sigma_max.
function checkValues(s: Float32Array, ref: ArrayLike<number>, label: string, rel = 1e-4): void {
  const smax = ref[0] ?? 0;
  for (let i = 0; i < s.length; i++) {
    const err = Math.abs(s[i] - ref[i]);
    if (ref[i] > 1e-5 * smax) expect(err / ref[i], `${label}: S[${i}] = ${s[i]} vs ${ref[i]}`).toBeLessThanOrEqual(rel);
    else expect(err, `${label}: numerically zero S[${i}] = ${s[i]} vs ${ref[i]}`).toBeLessThanOrEqual(1e-4 * smax);
  }
}

const SHAPES: [number, number, number?][] = [
  [1, 1], [1, 7], [7, 1], [1, 300], [300, 1], [2, 2], [5, 3], [3, 5], [16, 16], [31, 33], [33, 31], [64, 64], [65, 7],
  [7, 65], [100, 100], [257, 31], [31, 257], [130, 129], [200, 64, 3], [64, 200, 3], [90, 90, 45], [50, 50, 0],
];

describe('svd', () => {
  it('matches scipy singular values on the fixtures and satisfies the accuracy bounds (svd, svdBatched, reference)', () => {
    for (const f of fixtures) {
      const [m, n] = f.shape, k = Math.min(m, n);
      const a = Float32Array.from(f.data);
      const r = svdSync(tensor(a, [m, n]));
      expect(r.U.shape).toEqual([m, k]);
      expect(r.S.shape).toEqual([k]);
      expect(r.Vt.shape).toEqual([k, n]);
      checkSvd(a, m, n, r.U.data as Float32Array, r.S.data as Float32Array, r.Vt.data as Float32Array, `svd ${f.name}`);
      checkValues(r.S.data as Float32Array, f.s, `svd ${f.name}`);
      const b = svdBatchedSync(tensor(a, [1, m, n]));
      checkSvd(a, m, n, b.U.data as Float32Array, b.S.data as Float32Array, b.Vt.data as Float32Array, `svdBatched ${f.name}`);
      checkValues(b.S.data as Float32Array, f.s, `svdBatched ${f.name}`);
      const u = new Float32Array(m * k), s = new Float32Array(k), vt = new Float32Array(k * n);
      native.svdSync(a, 1, m, n, k, u, s, vt, 'ref');
      checkSvd(a, m, n, u, s, vt, `reference ${f.name}`);
      checkValues(s, f.s, `reference ${f.name}`);
    }
  });

  it(`satisfies the accuracy bounds on random shapes ${SHAPES.map(([m, n, r]) => `${m}x${n}${r !== undefined ? ` rank ${r}` : ''}`).join(', ')}`, () => {
    SHAPES.forEach(([m, n, r], idx) => {
      const k = Math.min(m, n);
      const a = r === undefined ? rand(m * n, 100 + idx) : lowRank(m, n, r, 100 + idx);
      const label = `${m}x${n}${r !== undefined ? ` rank ${r}` : ''}`;
      const full = svdSync(tensor(a, [m, n]));
      checkSvd(a, m, n, full.U.data as Float32Array, full.S.data as Float32Array, full.Vt.data as Float32Array, `svd ${label}`);
      const u = new Float32Array(m * k), s = new Float32Array(k), vt = new Float32Array(k * n);
      native.svdSync(a, 1, m, n, k, u, s, vt, 'ref');
      checkValues(full.S.data as Float32Array, s, `svd vs reference ${label}`, 1e-4);
      if (r !== undefined) for (let i = r; i < k; i++) expect(full.S.data[i], `${label} S[${i}]`).toBeLessThanOrEqual(1e-5 * (full.S.data as Float32Array)[0] + 1e-30);
      // rank option: the top triplets of the full decomposition's values.
      const rank = Math.max(1, Math.floor(k / 3));
      const top = svdSync(tensor(a, [m, n]), { rank });
      expect(top.U.shape).toEqual([m, rank]);
      expect(top.Vt.shape).toEqual([rank, n]);
      expect(bits(top.S.data as Float32Array).equals(bits((full.S.data as Float32Array).subarray(0, rank)))).toBe(true);
      expect(orthoColsErr(top.U.data as Float32Array, m, rank)).toBeLessThanOrEqual(1e-4);
      // batched: three matrices, each as the per-matrix decomposition.
      if (m * n <= 20000) {
        const three = new Float32Array(3 * m * n);
        three.set(a, 0);
        three.set(rand(m * n, 7 + idx), m * n);
        three.set(a.map((x) => x * 3), 2 * m * n);
        const b = svdBatchedSync(tensor(three, [3, m, n]));
        expect(b.U.shape).toEqual([3, m, k]);
        expect(b.S.shape).toEqual([3, k]);
        expect(b.Vt.shape).toEqual([3, k, n]);
        for (let t = 0; t < 3; t++) {
          const U = (b.U.data as Float32Array).subarray(t * m * k, (t + 1) * m * k);
          const S = (b.S.data as Float32Array).subarray(t * k, (t + 1) * k);
          const V = (b.Vt.data as Float32Array).subarray(t * k * n, (t + 1) * k * n);
          checkSvd(three.subarray(t * m * n, (t + 1) * m * n), m, n, U, S, V, `svdBatched ${label} #${t}`);
        }
        checkValues((b.S.data as Float32Array).subarray(0, k), s, `svdBatched vs reference ${label}`, 1e-4);
      }
    });
  });

  it('agrees with the reference on large odd shapes (1030x40, 40x1030, 301x300)', () => {
    for (const [m, n] of [[1030, 40], [40, 1030], [301, 300]]) {
      const k = Math.min(m, n);
      const a = rand(m * n, m + n);
      const r = svdSync(tensor(a, [m, n]));
      checkSvd(a, m, n, r.U.data as Float32Array, r.S.data as Float32Array, r.Vt.data as Float32Array, `svd ${m}x${n}`);
      const u = new Float32Array(m * k), s = new Float32Array(k), vt = new Float32Array(k * n);
      native.svdSync(a, 1, m, n, k, u, s, vt, 'ref');
      checkValues(r.S.data as Float32Array, s, `svd vs reference ${m}x${n}`, 1e-4);
    }
  });

  it('gives the same bits for 1 and 2 threads and every SIMD tier', () => {
    const a = rand(300 * 200, 5), batch = rand(40 * 24 * 17, 6);
    let first: Buffer[] | undefined;
    for (const tier of TIERS) {
      native.setSimd(tier);
      for (const t of [1, 2]) {
        setThreads(t);
        const r = svdSync(tensor(a, [300, 200]));
        const w = svdSync(tensor(a, [200, 300]));
        const b = svdBatchedSync(tensor(batch, [40, 24, 17]));
        const got = [r.U, r.S, r.Vt, w.U, w.S, w.Vt, b.U, b.S, b.Vt].map((x) => Buffer.from(bits(x.data as Float32Array)));
        if (!first) first = got;
        else got.forEach((g, i) => expect(g.equals(first![i]), `${tier} ${t} threads, output ${i}`).toBe(true));
      }
    }
    native.setSimd(native.cpuInfo().simdSupported);
    setThreads(threads0);
  });

  it('moves small row scales into the rows (scale guard 2^-1: often) with the same bits everywhere and accurate results', () => {
    const a = rand(150 * 90, 15), batch = rand(20 * 40 * 33, 16);
    const old = native.svdSetScaleGuard(1);
    try {
      let first: Buffer[] | undefined;
      for (const tier of TIERS) {
        native.setSimd(tier);
        for (const t of [1, 2]) {
          setThreads(t);
          const r = svdSync(tensor(a, [150, 90]));
          const b = svdBatchedSync(tensor(batch, [20, 40, 33]));
          checkSvd(a, 150, 90, r.U.data as Float32Array, r.S.data as Float32Array, r.Vt.data as Float32Array, `guard svd ${tier} ${t}`);
          const U = b.U.data as Float32Array, S = b.S.data as Float32Array, V = b.Vt.data as Float32Array;
          checkSvd(batch.subarray(19 * 40 * 33), 40, 33, U.subarray(19 * 40 * 33), S.subarray(19 * 33), V.subarray(19 * 33 * 33), `guard batched ${tier} ${t}`);
          const got = [r.U, r.S, r.Vt, b.U, b.S, b.Vt].map((x) => Buffer.from(bits(x.data as Float32Array)));
          if (!first) first = got;
          else got.forEach((g, i) => expect(g.equals(first![i]), `${tier} ${t} threads, output ${i}`).toBe(true));
        }
      }
      // Against the default guard: the same decomposition to rounding.
      native.svdSetScaleGuard(0);
      native.setSimd(native.cpuInfo().simdSupported);
      const r0 = svdSync(tensor(a, [150, 90]));
      checkValues(r0.S.data as Float32Array, Array.from(svdSyncGuarded(a)), 'guard vs default', 1e-5);
    } finally {
      native.svdSetScaleGuard(old);
      native.setSimd(native.cpuInfo().simdSupported);
      setThreads(threads0);
    }
    function svdSyncGuarded(x: Float32Array): Float32Array {
      native.svdSetScaleGuard(1);
      try {
        return svdSync(tensor(x, [150, 90])).S.data as Float32Array;
      } finally {
        native.svdSetScaleGuard(0);
      }
    }
  });

  it('handles zero matrices and entries near 1e30 and 1e-30', () => {
    for (const [m, n] of [[5, 3], [3, 5], [1, 4], [40, 40]]) {
      const z = new Float32Array(m * n);
      const r = svdSync(tensor(z, [m, n]));
      checkSvd(z, m, n, r.U.data as Float32Array, r.S.data as Float32Array, r.Vt.data as Float32Array, `zero ${m}x${n}`);
      expect(Array.from(r.S.data as Float32Array).every((x) => x === 0)).toBe(true);
      const b = svdBatchedSync(tensor(z, [1, m, n]));
      checkSvd(z, m, n, b.U.data as Float32Array, b.S.data as Float32Array, b.Vt.data as Float32Array, `zero batched ${m}x${n}`);
    }
    // Exact zero columns: few (completed by Gram-Schmidt) and many (completed through a Householder QR).
    for (const zeros of [5, 30]) {
      const m = 60, n = 40, a = rand(m * n, 21);
      for (let i = 0; i < m; i++) for (let j = 0; j < zeros; j++) a[i * n + ((j * 7) % n)] = 0;
      for (const [mm, nn, data] of [[m, n, a], [n, m, transpose(a, m, n)]] as [number, number, Float32Array][]) {
        const r = svdSync(tensor(data, [mm, nn]));
        checkSvd(data, mm, nn, r.U.data as Float32Array, r.S.data as Float32Array, r.Vt.data as Float32Array, `${zeros} zero columns ${mm}x${nn}`);
        const b = svdBatchedSync(tensor(data, [1, mm, nn]));
        checkSvd(data, mm, nn, b.U.data as Float32Array, b.S.data as Float32Array, b.Vt.data as Float32Array, `${zeros} zero columns batched ${mm}x${nn}`);
      }
    }
    for (const scale of [1e30, 1e-30, 3e37]) {
      const base = rand(20 * 12, 9), a = base.map((x) => x * scale);
      const r = svdSync(tensor(a, [20, 12]));
      const r1 = svdSync(tensor(base, [20, 12]));
      checkSvd(a, 20, 12, r.U.data as Float32Array, r.S.data as Float32Array, r.Vt.data as Float32Array, `scale ${scale}`);
      checkValues(r.S.data as Float32Array, Array.from(r1.S.data as Float32Array, (x) => x * scale), `scale ${scale}`, 1e-5);
    }
  });

  it('ends in ERR_NO_CONVERGENCE at the sweep cap (never an endless loop)', async () => {
    const a = tensor(rand(20 * 20, 4), [20, 20]);
    const old = native.svdSetMaxSweeps(1);
    try {
      expect(() => svdSync(a)).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE' }));
      expect(() => svdBatchedSync(tensor(a.data as Float32Array, [1, 20, 20]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE' }));
      await expect(svd(a)).rejects.toMatchObject({ code: 'ERR_NO_CONVERGENCE' });
      const u = new Float32Array(400), s = new Float32Array(20), vt = new Float32Array(400);
      expect(() => native.svdSync(a.data as Float32Array, 1, 20, 20, 20, u, s, vt, 'ref')).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE' }));
    } finally {
      native.svdSetMaxSweeps(old);
    }
    expect(svdSync(a).S.shape).toEqual([20]);
  });

  it('runs async on the pool, converts f16/bf16/f64, and refuses bad input', async () => {
    const a = tensor(rand(12 * 8, 3), [12, 8]);
    const r = await svd(a, { rank: 3 });
    const s = svdSync(a, { rank: 3 });
    expect(bits(r.S.data as Float32Array).equals(bits(s.S.data as Float32Array))).toBe(true);
    const b = await svdBatched(tensor(rand(2 * 12 * 8, 3), [2, 12, 8]));
    expect(b.S.shape).toEqual([2, 8]);
    expect(bits(svdSync(a.to('bf16')).S.data as Float32Array).equals(bits(svdSync(a.to('bf16').to('f32')).S.data as Float32Array))).toBe(true);
    expect(svdSync(a.to('f64')).S.dtype).toBe('f32');
    const nan = rand(12, 1);
    nan[5] = NaN;
    expect(() => svdSync(tensor(nan, [3, 4]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(() => svdBatchedSync(tensor(nan, [1, 3, 4]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    await expect(svd(tensor(nan.map((x, i) => (i === 5 ? Infinity : x)), [3, 4]))).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
    expect(() => svdSync(a, { rank: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => svdSync(a, { rank: 9 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => svdSync(a, { rank: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => svdSync(a, { rank: '2' } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => svdSync(a, { k: 2 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => svdSync(tensor(rand(24, 1), [2, 3, 4]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => svdSync(tensor(new Float32Array(0), [0, 4]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => svdBatchedSync(a)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(svdBatchedSync(tensor(new Float32Array(0), [0, 3, 4])).S.shape).toEqual([0, 3]);
    expect(() => svdSync(tensor(new Int32Array(6), [2, 3]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => svdSync({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const ac = new AbortController();
    ac.abort();
    await expect(svd(a, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    // Aborted while running: the Jacobi sweeps stop at the next round.
    const late = new AbortController();
    const running = svd(tensor(rand(600 * 600, 8), [600, 600]), { signal: late.signal });
    setTimeout(() => late.abort(), 20);
    await expect(running).rejects.toMatchObject({ code: 'ABORT_ERR' });
    await expect(svdBatched(tensor(rand(2 * 12 * 8, 3), [2, 12, 8]), { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});

describe('qr', () => {
  function checkQr(a: Float32Array, m: number, n: number, q: Float32Array, r: Float32Array, label: string): void {
    const k = Math.min(m, n);
    let num = 0, den = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let x = 0;
      for (let t = 0; t < k; t++) x += q[i * k + t] * r[t * n + j];
      num += (a[i * n + j] - x) ** 2;
      den += a[i * n + j] ** 2;
    }
    const rel = den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    expect(rel, `${label}: ||A - QR|| / ||A||`).toBeLessThanOrEqual(1e-5 * Math.sqrt(Math.max(m, n)));
    expect(orthoColsErr(q, m, k), `${label}: QᵀQ - I`).toBeLessThanOrEqual(1e-4);
    for (let i = 0; i < k; i++) {
      expect(r[i * n + i], `${label}: R[${i}][${i}] >= 0`).toBeGreaterThanOrEqual(0);
      for (let j = 0; j < i; j++) expect(r[i * n + j], `${label}: R[${i}][${j}] below the diagonal`).toBe(0);
    }
  }

  const QR_SHAPES: [number, number, number?][] = [[1, 1], [1, 7], [7, 1], [5, 3], [3, 5], [31, 33], [33, 31], [64, 64], [65, 130],
    [257, 31], [31, 257], [200, 150], [130, 129, 0], [100, 60, 7], [60, 100, 7], [1031, 70]];
  it(`blocked and reference: A = QR, orthonormal Q, R upper triangular with a non-negative diagonal; ${QR_SHAPES.map(([m, n, r]) => `${m}x${n}${r !== undefined ? ` rank ${r}` : ''}`).join(', ')}`, () => {
    QR_SHAPES.forEach(([m, n, rk], idx) => {
      const k = Math.min(m, n);
      const a = rk === undefined ? rand(m * n, 300 + idx) : lowRank(m, n, rk, 300 + idx);
      const label = `${m}x${n}${rk !== undefined ? ` rank ${rk}` : ''}`;
      const res = qrSync(tensor(a, [m, n]));
      expect(res.Q.shape).toEqual([m, k]);
      expect(res.R.shape).toEqual([k, n]);
      checkQr(a, m, n, res.Q.data as Float32Array, res.R.data as Float32Array, `qr ${label}`);
      const q = new Float32Array(m * k), r = new Float32Array(k * n);
      native.qrSync(a, m, n, q, r, 'ref');
      checkQr(a, m, n, q, r, `reference ${label}`);
      if (rk === undefined) {
        // Full rank: the factorization with diag(R) >= 0 is unique, so both agree to rounding.
        let worst = 0;
        (res.Q.data as Float32Array).forEach((x, i) => { worst = Math.max(worst, Math.abs(x - q[i])); });
        expect(worst, `qr vs reference Q ${label}`).toBeLessThanOrEqual(1e-3);
      }
    });
  });

  it('gives the same bits for 1 and 2 threads and every SIMD tier; async, scaling and bad inputs', async () => {
    const a = rand(500 * 300, 11);
    let first: Buffer[] | undefined;
    for (const tier of TIERS) {
      native.setSimd(tier);
      for (const t of [1, 2]) {
        setThreads(t);
        const r = qrSync(tensor(a, [500, 300]));
        const got = [r.Q, r.R].map((x) => Buffer.from(bits(x.data as Float32Array)));
        if (!first) first = got;
        else got.forEach((g, i) => expect(g.equals(first![i]), `${tier} ${t} threads`).toBe(true));
      }
    }
    native.setSimd(native.cpuInfo().simdSupported);
    setThreads(threads0);
    const small = tensor(rand(9 * 6, 2), [9, 6]);
    const ra = await qr(small), rs = qrSync(small);
    expect(bits(ra.R.data as Float32Array).equals(bits(rs.R.data as Float32Array))).toBe(true);
    for (const scale of [1e30, 1e-30]) {
      const big = (small.data as Float32Array).map((x) => x * scale);
      const r = qrSync(tensor(big, [9, 6]));
      checkQr(big, 9, 6, r.Q.data as Float32Array, r.R.data as Float32Array, `scale ${scale}`);
    }
    const z = qrSync(tensor(new Float32Array(12), [4, 3]));
    checkQr(new Float32Array(12), 4, 3, z.Q.data as Float32Array, z.R.data as Float32Array, 'zero');
    const nan = rand(12, 1);
    nan[3] = NaN;
    expect(() => qrSync(tensor(nan, [3, 4]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(() => qrSync(tensor(rand(8, 1), [2, 2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => qrSync(tensor(new Int32Array(4), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(qrSync(tensor(new Float32Array(0), [0, 3])).Q.shape).toEqual([0, 0]);
    const ac = new AbortController();
    ac.abort();
    await expect(qr(small, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});
