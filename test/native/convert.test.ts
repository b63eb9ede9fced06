// SPDX-License-Identifier: MIT
// dtype conversion: optimized kernels against the scalar reference (the spec), the reference against an
// independent JavaScript statement of the rules, exhaustive where the issue asks for it.
import { afterAll, describe, expect, it } from 'vitest';
import { convert, DType, DTYPES, getThreads, setThreads, tensor, TypedArray, zeros } from '../../lib/index';
import { native } from '../../lib/native';
import { BF16, decode, E4M3, E5M2, encodeF32, F16, f32FromBits, Fmt } from '../helpers/floats';

const ARITH = DTYPES.filter((d) => d.arith).map((d) => d.name);
// The SIMD tiers this CPU supports, narrowest first.
const ALL_TIERS = ['baseline', 'avx2', 'avx512'] as const;
const TIERS = ALL_TIERS.slice(0, ALL_TIERS.indexOf(native.cpuInfo().simdSupported) + 1);
const SIZES = [1, 7, 31, 33, 257, 1003];

// xorshift32: deterministic test data.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** Random bytes for n elements of a dtype, mixed with special values for floats. */
function randomBytes(dtype: DType, n: number, seed: number): Uint8Array {
  const info = DTYPES.find((d) => d.name === dtype)!;
  const bytes = new Uint8Array(n * (info.bits / 8));
  const r = rng(seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = r() & 0xff;
  if (dtype === 'f32') {
    const u = new Uint32Array(bytes.buffer);
    const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x477ff000, 0x477fefff, 0x33000000, 0x3f800000, 0x43e00000, 0x43e80000];
    for (let i = 0; i < u.length; i++) {
      const k = r() % 4;
      if (k === 0) u[i] = specials[r() % specials.length];
      else if (k === 1) u[i] = f32bits((r() / 2 ** 32 - 0.5) * 2 ** ((r() % 40) - 20));
    }
  }
  return bytes;
}

function f32bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

const threadsBefore = getThreads();
afterAll(() => setThreads(threadsBefore));

describe('exhaustive f32 -> f16 / bf16 (all 2^32 inputs) and the generic rule', () => {
  it('the dispatched f32 -> bf16 kernel equals the reference for every f32 bit pattern', () => {
    expect(native.selfTestF32('bf16', 0, 2 ** 32)).toEqual([0, -1]);
  });

  it('the dispatched f32 -> f16 kernel equals the reference for every f32 bit pattern', () => {
    expect(native.selfTestF32('f16', 0, 2 ** 32)).toEqual([0, -1]);
  });

  // Every SIMD tier this CPU supports below the widest one (which the two tests above ran), on 2^28 patterns
  // around the rounding-sensitive exponents of each target.
  for (const tier of TIERS.slice(0, -1)) {
    it(`the ${tier} tier equals the reference too (2^28 patterns per target)`, () => {
      native.setSimd(tier);
      try {
        expect(native.selfTestF32('f16', 0x30000000, 0x30000000 + 2 ** 28)).toEqual([0, -1]);
        expect(native.selfTestF32('bf16', 0xf0000000, 0xf0000000 + 2 ** 28)).toEqual([0, -1]);
        expect(native.selfTestF32('f8_e4m3', 0x33000000, 0x48000000, 61)).toEqual([0, -1]);
        expect(native.selfTestF32('f8_e5m2', 0xb3000000, 0xc8000000, 61)).toEqual([0, -1]);
      } finally {
        native.setSimd('avx512');
      }
    });
  }

  it('f32 -> f8_e4m3 / f8_e5m2 equal the generic encoder across the whole fp8 exponent range (both signs)', () => {
    for (const target of ['f8_e4m3', 'f8_e5m2'] as const) {
      // |x| from 2^-25 (below every fp8 subnormal) to 2^17 (above every fp8 maximum): every 13th pattern.
      expect(native.selfTestF32(target, 0x33000000, 0x48000000, 13)).toEqual([0, -1]);
      expect(native.selfTestF32(target, 0xb3000000, 0xc8000000, 13)).toEqual([0, -1]);
      // Exhaustively where rounding decides between codes most often: near 1, the subnormal edge and the maximum.
      expect(native.selfTestF32(target, 0x3f700000, 0x3f900000)).toEqual([0, -1]);
      expect(native.selfTestF32(target, 0x3a800000, 0x3b200000)).toEqual([0, -1]);
      expect(native.selfTestF32(target, 0x43d00000, 0x43f00000)).toEqual([0, -1]);
      expect(native.selfTestF32(target, 0x47500000, 0x47700000)).toEqual([0, -1]);
      expect(native.selfTestF32(target, 0x7f700000, 2 ** 32, 7)).toEqual([0, -1]);
    }
  });

  it('the bit-level f16/bf16 rules equal the generic round-to-nearest-even encoder (every 97th pattern)', () => {
    expect(native.selfTestGeneric(97)).toBe(0);
  });
});

