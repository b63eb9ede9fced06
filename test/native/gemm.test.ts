// SPDX-License-Identifier: MIT
// sgemm: every SIMD tier and thread count against the scalar reference (bit for bit: both are f32 FMA chains in
// k order), against an f64 product within f32 rounding, transposes, odd shapes and bad inputs; the same for the f64
// product (dgemm) that matmul runs when both inputs are f64.
import { describe, expect, it } from 'vitest';
import { matmul, matmulSync, setThreads, tensor } from '../../lib/index';
import { native } from '../../lib/native';
import { restoreThreadsAndSimdAfterAll, TIERS } from '../helpers/tiers';

restoreThreadsAndSimdAfterAll();

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2);
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('matmul', () => {
  // Row counts cover every remainder mod 8 (the AVX-512 edge tiles of 1-8 rows) and column counts one, two and
  // three 16-lane vectors, full and masked; k over 192 gives several k-panels (C reloaded). [300, 74, 400] and
  // [1100, 64, 74] are tiles spanning all columns (A packed per tile), [74, 1000, 300] and [30, 600, 200] tiles
  // spanning all rows (B packed per tile), [300, 500, 450] both operands packed up front: the skinny products of a
  // randomized SVD (A Q, A^T Q, Q^T A, Q Ub) at a smaller size.
  const shapes: [number, number, number][] = [[1, 1, 1], [7, 31, 33], [33, 7, 257], [257, 33, 31], [100, 260, 130], [17, 400, 391], [16, 48, 384], [9, 385, 770],
    [300, 74, 400], [1100, 64, 74], [74, 1000, 300], [30, 600, 200], [35, 95, 20], [45, 110, 9], [300, 500, 450]];
  it(`equals the scalar reference bit for bit: every tier, 1 and 2 threads, transposes; shapes ${shapes.map((s) => s.join('x')).join(', ')}`, () => {
    for (const [m, n, k] of shapes) {
      const a = rand(m * k, m * 7 + k), b = rand(k * n, n * 13 + k);
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
        const A = tensor(a, ta ? [k, m] : [m, k]), B = tensor(b, tb ? [n, k] : [k, n]);
        const ref = new Float32Array(m * n);
        native.matmulSync(a, b, m, n, k, ta, tb, ref, 'ref');
        for (const tier of TIERS) {
          native.setSimd(tier);
          for (const t of [1, 2]) {
            setThreads(t);
            const c = matmulSync(A, B, { transA: ta, transB: tb });
            expect(c.shape).toEqual([m, n]);
            expect(bits(c.data as Float32Array).equals(bits(ref)), `${m}x${n}x${k} ${ta} ${tb} ${tier} ${t}T`).toBe(true);
          }
        }
      }
    }
  });

  it('equals the reference for concurrent async products of different shapes (shared packing buffers)', async () => {
    const shapes: [number, number, number][] = [[300, 500, 450], [74, 1000, 300], [520, 90, 260], [64, 64, 64]];
    const inputs = shapes.map(([m, n, k], i) => ({ m, n, k, a: rand(m * k, 100 + i), b: rand(k * n, 200 + i) }));
    setThreads(2);
    for (let round = 0; round < 2; round++) {
      const outs = await Promise.all(inputs.map(({ m, n, k, a, b }) => matmul(tensor(a, [m, k]), tensor(b, [k, n]))));
      inputs.forEach(({ m, n, k, a, b }, i) => {
        const ref = new Float32Array(m * n);
        native.matmulSync(a, b, m, n, k, false, false, ref, 'ref');
        expect(bits(outs[i].data as Float32Array).equals(bits(ref)), `${m}x${n}x${k}`).toBe(true);
      });
    }
  });

  it('is within f32 rounding of an f64 product', async () => {
    const [m, n, k] = [37, 53, 700];
    const a = rand(m * k, 1), b = rand(k * n, 2);
    const c = (await matmul(tensor(a, [m, k]), tensor(b, [k, n]))).data as Float32Array;
    let worst = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0, mag = 0;
      for (let t = 0; t < k; t++) {
        s += a[i * k + t] * b[t * n + j];
        mag += Math.abs(a[i * k + t] * b[t * n + j]);
      }
      worst = Math.max(worst, Math.abs(c[i * n + j] - s) / mag);
    }
    expect(worst).toBeLessThan(k * 2 ** -24);
    expect(worst).toBeGreaterThan(0);  // f32 arithmetic, not f64
  });

  it('converts f16/bf16 inputs, handles empty shapes, and refuses bad ones', async () => {
    const a = tensor(rand(6, 3), [2, 3]), b = tensor(rand(12, 4), [3, 4]);
    expect(bits(matmulSync(a.to('bf16'), b).data as Float32Array).equals(bits(matmulSync(a.to('bf16').to('f32'), b).data as Float32Array))).toBe(true);
    expect(matmulSync(tensor(new Float32Array(0), [0, 3]), b).shape).toEqual([0, 4]);
    expect(Array.from(matmulSync(tensor(new Float32Array(0), [2, 0]), tensor(new Float32Array(0), [0, 5])).data as Float32Array)).toEqual(new Array(10).fill(0));
    expect(() => matmulSync(a, a)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => matmulSync(tensor(rand(3, 1)), b)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => matmulSync(tensor(new Int32Array(6), [2, 3]), b)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => matmulSync(a, b, { transC: true } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    const ac = new AbortController();
    ac.abort();
    await expect(matmul(a, b, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });

  it('writes into options.out (sync and async, f32 and f64), the same bits as a fresh output; refuses a wrong or aliased out', async () => {
    const a = tensor(rand(37 * 29, 5), [37, 29]), b = tensor(rand(29 * 41, 6), [29, 41]);
    const fresh = matmulSync(a, b);
    const out = tensor(new Float32Array(37 * 41).fill(Number.NaN), [37, 41]);
    expect(matmulSync(a, b, { out })).toBe(out);
    expect(bits(out.data as Float32Array).equals(bits(fresh.data as Float32Array))).toBe(true);
    (out.data as Float32Array).fill(7);
    expect(await matmul(a, b, { out })).toBe(out);
    expect(bits(out.data as Float32Array).equals(bits(fresh.data as Float32Array))).toBe(true);
    const a64 = a.to('f64'), b64 = b.to('f64');
    const out64 = tensor(new Float64Array(37 * 41), [37, 41]);
    matmulSync(a64, b64, { out: out64 });
    expect(Buffer.from(out64.bytes()).equals(Buffer.from(matmulSync(a64, b64).bytes()))).toBe(true);
    expect(() => matmulSync(a, b, { out: out64 })).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => matmulSync(a, b, { out: tensor(new Float32Array(37 * 40), [37, 40]) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => matmulSync(a, b, { out: [1] as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const sq = tensor(rand(16, 9), [4, 4]);
    expect(() => matmulSync(sq, sq, { out: sq })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const big = new Float32Array(32);
    const left = tensor(big.subarray(0, 16), [4, 4]), right = tensor(big.subarray(16), [4, 4]);
    expect(matmulSync(left, left, { out: right })).toBe(right);  // same buffer, disjoint ranges: fine
  });
});

describe('matmul in f64 (dgemm)', () => {
  const rand64 = (n: number, seed: number) => Float64Array.from(rand(n, seed), (v, i) => v + (i % 7) * 2 ** -30);
  const bits64 = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const shapes: [number, number, number][] = [[1, 1, 1], [7, 31, 33], [33, 7, 257], [257, 33, 31], [100, 260, 130], [17, 400, 391], [8, 24, 384], [9, 385, 770], [5, 1600, 20]];
  it(`equals the scalar reference bit for bit: every tier, 1 and 2 threads, transposes; shapes ${shapes.map((s) => s.join('x')).join(', ')}`, () => {
    for (const [m, n, k] of shapes) {
      const a = rand64(m * k, m * 5 + k), b = rand64(k * n, n * 11 + k);
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
        const A = tensor(a, ta ? [k, m] : [m, k]), B = tensor(b, tb ? [n, k] : [k, n]);
        const ref = new Float64Array(m * n);
        native.dmatmulSync(a, b, m, n, k, ta, tb, ref, 'ref');
        for (const tier of TIERS) {
          native.setSimd(tier);
          for (const t of [1, 2]) {
            setThreads(t);
            const c = matmulSync(A, B, { transA: ta, transB: tb });
            expect(c.dtype).toBe('f64');
            expect(c.shape).toEqual([m, n]);
            expect(bits64(c.data as Float64Array).equals(bits64(ref)), `${m}x${n}x${k} ${ta} ${tb} ${tier} ${t}T`).toBe(true);
          }
        }
      }
    }
    native.setSimd(native.cpuInfo().simdSupported);
  });

  it('is f64 arithmetic (within f64 rounding of an exact-ish product), async equals sync, mixed inputs stay f32', async () => {
    const [m, n, k] = [13, 29, 500];
    const a = rand64(m * k, 3), b = rand64(k * n, 4);
    const A = tensor(a, [m, k]), B = tensor(b, [k, n]);
    const c = (await matmul(A, B)).data as Float64Array;
    expect(bits64(c).equals(bits64(matmulSync(A, B).data as Float64Array))).toBe(true);
    let worst = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      // Kahan-compensated sum as the accurate value
      let s = 0, comp = 0, mag = 0;
      for (let t = 0; t < k; t++) {
        const p = a[i * k + t] * b[t * n + j];
        const y = p - comp, u = s + y;
        comp = (u - s) - y;
        s = u;
        mag += Math.abs(p);
      }
      worst = Math.max(worst, Math.abs(c[i * n + j] - s) / mag);
    }
    expect(worst).toBeLessThan(k * 2 ** -52);
    expect(matmulSync(A, B.to('f32')).dtype).toBe('f32');
    expect(matmulSync(A.to('f32'), B).dtype).toBe('f32');
    expect(matmulSync(tensor(new Float64Array(0), [2, 0]), tensor(new Float64Array(0), [0, 3])).data).toEqual(new Float64Array(6));
    const ac = new AbortController();
    ac.abort();
    await expect(matmul(A, B, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});
