// SPDX-License-Identifier: MIT
// randomizedSvd, lowRank, extractLora and cur: the generator against an independent Python implementation, exact
// low-rank inputs reconstructed to f32 precision, truncation errors against scipy's spectra (Eckart–Young), the
// factor conventions (mergekit's sqrt(S) split), CUR selections with known answers, determinism across thread
// counts, and bad inputs with their codes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cur, curSync, extractLora, extractLoraSync, getThreads, lowRank, lowRankSync, randomizedSvd, randomizedSvdSync, setThreads, svdSync, tensor, Tensor,
} from '../../lib/index';
import { gaussianMatrix } from '../../lib/lowrank';
import { lcgValues as rand, mul, rel } from '../helpers/matrices';
import { repoRoot } from '../helpers/paths';

const golden = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/lowrank-golden.json'), 'utf8')) as {
  gaussian: Record<string, number[]>;
  spectra: { m: number; n: number; seed: number; s: number[] }[];
};
const threads0 = getThreads();
afterAll(() => setThreads(threads0));


/** The fixture script's integer formula. */
function formula(m: number, n: number, seed: number): Tensor {
  const d = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) d[i * n + j] = ((((i * 7919 + j * 104729 + seed * 31) % 2001) - 1000) / 1000);
  return tensor(d, [m, n]);
}



/** A rank-r [m, n] matrix X Y with X [m, r], Y [r, n] uniform. */
function lowRankMatrix(m: number, n: number, r: number, seed: number): Float32Array {
  return Float32Array.from(mul(rand(m * r, seed), rand(r * n, seed + 1), m, r, n));
}

/** A matrix with singular values exp(-i / 8): X diag(d) Y with near-orthogonal random X, Y (full rank). */
function decaying(m: number, n: number, seed: number): Float32Array {
  const k = Math.min(m, n);
  const x = rand(m * k, seed), y = rand(k * n, seed + 5);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) x[i * k + j] *= Math.exp(-j / 8);
  return Float32Array.from(mul(x, y, m, k, n));
}

function orthonormalityError(u: Float32Array, rows: number, cols: number, byRows = false): number {
  let worst = 0;
  for (let p = 0; p < cols; p++) for (let q = 0; q < cols; q++) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += byRows ? u[p * rows + i] * u[q * rows + i] : u[i * cols + p] * u[i * cols + q];
    worst = Math.max(worst, Math.abs(s - (p === q ? 1 : 0)));
  }
  return worst;
}

const bytes = (t: Tensor) => Buffer.from(t.bytes());

describe('gaussianMatrix (the test matrix of randomizedSvd)', () => {
  it('matches the independent Python implementation of the documented generator for four seeds', () => {
    for (const [seed, values] of Object.entries(golden.gaussian)) {
      const g = gaussianMatrix(3, 3, Number(seed));
      expect(Array.from(g.data as Float32Array), `seed ${seed}`).toEqual(values);
    }
  });

  it('has mean ~0 and variance ~1 over 200k draws, different seeds give different streams, any thread count the same', () => {
    setThreads(1);
    const one = gaussianMatrix(300, 301, 5);
    setThreads(2);
    expect(bytes(gaussianMatrix(300, 301, 5)).equals(bytes(one))).toBe(true);
    const g = gaussianMatrix(400, 500, 3).data as Float32Array;
    let s = 0, s2 = 0;
    for (const v of g) {
      s += v;
      s2 += v * v;
    }
    expect(Math.abs(s / g.length)).toBeLessThan(0.01);
    expect(Math.abs(s2 / g.length - 1)).toBeLessThan(0.02);
    expect(bytes(gaussianMatrix(10, 10, 3)).equals(bytes(gaussianMatrix(10, 10, 4)))).toBe(false);
  });
});