describe('decoding every code exactly', () => {
  const check = (dtype: DType, fmt: Fmt, count: number) => {
    const codes = count === 256 ? Uint8Array.from({ length: 256 }, (_, i) => i) : Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = tensor(codes, [count], dtype).to('f64').data as Float64Array;
    const out32 = tensor(codes, [count], dtype).to('f32').data as Float32Array;
    for (let c = 0; c < count; c++) {
      const want = decode(c, fmt);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(out[c]), `${dtype} code ${c}`).toBe(true);
        expect(Number.isNaN(out32[c]), `${dtype} code ${c}`).toBe(true);
      } else {
        expect(Object.is(out[c], want), `${dtype} code ${c}: ${out[c]} vs ${want}`).toBe(true);
        expect(Object.is(out32[c], want), `${dtype} code ${c} -> f32`).toBe(true);
      }
    }
  };
  it('all 65,536 f16 codes', () => check('f16', F16, 65536));
  it('all 65,536 bf16 codes', () => check('bf16', BF16, 65536));
  it('all 256 f8_e4m3 codes', () => check('f8_e4m3', E4M3, 256));
  it('all 256 f8_e5m2 codes', () => check('f8_e5m2', E5M2, 256));

  it('NaN decodes to a quiet NaN keeping the payload; signalling f16/bf16 NaNs come out quiet', () => {
    const f16 = tensor(new Uint16Array([0x7c01, 0xfc01, 0x7e00]), [3], 'f16').to('f32');
    expect([...new Uint32Array(f16.data.buffer)]).toEqual([0x7fc02000, 0xffc02000, 0x7fc00000]);
    const bf = tensor(new Uint16Array([0x7f81, 0xff81, 0x7fc0]), [3], 'bf16').to('f32');
    expect([...new Uint32Array(bf.data.buffer)]).toEqual([0x7fc10000, 0xffc10000, 0x7fc00000]);
  });
});

describe('encoding from f32 against the independent JavaScript rule', () => {
  const r = rng(12345);
  const bits = new Uint32Array(200_000);
  for (let i = 0; i < bits.length; i++) bits[i] = r();
  // Dense coverage of the interesting exponent ranges (ties, subnormals, overflow edges).
  for (let i = 0; i < 50_000; i++) bits[i] = (0x30000000 + i * 0x1001) >>> 0;
  const input = tensor(new Float32Array(bits.buffer), [bits.length]);
  for (const [dtype, fmt] of [['f16', F16], ['bf16', BF16], ['f8_e4m3', E4M3], ['f8_e5m2', E5M2]] as const) {
    it(`f32 -> ${dtype}`, () => {
      const out = input.to(dtype).data as Uint8Array | Uint16Array;
      for (let i = 0; i < bits.length; i++) {
        const want = encodeF32(bits[i], fmt);
        if (out[i] !== want) expect(`${bits[i].toString(16)} -> ${out[i].toString(16)}`).toBe(`${bits[i].toString(16)} -> ${want.toString(16)}`);
      }
    });
  }

  it('documented edge cases: f16 overflow to Inf, fp8 saturation, fp8 NaN', () => {
    const x = tensor(new Float32Array([65504, 65519.99, 65520, -1e6, 448, 464, 480, 1e9, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25, 3 * 2 ** -25]), [14]);
    expect([...(x.to('f16').data as Uint16Array)].slice(0, 4)).toEqual([0x7bff, 0x7bff, 0x7c00, 0xfc00]);
    const e4 = [...(x.to('f8_e4m3').data as Uint8Array)];
    expect(e4.slice(4, 11)).toEqual([0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0xfe, 0x7f]);
    const e5 = [...(x.to('f8_e5m2').data as Uint8Array)];
    expect(e5.slice(7, 10)).toEqual([0x7b, 0x7b, 0xfb]);  // saturate to +-57344, also for +-Inf
    const f16 = [...(x.to('f16').data as Uint16Array)];
    expect(f16.slice(11)).toEqual([0x0001, 0x0000, 0x0002]);  // 2^-25 and 3 * 2^-25 are ties: to even (0 and 2)
  });
});

