// SPDX-License-Identifier: MIT
// syrk, cholesky, choleskyInverse, triangularSolve: the optimized kernels against their scalar references on odd
// sizes (syrk bit for bit; the factorizations within rounding), bit-identical across SIMD tiers and thread counts,
// reconstruction checks in f64 (L Lᵀ = A, A inv = I, op(A) X = B), numpy/scipy fixtures, and every bad input.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cholesky, choleskyInverse, choleskyInverseSync, choleskySync, matmulSync, setThreads, syrk, syrkSync,
  tensor, triangularSolve, triangularSolveSync, type Tensor,
} from '../../lib/index';
import { native } from '../../lib/native';
import { restoreThreadsAndSimdAfterAll, TIERS } from '../helpers/tiers';

const threads0 = restoreThreadsAndSimdAfterAll();

type F = Float32Array | Float64Array;
function rand(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2);
}
const bits = (a: F) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const asF = (d: Float64Array, f64: boolean): F => (f64 ? d : Float32Array.from(d));
const eps = (f64: boolean) => (f64 ? 2 ** -52 : 2 ** -23);

/** A GPTQ-like SPD matrix: X Xᵀ / k + 0.05 I, X n x k (k = n + 8), built in f64 with matmulSync. */
function spd(n: number, seed: number): Float64Array {
  const k = n + 8;
  const x = tensor(rand(n * k, seed), [n, k]);
  const h = matmulSync(x, x, { transB: true }).data as Float64Array;
  for (let i = 0; i < n * n; i++) h[i] /= k;
  for (let i = 0; i < n; i++) h[i * n + i] += 0.05;
  return h;
}
/** op(a) @ op(b) in f64 from any float arrays. */
function mm64(a: F, ar: number, ac: number, b: F, br: number, bc: number, ta = false, tb = false): Float64Array {
  return matmulSync(tensor(Float64Array.from(a), [ar, ac]), tensor(Float64Array.from(b), [br, bc]), { transA: ta, transB: tb }).data as Float64Array;
}
const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

/**
 * Runs fn on every tier (only the widest when `big`: the portable tier is slow and shares the code paths) and on 1
 * and 2 threads; all results must have the same bits; returns one.
 */
function sameEverywhere(fn: () => Tensor, what: string, big = false): F {
  let first: F | undefined;
  for (const tier of big ? TIERS.slice(-1) : TIERS) {
    native.setSimd(tier);
    for (const t of [1, 2]) {
      setThreads(t);
      const d = fn().data as F;
      if (!first) first = d;
      else expect(bits(d).equals(bits(first)), `${what} ${tier} ${t}T`).toBe(true);
    }
  }
  native.setSimd(native.cpuInfo().simdSupported);
  setThreads(threads0);
  return first!;
}

