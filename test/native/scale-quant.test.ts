// SPDX-License-Identifier: MIT
// The int RTN and FP8 quantizers (compressed-tensors math): the optimized kernels (every SIMD tier this CPU
// has, 1 and 2 threads) against the scalar reference, byte for byte, over odd shapes, every bit width,
// symmetric and asymmetric, group / channel / tensor / block scales, f32 / f16 / bf16 weights, rounding ties,
// zeros, outliers and non-finite values; and the native dequantizers against plain JS loops of the formula.
import { afterAll, describe, expect, it } from 'vitest';
import { dequantizeSync, DType, getThreads, quantizeSync, setThreads, tensor } from '../../lib/index';
import { native } from '../../lib/native';

const ALL_TIERS = ['baseline', 'avx2', 'avx512'] as const;
const TIERS = ALL_TIERS.slice(0, ALL_TIERS.indexOf(native.cpuInfo().simdSupported) + 1);
const THREADS = [1, 2];
const WEIGHTS: DType[] = ['f32', 'f16', 'bf16'];
const SHAPES: [number, number][] = [[1, 1], [1, 7], [7, 31], [31, 33], [33, 257], [257, 7], [3, 1029], [1029, 9], [65, 300], [5, 64], [33, 96]];

const initialThreads = getThreads();
afterAll(() => {
  setThreads(initialThreads);
  native.setSimd(native.cpuInfo().simdSupported);
});

// xorshift32: deterministic test data.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

type Kind = 'plain' | 'nonfinite';

/**
 * Weights row by row: normal-ish values; rows of exact ties (multiples of 0.5 whose largest magnitude makes the
 * scale 1 or 2^k, so x / scale lands on .5 for int codes and on fp8 midpoints); all-zero rows; rows with one
 * large outlier; and, for 'nonfinite', NaN / +-Inf sprinkled in.
 */
function weights(rows: number, cols: number, seed: number, kind: Kind, bits = 4): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(rows * cols);
  const half = ((1 << bits) - 1) / 2;  // (qmax - qmin) / 2
  for (let i = 0; i < rows; i++) {
    const mode = Math.floor(r() * 5);
    for (let j = 0; j < cols; j++) {
      let v: number;
      if (mode === 0) v = (Math.round((r() * 2 - 1) * half * 2) / 2) * 2 ** ((i % 5) - 2);  // ties
      else if (mode === 1) v = 0;
      else v = (r() - 0.5) * 0.1 * (1 + Math.floor(r() * 3));
      x[i * cols + j] = v;
    }
    if (mode === 0) x[i * cols + Math.floor(r() * cols)] = half * 2 ** ((i % 5) - 2) * (r() < 0.5 ? -1 : 1);
    if (mode === 3) x[i * cols + Math.floor(r() * cols)] = (r() < 0.5 ? -1 : 1) * 300 * (1 + r());
    if (mode === 4 && cols > 2) {
      // values around fp8 e4m3 / e5m2 midpoints relative to a fixed absmax
      x[i * cols] = 448;
      for (let j = 1; j < cols; j++) x[i * cols + j] = (r() < 0.5 ? -1 : 1) * (Math.floor(r() * 32) + 0.5) * 2 ** (Math.floor(r() * 12) - 9);
    }
  }
  if (kind === 'nonfinite') {
    const specials = [NaN, Infinity, -Infinity];
    for (let k = 0; k < Math.max(1, (rows * cols) >> 6); k++) x[Math.floor(r() * x.length)] = specials[Math.floor(r() * 3)];
  }
  return x;
}

function bytesOf(x: Float32Array, rows: number, cols: number, dtype: DType): Uint8Array {
  const t = tensor(x, [rows, cols]);
  return (dtype === 'f32' ? t : t.to(dtype)).bytes();
}

const esize = (d: DType) => (d === 'f32' ? 4 : 2);

interface IntCfg { rows: number; cols: number; bits: number; sym: boolean; group: number; whole: boolean; dtype: DType }

function intBuffers(c: IntCfg) {
  const g = c.whole || c.group === 0 ? c.cols : c.group;
  const ng = c.whole ? 1 : Math.ceil(c.cols / g);
  const groups = c.whole ? 1 : c.rows * ng;
  const zw = Math.ceil((c.rows * c.bits) / 32);
  return {
    packed: new Int32Array(c.rows * Math.ceil((c.cols * c.bits) / 32)).fill(0x5a5a5a5a),
    scales: new Uint8Array(groups * esize(c.dtype)).fill(0xa5),
    zps: c.sym ? null : new Int32Array(c.whole ? 1 : zw * ng).fill(0x3c3c3c3c),
  };
}