describe('integer conversions', () => {
  it('float -> int rounds half to even, saturates, and maps NaN to 0', () => {
    const x = tensor(new Float32Array([2.5, 3.5, -2.5, -0.5, 0.5, 127.4, 127.5, 300, -129, -1e30, NaN, Infinity]), [12]);
    expect([...(x.to('i8').data as Int8Array)]).toEqual([2, 4, -2, 0, 0, 127, 127, 127, -128, -128, 0, 127]);
    expect([...(x.to('u8').data as Uint8Array)]).toEqual([2, 4, 0, 0, 0, 127, 128, 255, 0, 0, 0, 255]);
    expect([...(x.to('i64').data as BigInt64Array)].slice(10)).toEqual([0n, 9223372036854775807n]);
  });

  it('int -> int saturates; bool is nonzero', () => {
    const x = tensor(new Int32Array([-70000, -129, -1, 0, 1, 255, 256, 70000]), [8]);
    expect([...(x.to('i16').data as Int16Array)]).toEqual([-32768, -129, -1, 0, 1, 255, 256, 32767]);
    expect([...(x.to('u8').data as Uint8Array)]).toEqual([0, 0, 0, 0, 1, 255, 255, 255]);
    expect([...(x.to('bool').data as Uint8Array)]).toEqual([1, 1, 1, 0, 1, 1, 1, 1]);
  });

  it('int64 -> narrow floats rounds once (no double rounding through f64)', () => {
    // 2^53 + 1 + 2^29 ... values whose f64 rounding would create a false tie for f32.
    const v = [2n ** 60n + 2n ** 36n + 1n, -(2n ** 60n + 2n ** 36n + 1n), 2n ** 63n - 1n, -(2n ** 63n)];
    const t = tensor(new BigInt64Array(v), [4]);
    const f = t.to('f32').data as Float32Array;
    expect(f[0]).toBe(2 ** 60 + 2 ** 37);  // above the tie: rounds up
    expect(f[1]).toBe(-(2 ** 60 + 2 ** 37));
    expect(f[2]).toBe(2 ** 63);
    expect(f[3]).toBe(-(2 ** 63));
  });
});

describe('optimized kernels against the reference on odd sizes', () => {
  for (const src of ARITH) {
    it(`${src} -> every dtype, every SIMD tier, sizes ${SIZES.join(', ')}`, () => {
      try {
        for (const tier of TIERS) {
          native.setSimd(tier);
          for (const dst of ARITH) {
            for (const n of SIZES) {
              const bytes = randomBytes(src, n, n * 31 + src.length);
              const outRef = new Uint8Array(n * (DTYPES.find((d) => d.name === dst)!.bits / 8));
              const outOpt = new Uint8Array(outRef.length);
              native.convertSync(bytes, src, outRef, dst, n, 'ref', true);
              native.convertSync(bytes, src, outOpt, dst, n, 'auto', false);
              if (Buffer.compare(outRef, outOpt) !== 0) expect(`${tier}: ${src}->${dst} n=${n}`).toBe('bit-identical');
            }
          }
        }
      } finally {
        native.setSimd('avx512');
      }
    });
  }

  it('unaligned source and destination give the same bytes', () => {
    const n = 1003;
    const bytes = randomBytes('f32', n, 7);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    for (const dst of ['f16', 'bf16', 'f64', 'f8_e4m3'] as const) {
      const size = DTYPES.find((d) => d.name === dst)!.bits / 8;
      const a = new Uint8Array(n * size);
      const b = new Uint8Array(n * size + 3);
      native.convertSync(bytes, 'f32', a, dst, n);
      native.convertSync(shifted.subarray(1), 'f32', b.subarray(3), dst, n);
      expect(Buffer.compare(a, b.subarray(3))).toBe(0);
    }
  });
});

describe('determinism and async', () => {
  it('outputs are byte-identical for 1, 2 and 3 threads', async () => {
    const n = 3_000_017;
    const x = tensor(new Float32Array(randomBytes('f32', n, 99).buffer), [n]);
    const results: Record<string, Buffer[]> = {};
    for (const threads of [1, 2, 3]) {
      setThreads(threads);
      for (const dtype of ['bf16', 'f16', 'f8_e5m2'] as const) {
        const y = await convert(x, dtype);
        (results[dtype] ??= []).push(Buffer.from(y.bytes()));
      }
    }
    for (const list of Object.values(results)) {
      expect(list[1].equals(list[0])).toBe(true);
      expect(list[2].equals(list[0])).toBe(true);
    }
  });

  it('async convert equals the synchronous one and rejects with AbortError when aborted', async () => {
    const n = 5_000_000;
    const x = tensor(new Float32Array(randomBytes('f32', n, 5).buffer), [n]);
    const y = await convert(x, 'bf16');
    expect(Buffer.from(y.bytes()).equals(Buffer.from(x.to('bf16').bytes()))).toBe(true);
    const ac = new AbortController();
    ac.abort();
    await expect(convert(x, 'bf16', { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    const ac2 = new AbortController();
    const p = convert(x, 'f16', { signal: ac2.signal });
    ac2.abort();
    // Aborted before the promise could settle: always an AbortError, however far the native work got.
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  });

  it('same-dtype conversion copies; pass-through dtypes refuse arithmetic', () => {
    const x = tensor(new Float32Array([1, 2, 3]), [3]);
    const y = x.to('f32');
    expect(y.data).not.toBe(x.data);
    expect([...(y.data as Float32Array)]).toEqual([1, 2, 3]);
    const f4 = zeros([4], 'f4');
    expect(f4.data.byteLength).toBe(2);
    expect(f4.to('f4').data.byteLength).toBe(2);
    expect(() => f4.to('f32')).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(f32FromBits(0x3f800000)).toBe(1);
  });
});

// Type-level use of the exported TypedArray type (tsc checks this file).
export const _typed: TypedArray = new Float32Array(1);