describe('randomizedSvd', () => {
  it('recovers an exactly rank-8 matrix to f32 precision, with orthonormal factors and the exact singular values', () => {
    for (const [m, n] of [[200, 150], [90, 300], [64, 64], [1000, 33]]) {
      const a = tensor(lowRankMatrix(m, n, 8, m + n), [m, n]);
      const r = randomizedSvdSync(a, 8);
      expect(r.U.shape).toEqual([m, 8]);
      expect(r.S.shape).toEqual([8]);
      expect(r.Vt.shape).toEqual([8, n]);
      const us = new Float32Array(r.U.data as Float32Array);
      for (let i = 0; i < m; i++) for (let j = 0; j < 8; j++) us[i * 8 + j] *= (r.S.data as Float32Array)[j];
      expect(rel(a.data as Float32Array, mul(us, r.Vt.data as Float32Array, m, 8, n)), `${m}x${n}`).toBeLessThan(1e-5 * Math.sqrt(Math.max(m, n)));
      expect(orthonormalityError(r.U.data as Float32Array, m, 8)).toBeLessThan(1e-4);
      expect(orthonormalityError(r.Vt.data as Float32Array, n, 8, true)).toBeLessThan(1e-4);
      const exact = svdSync(a).S.data as Float32Array;
      for (let i = 0; i < 8; i++) expect(Math.abs((r.S.data as Float32Array)[i] - exact[i]) / exact[i]).toBeLessThan(1e-4);
    }
  });

  it('with power iterations comes within 10% of the optimal rank-16 error on a decaying spectrum; fewer iterations are worse', () => {
    const m = 300, n = 200;
    const a = tensor(decaying(m, n, 11), [m, n]);
    const s = Array.from(svdSync(a).S.data as Float32Array);
    const total = s.reduce((x, y) => x + y * y, 0);
    const optimal = Math.sqrt(s.slice(16).reduce((x, y) => x + y * y, 0) / total);
    const errorOf = (powerIters: number) => {
      const r = randomizedSvdSync(a, 16, { powerIters, oversample: 4 });
      const us = new Float32Array(r.U.data as Float32Array);
      for (let i = 0; i < m; i++) for (let j = 0; j < 16; j++) us[i * 16 + j] *= (r.S.data as Float32Array)[j];
      return rel(a.data as Float32Array, mul(us, r.Vt.data as Float32Array, m, 16, n));
    };
    const e2 = errorOf(2), e0 = errorOf(0);
    expect(e2).toBeGreaterThanOrEqual(optimal * 0.999);
    expect(e2).toBeLessThan(optimal * 1.1);
    expect(e0).toBeGreaterThan(e2);
  });

  it('is deterministic for a seed: the same bytes for 1 and 2 threads and for the async version', async () => {
    const a = tensor(decaying(129, 77, 2), [129, 77]);
    setThreads(1);
    const one = randomizedSvdSync(a, 10, { seed: 99 });
    setThreads(2);
    const two = randomizedSvdSync(a, 10, { seed: 99 });
    const asy = await randomizedSvd(a, 10, { seed: 99 });
    for (const k of ['U', 'S', 'Vt'] as const) {
      expect(bytes(one[k]).equals(bytes(two[k])), k).toBe(true);
      expect(bytes(one[k]).equals(bytes(asy[k])), k).toBe(true);
    }
    expect(bytes(randomizedSvdSync(a, 10, { seed: 100 }).U).equals(bytes(one.U))).toBe(false);
  });

  it('handles rank = min(m, n), 1 x n and n x 1 matrices', () => {
    const a = tensor(rand(12 * 5, 4), [12, 5]);
    const r = randomizedSvdSync(a, 5);
    const exact = svdSync(a).S.data as Float32Array;
    for (let i = 0; i < 5; i++) expect(Math.abs((r.S.data as Float32Array)[i] - exact[i])).toBeLessThan(1e-4 * exact[0]);
    const row = randomizedSvdSync(tensor([3, 4], [1, 2]), 1);
    expect((row.S.data as Float32Array)[0]).toBeCloseTo(5, 5);
    const col = randomizedSvdSync(tensor([3, 4], [2, 1]), 1);
    expect((col.S.data as Float32Array)[0]).toBeCloseTo(5, 5);
  });

  it('rejects bad arguments with their codes', async () => {
    const a = tensor(rand(20, 1), [4, 5]);
    expect(() => randomizedSvdSync(a, 0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => randomizedSvdSync(a, 5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => randomizedSvdSync(a, 2, { seed: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => randomizedSvdSync(a, 2, { seed: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => randomizedSvdSync(a, 2, { sed: 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => randomizedSvdSync(tensor(rand(8, 1), [2, 2, 2]), 1)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => randomizedSvdSync(tensor([1, 2, 3, 4], [2, 2], 'i32'), 1)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => randomizedSvdSync(tensor([1, NaN, 3, 4], [2, 2]), 1)).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    const ac = new AbortController();
    ac.abort();
    await expect(randomizedSvd(a, 2, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});

describe('lowRank', () => {
  it("keeps the Eckart–Young error: relError equals the tail of scipy's spectrum, and energy picks the smallest rank", () => {
    for (const g of golden.spectra) {
      const a = formula(g.m, g.n, g.seed);
      const total = g.s.reduce((x, y) => x + y * y, 0);
      for (const rank of [1, 3, Math.min(g.m, g.n) - 1]) {
        const r = lowRankSync(a, { rank });
        expect(r.rank).toBe(rank);
        expect(r.up.shape).toEqual([g.m, rank]);
        expect(r.down.shape).toEqual([rank, g.n]);
        const tail = Math.sqrt(g.s.slice(rank).reduce((x, y) => x + y * y, 0) / total);
        expect(Math.abs(r.relError - tail), `${g.m}x${g.n} rank ${rank}`).toBeLessThan(2e-5 + 1e-3 * tail);
        expect(Math.abs(rel(a.data as Float32Array, mul(r.up.data as Float32Array, r.down.data as Float32Array, g.m, rank, g.n)) - r.relError)).toBeLessThan(1e-6);
      }
      for (const energy of [0.5, 0.9, 0.99]) {
        let acc = 0, expected = 0;
        while (acc < energy * total) acc += g.s[expected++] ** 2;
        expect(lowRankSync(a, { energy }).rank, `${g.m}x${g.n} energy ${energy}`).toBe(expected);
      }
    }
  });

  it('splits sqrt(S) over both factors', () => {
    const a = tensor(decaying(40, 30, 5), [40, 30]);
    const s = svdSync(a).S.data as Float32Array;
    const r = lowRankSync(a, { rank: 6 });
    const up = r.up.data as Float32Array, down = r.down.data as Float32Array;
    for (let j = 0; j < 6; j++) {
      let cu = 0, rd = 0;
      for (let i = 0; i < 40; i++) cu += up[i * 6 + j] ** 2;
      for (let i = 0; i < 30; i++) rd += down[j * 30 + i] ** 2;
      expect(Math.sqrt(cu)).toBeCloseTo(Math.sqrt(s[j]), 4);
      expect(Math.sqrt(rd)).toBeCloseTo(Math.sqrt(s[j]), 4);
    }
  });

  it('caps rank at min(m, n), drops zero singular values, and gives rank 0 for a zero matrix', () => {
    const a = tensor(lowRankMatrix(20, 10, 3, 9), [20, 10]);
    expect(lowRankSync(a, { rank: 100 }).rank).toBeLessThanOrEqual(10);
    const z = lowRankSync(tensor(new Float32Array(12), [3, 4]), { energy: 0.9 });
    expect(z.rank).toBe(0);
    expect(z.up.shape).toEqual([3, 0]);
    expect(z.down.shape).toEqual([0, 4]);
    expect(z.relError).toBe(0);
  });

  it('randomized method: the same rank, an error near the exact one; async equals sync', async () => {
    const a = tensor(decaying(200, 120, 3), [200, 120]);
    const exact = lowRankSync(a, { rank: 10 });
    const fast = lowRankSync(a, { rank: 10, method: 'randomized' });
    expect(fast.rank).toBe(10);
    expect(fast.relError).toBeLessThan(exact.relError * 1.1);
    const asy = await lowRank(a, { rank: 10, method: 'randomized' });
    expect(bytes(asy.up).equals(bytes(fast.up))).toBe(true);
  });

  it('rejects bad options', () => {
    const a = tensor(rand(20, 1), [4, 5]);
    expect(() => lowRankSync(a, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => lowRankSync(a, { rank: 2, energy: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => lowRankSync(a, { energy: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => lowRankSync(a, { energy: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => lowRankSync(a, { energy: 0.9, method: 'randomized' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => lowRankSync(a, { rank: 2, seed: 3 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => lowRankSync(a, { rank: 2, method: 'qr' as never })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

describe('extractLora', () => {
  const out = 48, inn = 36;
  const base = rand(out * inn, 21);
  const delta = lowRankMatrix(out, inn, 4, 22);
  const tunedData = Float32Array.from(base, (v, i) => v + delta[i]);
  const B = tensor(base, [out, inn]), T = tensor(tunedData, [out, inn]);
  const diff = Float32Array.from(tunedData, (v, i) => v - base[i]);

  it('reconstructs a rank-4 fine-tune: loraB @ loraA equals tuned - base to f32 precision (mergekit shapes and scale split)', () => {
    const r = extractLoraSync(B, T, { rank: 16, svEpsilon: 1e-3 });
    expect(r.rank).toBe(4);
    expect(r.loraA.shape).toEqual([4, inn]);
    expect(r.loraB.shape).toEqual([out, 4]);
    const prod = mul(r.loraB.data as Float32Array, r.loraA.data as Float32Array, out, 4, inn);
    expect(rel(diff, prod)).toBeLessThan(1e-5);
    expect(Math.abs(r.relError - rel(diff, prod))).toBeLessThan(1e-6);
    const s = r.S.data as Float32Array;
    const a = r.loraA.data as Float32Array, b = r.loraB.data as Float32Array;
    for (let j = 0; j < 4; j++) {
      let na = 0, nb = 0;
      for (let i = 0; i < inn; i++) na += a[j * inn + i] ** 2;
      for (let i = 0; i < out; i++) nb += b[i * 4 + j] ** 2;
      expect(Math.sqrt(na)).toBeCloseTo(Math.sqrt(s[j]), 4);
      expect(Math.sqrt(nb)).toBeCloseTo(Math.sqrt(s[j]), 4);
    }
  });

  it('without distributeScale puts S into loraA and leaves loraB orthonormal', () => {
    const r = extractLoraSync(B, T, { rank: 4, distributeScale: false });
    expect(orthonormalityError(r.loraB.data as Float32Array, out, 4)).toBeLessThan(1e-4);
    expect(rel(diff, mul(r.loraB.data as Float32Array, r.loraA.data as Float32Array, out, 4, inn))).toBeLessThan(1e-5);
  });

  it('rank = min(rank, #σ > svEpsilon): a smaller requested rank truncates; equal weights give rank 0', async () => {
    const r2 = await extractLora(B, T, { rank: 2 });
    expect(r2.rank).toBe(2);
    const s = Array.from(r2.S.data as Float32Array);
    const expected = Math.sqrt(s.slice(2).reduce((x, y) => x + y * y, 0) / s.reduce((x, y) => x + y * y, 0));
    expect(Math.abs(r2.relError - expected)).toBeLessThan(1e-4);
    const same = extractLoraSync(B, B, { rank: 8 });
    expect(same.rank).toBe(0);
    expect(same.loraA.shape).toEqual([0, inn]);
    expect(same.relError).toBe(0);
  });

  it('takes bf16 and f16 weights and rejects mismatched shapes', () => {
    const r = extractLoraSync(B.to('bf16'), T.to('bf16'), { rank: 4 });
    expect(r.loraA.dtype).toBe('f32');
    expect(() => extractLoraSync(B, tensor(rand(out * (inn - 1), 1), [out, inn - 1]), { rank: 2 })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
  });
});

describe('cur', () => {
  it('reconstructs an exactly rank-6 matrix from 6 of its columns and rows (DEIM and leverage)', () => {
    const m = 70, n = 50;
    const a = tensor(lowRankMatrix(m, n, 6, 31), [m, n]);
    for (const selection of ['deim', 'leverage'] as const) {
      const r = curSync(a, { rank: 6, selection });
      expect(r.C.shape).toEqual([m, 6]);
      expect(r.U.shape).toEqual([6, 6]);
      expect(r.R.shape).toEqual([6, n]);
      expect(new Set(r.cols).size).toBe(6);
      expect(new Set(r.rows).size).toBe(6);
      for (let i = 0; i < m; i++) for (const [c, j] of r.cols.entries()) expect((r.C.data as Float32Array)[i * 6 + c]).toBe((a.data as Float32Array)[i * n + j]);
      const cu = mul(r.C.data as Float32Array, r.U.data as Float32Array, m, 6, 6);
      expect(rel(a.data as Float32Array, mul(cu, r.R.data as Float32Array, m, 6, n)), selection).toBeLessThan(1e-4);
      expect(r.relError).toBeLessThan(1e-4);
    }
  });

  it('selects the dominant coordinates of a diagonal matrix, and an importance vector redirects the selection', () => {
    const n = 6;
    const d = new Float32Array(n * n);
    [1, 5, 2, 4, 3, 0.5].forEach((v, i) => { d[i * n + i] = v; });
    const a = tensor(d, [n, n]);
    for (const selection of ['deim', 'leverage'] as const) {
      const r = curSync(a, { rank: 2, selection });
      expect([...r.cols].sort()).toEqual([1, 3]);
      expect([...r.rows].sort()).toEqual([1, 3]);
      const w = curSync(a, { rank: 2, selection, importance: tensor([100, 1, 1, 1, 1, 100], [n]) });
      expect([...w.cols].sort()).toEqual([0, 5]);
    }
  });

  it('async equals sync, and bad inputs are refused with codes', async () => {
    const a = tensor(decaying(30, 20, 8), [30, 20]);
    const s = curSync(a, { rank: 5 });
    const p = await cur(a, { rank: 5 });
    expect(p.cols).toEqual(s.cols);
    expect(bytes(p.U).equals(bytes(s.U))).toBe(true);
    expect(() => curSync(a, { rank: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => curSync(a, { rank: 21 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => curSync(a, { rank: 2, importance: tensor(new Float32Array(19), [19]) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => curSync(a, { rank: 2, importance: tensor(new Float32Array(20).fill(-1), [20]) })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => curSync(a, { rank: 2, importance: tensor(new Float32Array(20).fill(NaN), [20]) })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    expect(() => curSync(a, { rank: 2, selection: 'random' as never })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