type IntOut = ReturnType<typeof intBuffers>;

function runInt(x: Uint8Array, c: IntCfg, checkFinite: boolean, backend?: 'ref'): IntOut | string {
  const b = intBuffers(c);
  try {
    native.quantizeIntSync(x, c.dtype, b.packed, b.scales, b.zps, c.rows, c.cols, c.bits, c.sym, c.group, c.whole, checkFinite, backend);
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
  return b;
}

function expectSameInt(got: IntOut | string, want: IntOut | string, what: string) {
  if (typeof want === 'string' || typeof got === 'string') {
    expect(got, what).toEqual(want);
    return;
  }
  expect(Buffer.from(got.packed.buffer).equals(Buffer.from(want.packed.buffer)), `${what}: packed`).toBe(true);
  expect(Buffer.from(got.scales).equals(Buffer.from(want.scales)), `${what}: scales`).toBe(true);
  if (want.zps) expect(Buffer.from(got!.zps!.buffer).equals(Buffer.from(want.zps.buffer)), `${what}: zero points`).toBe(true);
}

/** Runs the optimized quantizer on every tier and thread count and checks each against the reference. */
function checkInt(x: Uint8Array, c: IntCfg, checkFinite: boolean) {
  const want = runInt(x, c, checkFinite, 'ref');
  for (const tier of TIERS) {
    native.setSimd(tier);
    for (const t of THREADS) {
      setThreads(t);
      expectSameInt(runInt(x, c, checkFinite), want, `${tier} ${t}T ${JSON.stringify(c)} checkFinite=${checkFinite}`);
    }
  }
  return want;
}

const GROUPS: { group: number; whole: boolean; label: string }[] = [
  { group: 0, whole: false, label: 'channel' },
  { group: 0, whole: true, label: 'tensor' },
  { group: 1, whole: false, label: 'g1' },
  { group: 7, whole: false, label: 'g7' },
  { group: 32, whole: false, label: 'g32' },
  { group: 128, whole: false, label: 'g128' },
];

describe('int quantizer: optimized == reference', () => {
  for (const dtype of WEIGHTS) {
    for (const [rows, cols] of SHAPES) {
      it(`${dtype} ${rows}x${cols}: bits 1..8, sym/asym, channel/tensor/groups (short last group)`, () => {
        let seed = rows * 7919 + cols;
        for (let bits = 1; bits <= 8; bits++) {
          const x = bytesOf(weights(rows, cols, seed++, 'plain', bits), rows, cols, dtype);
          for (const sym of [true, false]) {
            for (const g of GROUPS) checkInt(x, { rows, cols, bits, sym, group: g.group, whole: g.whole, dtype }, true);
          }
        }
      });
    }
  }

  it('large groups and rows spanning several chunks (1031 x 1100, g128 with a short last group)', () => {
    const rows = 1031, cols = 1100;
    for (const dtype of WEIGHTS) {
      for (const bits of [2, 3, 4, 8]) {
        const x = bytesOf(weights(rows, cols, bits * 31, 'plain', bits), rows, cols, dtype);
        for (const sym of [true, false]) checkInt(x, { rows, cols, bits, sym, group: 128, whole: false, dtype }, true);
      }
      const x = bytesOf(weights(rows, cols, 5, 'plain'), rows, cols, dtype);
      checkInt(x, { rows, cols, bits: 4, sym: false, group: 0, whole: true, dtype }, true);
      checkInt(x, { rows, cols, bits: 8, sym: true, group: 0, whole: false, dtype }, true);
    }
  });

  it('rows of whole 32-multiple groups: batches of 16 groups and more (19 x 4480: 35 groups of 128), channel of 4480', () => {
    const rows = 19, cols = 4480;
    for (const dtype of WEIGHTS) {
      for (const bits of [1, 3, 4, 8]) {
        const x = bytesOf(weights(rows, cols, bits * 7 + 1, 'plain', bits), rows, cols, dtype);
        for (const sym of [true, false]) {
          for (const group of [32, 128, 0]) checkInt(x, { rows, cols, bits, sym, group, whole: false, dtype }, true);
        }
      }
      const y = bytesOf(weights(rows, cols, 77, 'nonfinite'), rows, cols, dtype);
      for (const sym of [true, false]) {
        for (const group of [32, 128, 0]) {
          for (const checkFinite of [true, false]) checkInt(y, { rows, cols, bits: 4, sym, group, whole: false, dtype }, checkFinite);
        }
      }
    }
  });

  it('exact ties round half to even (and differ from rounding half away)', () => {
    // One group of 16: amax 7.5 gives scale 1 for 4 bits, so the codes are round-half-even of the inputs.
    const vals = [7.5, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 4.5, 5.5, 6.5, -4.5, -5.5, -6.5, 0];
    const x = new Float32Array(vals);
    for (const dtype of WEIGHTS) {
      const out = checkInt(bytesOf(x, 1, 16, dtype), { rows: 1, cols: 16, bits: 4, sym: true, group: 16, whole: false, dtype }, true) as IntOut;
      const codes = new Int8Array(16);
      native.unpackIntRows(out.packed, 1, 16, 4, codes);
      expect(Array.from(codes)).toEqual([7, 0, 2, 2, 0, -2, -2, 4, -4, 4, 6, 6, -4, -6, -6, 0]);
    }
  });

  it('all-zero groups get the dtype epsilon as scale', () => {
    for (const dtype of WEIGHTS) {
      const out = checkInt(new Uint8Array(8 * 64 * esize(dtype)), { rows: 8, cols: 64, bits: 4, sym: false, group: 32, whole: false, dtype }, true) as IntOut;
      const s = tensor(dtype === 'f32' ? new Float32Array(out.scales.buffer) : new Uint16Array(out.scales.buffer), [16], dtype === 'f32' ? 'f32' : dtype).to('f32');
      const eps = dtype === 'f32' ? 2 ** -23 : dtype === 'f16' ? 2 ** -10 : 2 ** -7;
      expect(Array.from(s.data as Float32Array)).toEqual(new Array(16).fill(eps));
    }
  });

  it('non-finite weights: the same first index for checkFinite, the same bytes when propagated', () => {
    for (const dtype of WEIGHTS) {
      for (const [rows, cols] of [[7, 31], [33, 257], [1029, 9], [65, 300]] as [number, number][]) {
        const x = bytesOf(weights(rows, cols, rows + cols, 'nonfinite'), rows, cols, dtype);
        for (const g of GROUPS) {
          for (const sym of [true, false]) {
            const c = { rows, cols, bits: 4, sym, group: g.group, whole: g.whole, dtype };
            const err = checkInt(x, c, true);
            expect(typeof err === 'string' && err.startsWith('ERR_NON_FINITE')).toBe(true);
            checkInt(x, c, false);
          }
        }
      }
    }
  });
});

interface Fp8Cfg { rows: number; cols: number; br: number; bc: number; fp8: 'f8_e4m3' | 'f8_e5m2'; dtype: DType }

function runFp8(x: Uint8Array, c: Fp8Cfg, checkFinite: boolean, backend?: 'ref'): { out: Uint8Array; scales: Uint8Array } | string {
  const br = c.br || c.rows, bc = c.bc || c.cols;
  const groups = Math.ceil(c.rows / br) * Math.ceil(c.cols / bc);
  const out = new Uint8Array(c.rows * c.cols).fill(0x55);
  const scales = new Uint8Array(groups * esize(c.dtype)).fill(0xa5);
  try {
    native.quantizeFp8Sync(x, c.dtype, out, scales, c.rows, c.cols, c.br, c.bc, c.fp8, [], null, checkFinite, backend);
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
  return { out, scales };
}

function checkFp8(x: Uint8Array, c: Fp8Cfg, checkFinite: boolean) {
  const want = runFp8(x, c, checkFinite, 'ref');
  for (const tier of TIERS) {
    native.setSimd(tier);
    for (const t of THREADS) {
      setThreads(t);
      const got = runFp8(x, c, checkFinite);
      const what = `${tier} ${t}T ${JSON.stringify(c)} checkFinite=${checkFinite}`;
      if (typeof want === 'string' || typeof got === 'string') {
        expect(got, what).toEqual(want);
        continue;
      }
      expect(Buffer.from(got.out).equals(Buffer.from(want.out)), `${what}: codes`).toBe(true);
      expect(Buffer.from(got.scales).equals(Buffer.from(want.scales)), `${what}: scales`).toBe(true);
    }
  }
  return want;
}

const FP8_GROUPS: [number, number][] = [[0, 0], [1, 0], [128, 128], [7, 5], [2, 64]];

describe('fp8 quantizer: optimized == reference', () => {
  for (const dtype of WEIGHTS) {
    for (const [rows, cols] of SHAPES) {
      it(`${dtype} ${rows}x${cols}: e4m3/e5m2, tensor/channel/block scales`, () => {
        const x = bytesOf(weights(rows, cols, rows * 31 + cols, 'plain'), rows, cols, dtype);
        for (const fp8 of ['f8_e4m3', 'f8_e5m2'] as const) {
          for (const [br, bc] of FP8_GROUPS) checkFp8(x, { rows, cols, br, bc, fp8, dtype }, true);
        }
      });
    }
  }

  it('1031 x 1100 (several chunks, short last blocks)', () => {
    for (const dtype of WEIGHTS) {
      const x = bytesOf(weights(1031, 1100, 99, 'plain'), 1031, 1100, dtype);
      for (const fp8 of ['f8_e4m3', 'f8_e5m2'] as const) {
        for (const [br, bc] of [[0, 0], [1, 0], [128, 128]] as [number, number][]) checkFp8(x, { rows: 1031, cols: 1100, br, bc, fp8, dtype }, true);
      }
    }
  });

  it('non-finite weights: the same first index for checkFinite, the same bytes (NaN codes too) when propagated', () => {
    for (const dtype of WEIGHTS) {
      for (const [rows, cols] of [[7, 31], [33, 257], [1029, 9], [300, 300]] as [number, number][]) {
        const x = bytesOf(weights(rows, cols, rows ^ cols, 'nonfinite'), rows, cols, dtype);
        for (const fp8 of ['f8_e4m3', 'f8_e5m2'] as const) {
          for (const [br, bc] of FP8_GROUPS) {
            const c = { rows, cols, br, bc, fp8, dtype };
            const err = checkFp8(x, c, true);
            expect(typeof err === 'string' && err.startsWith('ERR_NON_FINITE')).toBe(true);
            checkFp8(x, c, false);
          }
        }
      }
    }
  });

  it('NaN payloads survive into e5m2 codes like the reference (bf16 / f32 weights)', () => {
    const u = new Uint32Array([0x3f800000, 0x7fa00000, 0xffe00000, 0x7f800001, 0x40000000, 0xff900000, 0, 0x3e000000]);
    const x = new Float32Array(u.buffer);
    for (const dtype of WEIGHTS) {
      const got = checkFp8(bytesOf(x, 1, 8, dtype), { rows: 1, cols: 8, br: 0, bc: 0, fp8: 'f8_e5m2', dtype }, false);
      expect(typeof got).not.toBe('string');
    }
  });
});

// ------------------------------------------------------------------------ dequantization (native vs JS)

/** Plain-JS dequantizers, compressed-tensors' formula: (q - zp) * scale and code * scale, rounded to the scale dtype. */
function jsDequantInt(q: ReturnType<typeof quantizeSync>, rows: number, cols: number, bits: number, group: number, whole: boolean): Float32Array {
  const codes = new Int8Array(rows * cols);
  native.unpackIntRows(q.parts.weight_packed.data as Int32Array, rows, cols, bits, codes);
  const scales = q.parts.weight_scale.to('f32').data as Float32Array;
  const g = whole || group === 0 ? cols : group;
  const ng = whole ? 1 : Math.ceil(cols / g);
  const zps = new Int32Array(whole ? 1 : rows * ng);
  const zpPart = q.parts.weight_zero_point;
  if (zpPart) {
    if (whole) zps.set(zpPart.data as Int32Array);
    else {
      const zw = Math.ceil((rows * bits) / 32);
      const zin = zpPart.data as Int32Array;
      const byGroup = new Int32Array(ng * zw);
      for (let k = 0; k < ng; k++) for (let w = 0; w < zw; w++) byGroup[k * zw + w] = zin[w * ng + k];
      const zt = new Int8Array(ng * rows);
      native.unpackIntRows(byGroup, ng, rows, bits, zt);
      for (let r = 0; r < rows; r++) for (let k = 0; k < ng; k++) zps[r * ng + k] = zt[k * rows + r];
    }
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = whole ? 0 : r * ng + Math.floor(c / g);
      out[r * cols + c] = Math.fround((codes[r * cols + c] - zps[k]) * scales[k]);
    }
  }
  const wd = q.parts.weight_scale.dtype;
  return (wd === 'f32' ? tensor(out, [rows, cols]) : tensor(out, [rows, cols]).to(wd).to('f32')).data as Float32Array;
}

function jsDequantFp8(q: ReturnType<typeof quantizeSync>, rows: number, cols: number, br: number, bc: number): Float32Array {
  const codes = q.parts.weight.to('f32').data as Float32Array;
  const scales = q.parts.weight_scale.to('f32').data as Float32Array;
  const gr = br || rows, gc = bc || cols;
  const ncg = Math.ceil(cols / gc);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / gr) * ncg;
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.fround(codes[r * cols + c] * scales[srow + Math.floor(c / gc)]);
  }
  const wd = q.parts.weight_scale.dtype;
  return wd === 'f32' ? out : (tensor(out, [rows, cols]).to(wd).to('f32').data as Float32Array);
}