describe('syrk', () => {
  it('equals its scalar reference and matmul(a, aᵀ) bit for bit, f32 and f64, on every tier and thread count', () => {
    for (const f64 of [false, true])
      for (const [n, k] of [[1, 1], [7, 31], [33, 7], [31, 257], [257, 33], [100, 130]] as const)
        for (const trans of [false, true]) {
          const d = asF(rand(n * k, n * 31 + k), f64);
          const a = tensor(d, trans ? [k, n] : [n, k]);
          const ref = f64 ? new Float64Array(n * n) : new Float32Array(n * n);
          native.syrkSync(d, n, k, trans, ref, 'ref');
          const c = sameEverywhere(() => syrkSync(a, { trans }), `syrk ${n}x${k} ${trans} ${f64}`);
          expect(bits(c).equals(bits(ref)), `ref ${n} ${k} ${trans} ${f64}`).toBe(true);
          const viaMatmul = matmulSync(a, a, trans ? { transA: true } : { transB: true }).data as F;
          expect(bits(c).equals(bits(viaMatmul))).toBe(true);
        }
  });

  it('converts bf16 to f32, runs async, and refuses bad input', async () => {
    const a = tensor(Float32Array.from(rand(12, 5)), [3, 4]);
    const c = await syrk(a.to('bf16'));
    expect(c.dtype).toBe('f32');
    expect(bits(c.data as F).equals(bits(syrkSync(a.to('bf16').to('f32')).data as F))).toBe(true);
    expect(() => syrkSync(tensor(new Float32Array([1, NaN]), [1, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(() => syrkSync(tensor(new Int32Array(4), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => syrkSync(tensor(new Float32Array(4), [4]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => syrkSync(a, { trans: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('cholesky', () => {
  const sizes = [1, 7, 31, 33, 100, 257, 1030];
  it(`matches the scalar reference within rounding and reconstructs A (L Lᵀ in f64), f32 and f64, n = ${sizes.join(', ')} (1030 in f32)`, () => {
    for (const f64 of [false, true])
      for (const n of sizes.filter((s) => s < 1000 || !f64)) {
        const h = spd(n, n + (f64 ? 1 : 2));
        const d = asF(h, f64);
        const l = sameEverywhere(() => choleskySync(tensor(d, [n, n])), `cholesky ${n} ${f64}`, n > 500);
        let upperNonZero = 0;
        for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (l[i * n + j] !== 0) upperNonZero++;
        expect(upperNonZero).toBe(0);
        if (n <= 257) {
          const ref = f64 ? new Float64Array(n * n) : new Float32Array(n * n);
          native.choleskySync(d, n, false, ref, 'ref');
          expect(maxDiff(l, ref) / maxAbs(ref), `${n} ${f64}`).toBeLessThan(4 * n * eps(f64));
        }
        const llt = mm64(l, n, n, l, n, n, false, true);
        expect(maxDiff(llt, asF(h, f64)) / maxAbs(h), `reconstruction ${n} ${f64}`).toBeLessThan(4 * n * eps(f64));
        // upper: U = Lᵀ exactly
        const u = choleskySync(tensor(d, [n, n]), { upper: true }).data as F;
        let mismatches = 0;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (!Object.is(u[i * n + j], l[j * n + i])) mismatches++;
        expect(mismatches, 'U = Lᵀ').toBe(0);
      }
  });

  it('reads only the lower triangle', () => {
    const n = 40;
    const h = Float32Array.from(spd(n, 9));
    const junk = h.slice();
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) junk[i * n + j] = j % 2 ? NaN : 1e30;
    expect(bits(choleskySync(tensor(junk, [n, n])).data as F).equals(bits(choleskySync(tensor(h, [n, n])).data as F))).toBe(true);
  });

  it('matches numpy / scipy (fixtures)', () => {
    const g = JSON.parse(readFileSync(join(__dirname, '../fixtures/factor-golden.json'), 'utf8'));
    for (const c of g.cases) {
      const n = c.n as number;
      const a = tensor(Float64Array.from(c.a), [n, n]);
      const l = choleskySync(a).data as Float64Array;
      expect(maxDiff(l, c.l), `L ${n}`).toBeLessThan(1e-12 * maxAbs(c.l));
      const inv = choleskyInverseSync(tensor(l, [n, n])).data as Float64Array;
      expect(maxDiff(inv, c.inverse), `inverse ${n}`).toBeLessThan(1e-10 * maxAbs(c.inverse));
      const l32 = choleskySync(a.to('f32')).data as Float32Array;
      expect(maxDiff(l32, c.l), `L f32 ${n}`).toBeLessThan(1e-5 * maxAbs(c.l) * Math.sqrt(n));
      const b = tensor(Float64Array.from(c.b), [n, 3]);
      expect(maxDiff(triangularSolveSync(tensor(l, [n, n]), b).data as F, c.solveL)).toBeLessThan(1e-10 * maxAbs(c.solveL));
      expect(maxDiff(triangularSolveSync(tensor(l, [n, n]), b, { transpose: true }).data as F, c.solveLt)).toBeLessThan(1e-10 * maxAbs(c.solveLt));
    }
    for (const c of g.notPositiveDefinite) {
      const a = tensor(Float64Array.from(c.a), [c.n, c.n]);
      for (const t of [a, a.to('f32')])
        expect(() => choleskySync(t)).toThrow(expect.objectContaining({
          code: 'ERR_NO_CONVERGENCE', order: c.order, message: expect.stringContaining(`leading minor of order ${c.order} is not positive definite`),
        }));
    }
  });

  it('refuses bad input with its code, never returning NaN', async () => {
    // Not positive definite at order 2 (and order 1 for a negative first pivot), also inside a blocked factorization.
    expect(() => choleskySync(tensor(new Float32Array([1, 2, 2, 1]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE', order: 2 }));
    expect(() => choleskySync(tensor(new Float64Array([-1, 0, 0, 1]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE', order: 1 }));
    const n = 300;
    const h = spd(n, 77);
    for (let i = 0; i < n; i++) h[200 * n + i] = h[i * n + 200] = 0;  // row/column 200 zero: minor 201 singular
    for (const f64 of [false, true])
      expect(() => choleskySync(tensor(asF(h, f64), [n, n]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE', order: 201 }));
    await expect(cholesky(tensor(new Float32Array([0]), [1, 1]))).rejects.toMatchObject({ code: 'ERR_NO_CONVERGENCE', order: 1 });
    expect(() => choleskySync(tensor(new Float32Array([1, 0, NaN, 1]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 2 }));
    expect(() => choleskySync(tensor(new Float64Array([1, 0, 0, Infinity]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(() => choleskySync(tensor(new Float32Array(6), [2, 3]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => choleskySync(tensor(new Float32Array(4), [4]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => choleskySync(tensor(new Int8Array(4), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => choleskySync(tensor(new Float32Array(4), [2, 2]), { lower: true } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => choleskySync({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // Overflow inside the factorization of finite input is a failure, not an infinite / NaN factor.
    expect(() => choleskySync(tensor(new Float32Array([3e38, 3e38, 3e38, 3e38]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE' }));
    expect(choleskySync(tensor(new Float32Array(0), [0, 0])).shape).toEqual([0, 0]);
    const ac = new AbortController();
    ac.abort();
    await expect(cholesky(tensor(new Float32Array([1]), [1, 1]), { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });

  it('async results equal the sync ones; f16 runs in f32', async () => {
    const n = 70;
    const a = tensor(Float32Array.from(spd(n, 3)), [n, n]);
    expect(bits((await cholesky(a, { upper: true })).data as F).equals(bits(choleskySync(a, { upper: true }).data as F))).toBe(true);
    const l = choleskySync(a);
    expect(bits((await choleskyInverse(l)).data as F).equals(bits(choleskyInverseSync(l).data as F))).toBe(true);
    expect(choleskySync(a.to('f16')).dtype).toBe('f32');
  });
});

describe('choleskyInverse', () => {
  const sizes = [1, 7, 31, 33, 257, 1030];
  it(`A inv = I in f64, the scalar reference within rounding, upper = lower, n = ${sizes.join(', ')} (1030 in f32)`, () => {
    for (const f64 of [false, true])
      for (const n of sizes.filter((s) => s < 1000 || !f64)) {
        const h = spd(n, n + 5);
        const l = choleskySync(tensor(asF(h, f64), [n, n]));
        const inv = sameEverywhere(() => choleskyInverseSync(l), `inverse ${n} ${f64}`, n > 500);
        let asymmetric = 0;
        for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) if (!Object.is(inv[i * n + j], inv[j * n + i])) asymmetric++;
        expect(asymmetric).toBe(0);
        const u = choleskySync(tensor(asF(h, f64), [n, n]), { upper: true });
        expect(bits(choleskyInverseSync(u, { upper: true }).data as F).equals(bits(inv))).toBe(true);
        // A inv - I relative to cond-scaled rounding: |A| |inv| n eps.
        const ai = mm64(asF(h, f64), n, n, inv, n, n);
        for (let i = 0; i < n; i++) ai[i * n + i] -= 1;
        const bound = 8 * n * eps(f64) * maxAbs(h) * maxAbs(inv) * Math.sqrt(n);
        expect(maxAbs(ai), `A inv ${n} ${f64}`).toBeLessThan(bound);
        if (n <= 257) {
          const ref = f64 ? new Float64Array(n * n) : new Float32Array(n * n);
          native.choleskyInverseSync(l.data as F, n, false, ref, 'ref');
          expect(maxDiff(inv, ref) / maxAbs(ref), `ref ${n} ${f64}`).toBeLessThan(16 * n * eps(f64) * maxAbs(h) * maxAbs(ref));
        }
      }
  });

  it('refuses a singular, non-finite or non-square factor', () => {
    expect(() => choleskyInverseSync(tensor(new Float32Array([1, 0, 3, 0]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE', index: 1 }));
    expect(() => choleskyInverseSync(tensor(new Float32Array([1, 0, NaN, 1]), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    // The other triangle is not read.
    expect(Array.from(choleskyInverseSync(tensor(new Float32Array([2, NaN, 0, 1]), [2, 2])).data as F)).toEqual([0.25, 0, 0, 1]);
    expect(() => choleskyInverseSync(tensor(new Float64Array(6), [3, 2]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
  });
});

describe('triangularSolve', () => {
  /** A well-conditioned triangular matrix stored in a full square (the other triangle random junk). */
  function tri(nn: number, seed: number): Float64Array {
    const a = rand(nn * nn, seed);
    for (let i = 0; i < nn * nn; i++) a[i] /= Math.sqrt(nn);
    for (let i = 0; i < nn; i++) a[i * nn + i] = (a[i * nn + i] >= 0 ? 1 : -1) * (1 + Math.abs(a[i * nn + i]));
    return a;
  }
  const shapes: [number, number][] = [[1, 1], [7, 31], [33, 7], [257, 40], [40, 257]];
  it(`op(A) X = B in f64 and the scalar reference, all 16 variants, f32 and f64, bit-identical across tiers/threads; ${shapes.map((s) => s.join('x')).join(', ')}`, () => {
    for (const f64 of [false, true])
      for (const [m, n] of shapes)
        for (const left of [true, false])
          for (const upper of [false, true])
            for (const transpose of [false, true])
              for (const unitDiagonal of [false, true]) {
                const N = left ? m : n;
                const a64 = tri(N, m * 3 + n), b64 = rand(m * n, m + 7 * n);
                const a = asF(a64, f64), b = asF(b64, f64);
                const opts = { left, upper, transpose, unitDiagonal };
                const what = `${m}x${n} ${JSON.stringify(opts)} ${f64}`;
                const x = sameEverywhere(() => triangularSolveSync(tensor(a, [N, N]), tensor(b, [m, n]), opts), what, m * n * N > 1e7);
                // op(A) as an explicit dense triangular matrix in f64
                const t = new Float64Array(N * N);
                for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
                  const inTri = upper ? j >= i : j <= i;
                  if (inTri) t[i * N + j] = i === j && unitDiagonal ? 1 : a[i * N + j];
                }
                const prod = left ? mm64(t, N, N, x, m, n, transpose) : mm64(x, m, n, t, N, N, false, transpose);
                const scale = maxAbs(x) * maxAbs(t) * N;
                expect(maxDiff(prod, b) / scale, what).toBeLessThan(4 * eps(f64));
                if (m * n * N <= 1e7) {
                  const ref = f64 ? new Float64Array(m * n) : new Float32Array(m * n);
                  native.triangularSolveSync(a, b, m, n, left, upper, transpose, unitDiagonal, ref, 'ref');
                  expect(maxDiff(x, ref) / maxAbs(ref), `ref ${what}`).toBeLessThan(8 * N * eps(f64));
                }
              }
  });

  it('refuses a singular matrix, non-finite values, mismatched shapes and bad options', async () => {
    const a = tensor(new Float32Array([1, 0, 2, 0]), [2, 2]), b = tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    expect(() => triangularSolveSync(a, b)).toThrow(expect.objectContaining({ code: 'ERR_NO_CONVERGENCE', index: 1, message: expect.stringContaining('singular') }));
    expect(Array.from(triangularSolveSync(a, b, { unitDiagonal: true }).data as F)).toEqual([1, 2, 1, 0]);
    expect(() => triangularSolveSync(tensor(new Float32Array([1, 0, NaN, 1]), [2, 2]), b)).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(Array.from(triangularSolveSync(tensor(new Float32Array([1, NaN, 0, 1]), [2, 2]), b).data as F)).toEqual([1, 2, 3, 4]);
    expect(() => triangularSolveSync(tensor(new Float32Array([1, 0, 0, 1]), [2, 2]), tensor(new Float32Array([1, Infinity]), [2, 1]))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(() => triangularSolveSync(tensor(new Float32Array(9), [3, 3]), b)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => triangularSolveSync(tensor(new Float32Array(9), [3, 3]), tensor(new Float32Array(6), [2, 3]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(triangularSolveSync(tensor(new Float32Array(9).fill(1), [3, 3]), tensor(new Float32Array(6), [2, 3]), { left: false }).shape).toEqual([2, 3]);
    expect(() => triangularSolveSync(tensor(new Float32Array(6), [2, 3]), b)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => triangularSolveSync(a, tensor(new Uint8Array(4), [2, 2]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => triangularSolveSync(a, b, { lower: true } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => triangularSolveSync(a, b, { left: 'yes' } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const l = tensor(new Float64Array([2, 0, 1, 4]), [2, 2]), r = tensor(new Float64Array([2, 9]), [2, 1]);
    const x = await triangularSolve(l, r);
    expect(x.dtype).toBe('f64');
    expect(Array.from(x.data as F)).toEqual([1, 2]);
    expect(triangularSolveSync(l, r.to('f32')).dtype).toBe('f32');
    const ac = new AbortController();
    ac.abort();
    await expect(triangularSolve(l, r, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});
