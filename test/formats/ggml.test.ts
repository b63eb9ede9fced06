// SPDX-License-Identifier: MIT
// ggml block formats: the published reference vectors (FORMATS.md), round trips, bad inputs.
import { afterAll, describe, expect, it } from 'vitest';
import {
  compare, dequantize, dequantizeSync, getThreads, QuantizedTensor, quantize, quantizeSync, setThreads, tensor,
} from '../../lib/index';
import { native } from '../../lib/native';

const ramp = tensor(Float32Array.from({ length: 32 }, (_, j) => (j - 16) / 8), [1, 32]);
const hex = (q: QuantizedTensor) => Buffer.from(q.parts.blocks.bytes()).toString('hex');
const before = getThreads();
afterAll(() => setThreads(before));

describe('published reference vectors (ggml quantize_row_*_ref on x[j] = (j - 16) / 8)', () => {
  it('q8_0', () => {
    expect(hex(quantizeSync(ramp, { scheme: 'ggml', type: 'q8_0' }))).toBe(
      '082481899199a1a9b1b9c0c8d0d8e0e8f0f8000810182028303840474f575f676f77');
  });
  it('q4_0, and its dequantization (x[31] = 1.875 saturates to code 15 = 1.75)', async () => {
    const q = await quantize(ramp, { scheme: 'ggml', type: 'q4_0' });
    expect(hex(q)).toBe('0034809191a2a2b3b3c4c4d5d5e6e6f7f7f8');
    const back = (await dequantize(q)).data as Float32Array;
    // d = 0.25 (fp16 0x3400); codes truncate x / d + 8.5, capped at 15.
    expect(Array.from(back)).toEqual(Array.from({ length: 32 }, (_, j) => (Math.min(15, Math.trunc(((j - 16) / 8) * 4 + 8.5)) - 8) * 0.25));
  });
});

describe('round trips and error bounds', () => {
  const n = 256 * 40;
  let s = 7;
  const x = tensor(Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) >>> 0; return (s / 2 ** 32 - 0.5) * 4; }), [40, 256]);
  // One quantization step of the block scale (|x| < 2): symmetric types put the largest magnitude on the
  // negative extreme code, so the opposite extreme can be a full step off; the f16 scale adds a little.
  // k-quants: 6-bit sub-block scales add up to half a step of the coarse scale on top.
  const bounds: Record<string, number> = { q8_0: 2 / 127, q4_0: 2 / 8, q4_1: 4 / 15, q5_0: 2 / 16, q5_1: 4 / 31, q4_k: 4 / 15, q5_k: 4 / 31, q6_k: 2 / 32 };
  for (const type of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'] as const) {
    it(`${type}: dequantize(quantize(x)) stays within one step; identical for 1, 2 and 3 threads`, async () => {
      const outs: string[] = [];
      for (const threads of [1, 2, 3]) {
        setThreads(threads);
        outs.push(hex(await quantize(x, { scheme: 'ggml', type })));
      }
      expect(new Set(outs).size).toBe(1);
      const q = quantizeSync(x, { scheme: 'ggml', type });
      expect(q.shape).toEqual([40, 256]);
      expect(q.parts.blocks.byteLength).toBe(q.byteLength);
      const y = dequantizeSync(q).data as Float32Array;
      const xd = x.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i] - xd[i]));
      expect(worst).toBeLessThanOrEqual(bounds[type] * 1.01);
      expect(Array.from(dequantizeSync(q, 'bf16').data as Uint16Array)).toEqual(Array.from(tensor(y, [n]).to('bf16').data as Uint16Array));
    });
  }

  it('all-zero blocks give exact zeros; f16/bf16 input is widened first', () => {
    const z = tensor(new Float32Array(64), [64]);
    for (const type of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as const) {
      expect((dequantizeSync(quantizeSync(z, { scheme: 'ggml', type })).data as Float32Array).every((v) => v === 0)).toBe(true);
    }
    const z256 = tensor(new Float32Array(512), [2, 256]);
    for (const type of ['q4_k', 'q5_k', 'q6_k'] as const) {
      expect((dequantizeSync(quantizeSync(z256, { scheme: 'ggml', type })).data as Float32Array).every((v) => v === 0)).toBe(true);
    }
    expect(hex(quantizeSync(ramp.to('bf16'), { scheme: 'ggml', type: 'q8_0' }))).toBe(hex(quantizeSync(ramp, { scheme: 'ggml', type: 'q8_0' })));
  });
});