const sameF32 = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('native dequantizers == the plain JS formula', () => {
  for (const dtype of WEIGHTS) {
    it(`int, ${dtype} weights: bits 1..8, sym/asym, groups; 1 and 2 threads; output in f32 and in the weight dtype`, () => {
      for (const [rows, cols] of [[1, 1], [7, 31], [33, 257], [1029, 9], [65, 300], [9, 256]] as [number, number][]) {
        for (let bits = 1; bits <= 8; bits++) {
          const x = tensor(weights(rows, cols, bits + rows, 'plain', bits), [rows, cols]);
          const xw = dtype === 'f32' ? x : x.to(dtype);
          for (const symmetric of [true, false]) {
            for (const gs of ['channel', 'tensor', 7, 32, 128] as const) {
              const pad = typeof gs === 'number' && cols % gs !== 0;
              const q = quantizeSync(xw, { scheme: 'int', bits, symmetric, groupSize: gs, ...(pad ? { pad: true } : {}) });
              const want = jsDequantInt(q, rows, cols, bits, typeof gs === 'number' ? gs : 0, gs === 'tensor');
              for (const tier of TIERS) {
                native.setSimd(tier);
                for (const t of THREADS) {
                  setThreads(t);
                  const got = dequantizeSync(q);
                  expect(sameF32(got.data as Float32Array, want), `${tier} ${rows}x${cols} ${bits} ${symmetric} ${gs} ${t}T`).toBe(true);
                  const inW = dequantizeSync(q, dtype);
                  expect(inW.dtype).toBe(dtype);
                  expect(sameF32(inW.to('f32').data as Float32Array, want)).toBe(true);
                }
              }
            }
          }
        }
      }
    });

    it(`fp8, ${dtype} weights: e4m3/e5m2 x tensor/channel/block; 1 and 2 threads`, () => {
      for (const [rows, cols] of [[1, 1], [7, 31], [33, 257], [300, 300], [1029, 9]] as [number, number][]) {
        const x = tensor(weights(rows, cols, rows * 3 + cols, 'plain'), [rows, cols]);
        const xw = dtype === 'f32' ? x : x.to(dtype);
        for (const format of ['e4m3', 'e5m2'] as const) {
          for (const granularity of ['tensor', 'channel', 'block'] as const) {
            const q = quantizeSync(xw, { scheme: 'fp8', format, granularity });
            const [br, bc] = granularity === 'channel' ? [1, 0] : granularity === 'block' ? [128, 128] : [0, 0];
            const want = jsDequantFp8(q, rows, cols, br, bc);
            for (const tier of TIERS) {
              native.setSimd(tier);
              for (const t of THREADS) {
                setThreads(t);
                expect(sameF32(dequantizeSync(q).data as Float32Array, want), `${tier} ${rows}x${cols} ${format} ${granularity} ${t}T`).toBe(true);
              }
            }
          }
        }
      }
    });
  }

  it('fp8 NaN and saturated codes dequantize like the JS loop (nonFinite: propagate)', () => {
    const x = tensor(new Float32Array([1, NaN, -Infinity, Infinity, 0.5, -3, 1e-9, 2]), [2, 4]);
    const y = tensor(Float32Array.from({ length: 2 * 40 }, (_, i) => [1, NaN, -Infinity, Infinity, 0.5, -3, 1e-9, 2, -1e-7, 0][i % 10] * (1 + i / 7)), [2, 40]);
    for (const format of ['e4m3', 'e5m2'] as const) {
      for (const tier of TIERS) {
        native.setSimd(tier);
        const q = quantizeSync(x, { scheme: 'fp8', format, granularity: 'channel' }, { nonFinite: 'propagate' });
        expect(sameF32(dequantizeSync(q).data as Float32Array, jsDequantFp8(q, 2, 4, 1, 0))).toBe(true);
        const q2 = quantizeSync(y, { scheme: 'fp8', format, granularity: 'tensor' }, { nonFinite: 'propagate' });
        expect(sameF32(dequantizeSync(q2).data as Float32Array, jsDequantFp8(q2, 2, 40, 0, 0))).toBe(true);
      }
    }
  });
});