describe('bad inputs', () => {
  it('rows that the block size does not divide are ERR_SHAPE (no silent padding)', () => {
    expect(() => quantizeSync(tensor(new Float32Array(64 * 172), [64, 172]), { scheme: 'ggml', type: 'q4_0' }))
      .toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
  });
  it('non-finite input is ERR_NON_FINITE with its index unless nonFinite allows it', async () => {
    const bad = tensor(Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? Infinity : i)), [32]);
    expect(() => quantizeSync(bad, { scheme: 'ggml', type: 'q8_0' })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 5 }));
    await expect(quantize(bad, { scheme: 'ggml', type: 'q8_0' })).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
    const zeroed = quantizeSync(bad, { scheme: 'ggml', type: 'q8_0' }, { nonFinite: 'zero' });
    expect((dequantizeSync(zeroed).data as Float32Array)[5]).toBe(0);
  });
  it('the first non-finite index is named for every type and SIMD tier (the check fused into the kernels)', () => {
    const tiers = (['baseline', 'avx2', 'avx512'] as const).slice(0, ['baseline', 'avx2', 'avx512'].indexOf(native.cpuInfo().simdSupported) + 1);
    const n = 256 * 64;
    for (const [at, more] of [[32 * 37 + 11, [32 * 37 + 20, 32 * 50]], [0, [1]], [n - 1, []], [32 * 16 * 2048 % n + 3, [n - 2]]] as [number, number[]][]) {
      const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);
      x[at] = NaN;
      for (const m of more) x[m] = -Infinity;
      for (const tier of tiers) {
        native.setSimd(tier);
        for (const type of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'] as const) {
          expect(() => quantizeSync(tensor(x, [64, 256]), { scheme: 'ggml', type }), `${tier} ${type} ${at}`)
            .toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: at }));
        }
      }
    }
    native.setSimd(native.cpuInfo().simdSupported);
  });
  it('unknown schemes, types and options are refused before any work', () => {
    expect(() => quantizeSync(ramp, { scheme: 'ggml', type: 'q9_9' } as never)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => quantizeSync(ramp, { scheme: 'nope' } as never)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => quantizeSync(ramp, { scheme: 'ggml', type: 'q8_0', bits: 4 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => quantizeSync({} as never, { scheme: 'ggml', type: 'q8_0' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const q = quantizeSync(ramp, { scheme: 'ggml', type: 'q8_0' });
    expect(() => dequantizeSync(q, 'nope' as never)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
  });
  it('an abort before the work settles rejects with AbortError', async () => {
    const ac = new AbortController();
    const big = tensor(new Float32Array(1 << 22).fill(1), [1 << 22]);
    const p = quantize(big, { scheme: 'ggml', type: 'q4_0' }, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  });
});

describe('compare()', () => {
  it('computes mse, rmse, maxAbs, relative Frobenius error, SQNR and cosine', () => {
    const a = tensor([1, 2, 3, 4]);
    const b = tensor([1, 2, 3, 5]);
    const c = compare(a, b);
    expect(c.mse).toBe(0.25);
    expect(c.rmse).toBe(0.5);
    expect(c.maxAbs).toBe(1);
    expect(c.relFrobenius).toBeCloseTo(1 / Math.sqrt(30), 15);
    expect(c.sqnrDb).toBeCloseTo(10 * Math.log10(30), 12);
    expect(c.cosine).toBeCloseTo(34 / Math.sqrt(30 * 39), 15);
    expect(compare(a, a)).toMatchObject({ mse: 0, sqnrDb: Infinity, relFrobenius: 0, cosine: 1 });
    expect(compare(tensor([0, 0]), tensor([0, 0])).cosine).toBe(1);
    expect(compare(a, b.to('bf16')).maxAbs).toBe(1);
    expect(() => compare(a, tensor([1, 2, 3]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
  });

  it('is identical for any thread count (fixed chunks, f64 sums)', () => {
    let s = 11;
    const n = 1_000_003;
    const a = tensor(Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; }), [n]);
    const b = tensor((a.data as Float32Array).map((v, i) => v + (i % 7) * 1e-3), [n]);
    const results = [1, 2, 3].map((t) => { setThreads(t); return JSON.stringify(compare(a, b)); });
    expect(new Set(results).size).toBe(1);
  });
});

describe('optimized quantizers against the scalar reference', () => {
  const TYPES: [string, number, number, number][] = [['q4_0', 2, 32, 18], ['q4_1', 3, 32, 20], ['q5_0', 6, 32, 22], ['q5_1', 7, 32, 24],
    ['q8_0', 8, 32, 34], ['q4_k', 12, 256, 144], ['q5_k', 13, 256, 176], ['q6_k', 14, 256, 210]];
  const tiers = (['baseline', 'avx2', 'avx512'] as const).slice(0, ['baseline', 'avx2', 'avx512'].indexOf(native.cpuInfo().simdSupported) + 1);
  let s = 99;
  const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; };
  const families: Record<string, (i: number) => number> = {
    random: () => rnd() - 0.5,
    ties: (i) => ((i % 256) - 128) / 8,
    outliers: (i) => (i % 37 === 0 ? 500 : 1) * (rnd() - 0.5),
    zeros: (i) => (Math.floor(i / 32) % 3 === 0 ? 0 : rnd()),
    signedTies: (i) => (i % 2 ? 1 : -1) * ((i % 32) < 2 ? 3 : rnd()),
  };
  for (const [name, id, block, bytes] of TYPES) {
    it(`${name}: every tier equals the reference on 1, 7, 31, 33 and 257 blocks`, () => {
      try {
        for (const tier of tiers) {
          native.setSimd(tier);
          for (const blocks of [1, 7, 31, 33, 257]) {
            for (const [fam, f] of Object.entries(families)) {
              const n = blocks * block;
              const x = Float32Array.from({ length: n }, (_, i) => f(i));
              const want = new Uint8Array(blocks * bytes);
              const got = new Uint8Array(blocks * bytes);
              native.quantizeGgmlSync(x, id, want, n, true, 'ref');
              native.quantizeGgmlSync(x, id, got, n, true, 'auto');
              if (Buffer.compare(want, got) !== 0) expect(`${tier} ${fam} ${blocks} blocks`).toBe('byte-identical');
              const y1 = new Float32Array(n);
              const y2 = new Float32Array(n);
              native.dequantizeGgmlSync(want, id, y1, n, 'ref');
              native.dequantizeGgmlSync(want, id, y2, n, 'auto');
              if (Buffer.compare(Buffer.from(y1.buffer), Buffer.from(y2.buffer)) !== 0) expect(`${tier} ${fam} dequantize`).toBe('bit-identical');
            }
          }
        }
      } finally {
        native.setSimd('avx512');
      }
    });
  }
});
