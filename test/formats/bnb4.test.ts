// SPDX-License-Identifier: MIT
// bitsandbytes NF4/FP4 against the committed numpy implementation of its torch backend, the optimized kernels
// against the scalar reference, double quantization, and the state-dict layout.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bitsandbytesEntries, bitsandbytesPlan, bnb4Table, bnbDynamicMap, compare, DType, dequantize, dequantizeSync, getThreads, openSync,
  QuantizedTensor, quantize, quantizeSync, readBitsandbytes, saveSync, setThreads, tensor, Tensor,
} from '../../lib/index';
import { pythonFloatRepr } from '../../lib/bitsandbytes';
import { native } from '../../lib/native';
import { repoRoot } from '../helpers/paths';

interface Case { dtype?: 'f32' | 'bf16' | 'f16'; type: 'nf4' | 'fp4'; blockSize: number; absmax: number[]; packed: string }
const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/bnb4-golden.json'), 'utf8')) as {
  input_f32_le: string; cases: Case[]; propagate: { input_f32_le: string; cases: Case[] };
  tables: { nf4: number[]; fp4: number[] }; dynamic_map: number[];
  double_quant: { input_f32_le: string; blockSize: number; absmax: number[]; offset: number; codes: string; nested_absmax: number[] };
};
const f32s = (b64: string) => {
  const raw = Buffer.from(b64, 'base64');
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const bytesEqual = (a: Tensor | Uint8Array, b: Uint8Array) => Buffer.from(a instanceof Tensor ? a.bytes() : a).equals(Buffer.from(b));
const input = f32s(doc.input_f32_le);
const TIERS = ['baseline', 'avx2', 'avx512'] as const;
const tiers = TIERS.slice(0, TIERS.indexOf(native.cpuInfo().simdSupported) + 1);
const threads0 = getThreads();
afterAll(() => {
  native.setSimd(native.cpuInfo().simdSupported);
  setThreads(threads0);
});

describe('nf4 and fp4 equal the numpy reference', () => {
  it('code tables are bitsandbytes\' get_4bit_type values', () => {
    expect(bitsOf(bnb4Table('nf4'))).toEqual(doc.tables.nf4);
    expect(bitsOf(bnb4Table('fp4'))).toEqual(doc.tables.fp4);
    expect(bitsOf(bnbDynamicMap())).toEqual(doc.dynamic_map);
  });

  for (const c of doc.cases) {
    it(`${c.type} ${c.dtype}, block ${c.blockSize}: packed codes and absmax exactly (ties, zeros, tiny and partial blocks)`, async () => {
      const x32 = tensor(input, [input.length]);
      const x = c.dtype === 'f32' ? x32 : x32.to(c.dtype!);
      const spec = { scheme: c.type, blockSize: c.blockSize } as const;
      for (const q of [quantizeSync(x, spec), await quantize(x, spec)]) {
        expect(bytesEqual(q.parts.weight, Buffer.from(c.packed, 'base64'))).toBe(true);
        expect(q.parts.weight.shape).toEqual([Math.ceil(input.length / 2), 1]);
        expect(bitsOf(q.parts.absmax.data as Float32Array)).toEqual(c.absmax);
        expect(q.spec).toEqual({ scheme: c.type, blockSize: c.blockSize, dtype: c.dtype });
        const back = dequantizeSync(q);
        expect(compare(x.to('f32'), back).sqnrDb).toBeGreaterThan(c.type === 'nf4' ? 15 : 10);
        expect((back.data as Float32Array).subarray(64, 128).every((v) => v === 0)).toBe(true);  // the all-zero block
      }
      // The scalar reference gives the same bytes.
      const packed = new Uint8Array(Math.ceil(input.length / 2));
      const absmax = new Float32Array(Math.ceil(input.length / c.blockSize));
      native.bnb4QuantizeSync(c.type, x.bytes(), x.dtype, input.length, c.blockSize, packed, absmax, true, 'ref');
      expect(bytesEqual(packed, Buffer.from(c.packed, 'base64'))).toBe(true);
      expect(bitsOf(absmax)).toEqual(c.absmax);
    });
  }

  for (const c of doc.propagate.cases) {
    it(`${c.type}: NaN and infinity with nonFinite 'propagate' are quantized as torch computes them`, () => {
      const x = tensor(f32s(doc.propagate.input_f32_le));
      const q = quantizeSync(x, { scheme: c.type, blockSize: c.blockSize }, { nonFinite: 'propagate' });
      expect(bytesEqual(q.parts.weight, Buffer.from(c.packed, 'base64'))).toBe(true);
      expect(bitsOf(q.parts.absmax.data as Float32Array)).toEqual(c.absmax);
    });
  }

  it('refuses non-finite input by default (ERR_NON_FINITE with the first index), zeroes it on request', async () => {
    const x = tensor(f32s(doc.propagate.input_f32_le));
    expect(() => quantizeSync(x, { scheme: 'nf4' })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 70 }));
    await expect(quantize(x, { scheme: 'fp4' })).rejects.toMatchObject({ code: 'ERR_NON_FINITE', index: 70 });
    const z = quantizeSync(x, { scheme: 'nf4' }, { nonFinite: 'zero' });
    const clean = Float32Array.from(x.data as Float32Array, (v) => (Number.isFinite(v) ? v : 0));
    expect(bytesEqual(z.parts.weight, quantizeSync(tensor(clean), { scheme: 'nf4' }).parts.weight.bytes())).toBe(true);
  });

  it('refuses block sizes bitsandbytes does not have and bad option types', () => {
    for (const blockSize of [16, 48, 8192, 0]) {
      expect(() => quantizeSync(tensor([1, 2]), { scheme: 'nf4', blockSize })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    }
    expect(() => quantizeSync(tensor([1, 2]), { scheme: 'fp4', doubleQuant: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => quantizeSync(tensor([1, 2]), { scheme: 'nf4', groupSize: 64 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
  });
});

// Random weights with exact ties (values on midpoints, scaled by a power-of-two absmax), zeros and outliers.
function weights(n: number, seed: number, table: Float32Array): Float32Array {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const sorted = Array.from(table).sort((a, b) => a - b);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.1) x[i] = 0;
    else if (r < 0.3) x[i] = ((sorted[(i * 7) % 15] + sorted[(i * 7) % 15 + 1]) / 2) * 4;  // a tie once absmax is 4
    else if (r < 0.31) x[i] = (rnd() - 0.5) * 400;  // an outlier
    else x[i] = (rnd() - 0.5) * 2 * (1 + (i % 5));
    if (i % 64 === 3) x[i] = 4;  // absmax 4 in most blocks of 64 (and so in larger ones)
  }
  return x;
}

describe('optimized 4-bit kernels equal the scalar reference', () => {
  const sizes = [1, 7, 31, 32, 33, 257, 1000, 4097, (1 << 17) + 4096 + 31];
  for (const type of ['nf4', 'fp4'] as const) {
    it(`${type}: every SIMD tier, f32/f16/bf16, block sizes 32...4096, sizes ${sizes.join(', ')}`, () => {
      const table = bnb4Table(type);
      for (const n of sizes) {
        const x32 = tensor(weights(n, n * 31 + 7, table));
        for (const dtype of ['f32', 'f16', 'bf16'] as DType[]) {
          const x = dtype === 'f32' ? x32 : x32.to(dtype);
          for (const bs of [32, 64, 256, 4096]) {
            const refP = new Uint8Array(Math.ceil(n / 2));
            const refA = new Float32Array(Math.ceil(n / bs));
            native.bnb4QuantizeSync(type, x.bytes(), dtype, n, bs, refP, refA, true, 'ref');
            const refY = new Float32Array(n);
            native.bnb4DequantizeSync(type, refP, refA, n, bs, refY, 'ref');
            for (const tier of tiers) {
              native.setSimd(tier);
              const p = new Uint8Array(refP.length).fill(0xa5);
              const a = new Float32Array(refA.length).fill(-7);
              native.bnb4QuantizeSync(type, x.bytes(), dtype, n, bs, p, a, true);
              const y = new Float32Array(n).fill(-7);
              native.bnb4DequantizeSync(type, p, a, n, bs, y);
              const where = `${type} n=${n} ${dtype} block ${bs} ${tier}`;
              expect(bytesEqual(p, refP), where).toBe(true);
              expect(bitsOf(a), where).toEqual(bitsOf(refA));
              expect(bitsOf(y), where).toEqual(bitsOf(refY));
            }
          }
        }
      }
      native.setSimd(native.cpuInfo().simdSupported);
    });
  }

  it('values within 64 ulps of every bucket bound and every lookup-cell edge bucket exactly as the reference', () => {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const near = (v: number): number[] => {
      const out: number[] = [];
      f[0] = v;
      const b = u[0];
      for (let d = -64; d <= 64; d++) {
        u[0] = (b + d) >>> 0;
        if (Number.isFinite(f[0]) && Math.abs(f[0]) <= 1) out.push(f[0]);
      }
      u[0] = b;
      return out;
    };
    for (const type of ['nf4', 'fp4'] as const) {
      const table = Array.from(bnb4Table(type)).sort((a, b) => a - b);
      const points: number[] = [0, -0, 1e-30, -1e-30];
      for (let i = 0; i < 15; i++) points.push(...near(Math.fround((table[i] + table[i + 1]) / 2)));
      for (let c = 0; c <= 32; c++) points.push(...near(c / 16 - 1));
      // Blocks of 64 led by 1.0, so absmax is 1 and s = x exactly.
      const blocks = Math.ceil(points.length / 63);
      const x = new Float32Array(blocks * 64);
      for (let b = 0; b < blocks; b++) {
        x[b * 64] = 1;
        for (let j = 1; j < 64; j++) x[b * 64 + j] = points[(b * 63 + j - 1) % points.length];
      }
      const refP = new Uint8Array(x.length / 2);
      const refA = new Float32Array(blocks);
      native.bnb4QuantizeSync(type, x, 'f32', x.length, 64, refP, refA, true, 'ref');
      for (const tier of tiers) {
        native.setSimd(tier);
        const p = new Uint8Array(refP.length);
        native.bnb4QuantizeSync(type, x, 'f32', x.length, 64, p, new Float32Array(blocks), true);
        expect(bytesEqual(p, refP), `${type} ${tier}`).toBe(true);
      }
      native.setSimd(native.cpuInfo().simdSupported);
    }
  });

  it('blocks holding NaN or infinity among finite blocks take the reference path inside the optimized kernel', () => {
    const n = 64 * 300;
    const x = weights(n, 5, bnb4Table('nf4'));
    x[64 * 10 + 5] = NaN;
    x[64 * 200 + 63] = -Infinity;
    for (const type of ['nf4', 'fp4'] as const) {
      const refP = new Uint8Array(n / 2);
      const refA = new Float32Array(n / 64);
      native.bnb4QuantizeSync(type, x, 'f32', n, 64, refP, refA, false, 'ref');
      const q = quantizeSync(tensor(x), { scheme: type }, { nonFinite: 'propagate' });
      expect(bytesEqual(q.parts.weight, refP)).toBe(true);
      expect(bitsOf(q.parts.absmax.data as Float32Array)).toEqual(bitsOf(refA));
      expect(Number.isNaN((q.parts.absmax.data as Float32Array)[10])).toBe(true);
      expect((q.parts.absmax.data as Float32Array)[200]).toBe(Infinity);
    }
  });

  it('gives the same bytes on 1 and 2 threads', async () => {
    const x = tensor(weights((1 << 18) + 96, 3, bnb4Table('fp4')), [(1 << 18) / 32 + 3, 32]);
    setThreads(1);
    const one = quantizeSync(x, { scheme: 'fp4', blockSize: 128, doubleQuant: true });
    setThreads(2);
    const two = await quantize(x, { scheme: 'fp4', blockSize: 128, doubleQuant: true });
    for (const k of Object.keys(one.parts)) expect(bytesEqual(one.parts[k], two.parts[k].bytes()), k).toBe(true);
    expect(bitsOf((await dequantize(two)).data as Float32Array)).toEqual(bitsOf(dequantizeSync(one).data as Float32Array));
  });
});

describe('double quantization', () => {
  const dq = doc.double_quant;
  const w = f32s(dq.input_f32_le);

  it('equals the numpy reference: absmax codes, nested absmax, offset and the dynamic map', () => {
    const q = quantizeSync(tensor(w), { scheme: 'nf4', blockSize: dq.blockSize, doubleQuant: true });
    expect(q.spec).toEqual({ scheme: 'nf4', blockSize: 64, doubleQuant: true, dtype: 'f32' });
    expect(q.parts.absmax.dtype).toBe('u8');
    expect(bytesEqual(q.parts.absmax, Buffer.from(dq.codes, 'base64'))).toBe(true);
    expect(bitsOf(q.parts.nested_absmax.data as Float32Array)).toEqual(dq.nested_absmax);
    expect(bitsOf(q.parts.nested_offset.data as Float32Array)).toEqual([dq.offset]);
    expect(bitsOf(q.parts.nested_quant_map.data as Float32Array)).toEqual(doc.dynamic_map);
    // The 4-bit codes are those of the plain quantization.
    expect(bytesEqual(q.parts.weight, quantizeSync(tensor(w), { scheme: 'nf4' }).parts.weight.bytes())).toBe(true);
  });

  it('dequantizes as bitsandbytes: absmax = code[q] * nested_absmax[i / 256] + offset (f32), then code * absmax', () => {
    const q = quantizeSync(tensor(w), { scheme: 'nf4', doubleQuant: true });
    const map = bnbDynamicMap();
    const codes = q.parts.absmax.data as Uint8Array;
    const nested = q.parts.nested_absmax.data as Float32Array;
    const offset = (q.parts.nested_offset.data as Float32Array)[0];
    const absmax = Float32Array.from(codes, (c, i) => Math.fround(Math.fround(map[c] * nested[Math.floor(i / 256)]) + offset));
    const table = bnb4Table('nf4');
    const packed = q.parts.weight.data as Uint8Array;
    const expected = Float32Array.from(w, (_v, i) => Math.fround(table[i % 2 ? packed[i >> 1] & 15 : packed[i >> 1] >> 4] * absmax[Math.floor(i / 64)]));
    expect(bitsOf(dequantizeSync(q).data as Float32Array)).toEqual(bitsOf(expected));
    // Double quantization costs little accuracy.
    const plain = compare(tensor(w), dequantizeSync(quantizeSync(tensor(w), { scheme: 'nf4' }))).sqnrDb;
    expect(compare(tensor(w), dequantizeSync(q)).sqnrDb).toBeGreaterThan(plain - 0.5);
  });
});

describe('bitsandbytes state-dict layout', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-bnb4-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes quant_state JSON exactly as Python\'s json.dumps does', () => {
    const x = tensor(weights(64 * 12, 9, bnb4Table('nf4')), [12, 64]).to('bf16');
    const e = bitsandbytesEntries('m.weight', quantizeSync(x, { scheme: 'nf4' }));
    expect(Buffer.from(e['m.weight.quant_state.bitsandbytes__nf4'].bytes()).toString()).toBe(
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [12, 64]}');
    const q = quantizeSync(x, { scheme: 'fp4', blockSize: 32, doubleQuant: true });
    const offset = (q.parts.nested_offset.data as Float32Array)[0];
    const d = bitsandbytesEntries('m.weight', q);
    expect(Object.keys(d).sort()).toEqual(['m.weight', 'm.weight.absmax', 'm.weight.nested_absmax', 'm.weight.nested_quant_map',
      'm.weight.quant_map', 'm.weight.quant_state.bitsandbytes__fp4']);
    expect(Buffer.from(d['m.weight.quant_state.bitsandbytes__fp4'].bytes()).toString()).toBe(
      `{"quant_type": "fp4", "blocksize": 32, "dtype": "bfloat16", "shape": [12, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": ${pythonFloatRepr(offset)}}`);
  });

  it('formats floats as Python\'s repr', () => {
    const cases: [number, string][] = [[1, '1.0'], [0.1, '0.1'], [1e-5, '1e-05'], [0.0001, '0.0001'], [1e16, '1e+16'], [1234567890123456, '1234567890123456.0'],
      [-2.5e-7, '-2.5e-07'], [Math.fround(0.1), '0.10000000149011612'], [123.456, '123.456'], [0, '0.0'], [-0, '-0.0'], [1.5e300, '1.5e+300'],
      [Math.fround(1.1754943508222875e-38), '1.1754943508222875e-38'], [5e-324, '5e-324']];
    for (const [v, s] of cases) expect(pythonFloatRepr(v), String(v)).toBe(s);
  });

  for (const spec of [{ scheme: 'nf4' }, { scheme: 'fp4', blockSize: 128 }, { scheme: 'nf4', doubleQuant: true }, { scheme: 'fp4', blockSize: 32, doubleQuant: true }] as const) {
    it(`${JSON.stringify(spec)}: saved, reopened and read back as the same QuantizedTensor; the plan matches the entries`, async () => {
      const x = tensor(weights(96 * 130, 21, bnb4Table(spec.scheme)), [96, 130]).to('f16');
      const q = quantizeSync(x, spec);
      const file = path.join(dir, `${spec.scheme}-${spec.blockSize ?? 64}-${Boolean((spec as { doubleQuant?: boolean }).doubleQuant)}.safetensors`);
      const entries = bitsandbytesEntries('layer.weight', q, { padded: true });
      saveSync(file, entries);
      const plan = bitsandbytesPlan('layer.weight', x.shape, 'f16', spec);
      expect(plan.map((p) => [p.name, p.dtype, p.shape]).sort()).toEqual(Object.entries(entries).map(([k, t]) => [k, t.dtype, [...t.shape]]).sort());
      const f = openSync(file);
      try {
        const back = readBitsandbytes(f, 'layer.weight');
        expect(back).toBeInstanceOf(QuantizedTensor);
        expect(back.spec).toEqual(q.spec);
        expect(back.shape).toEqual([96, 130]);
        expect(Object.keys(back.parts).sort()).toEqual(Object.keys(q.parts).sort());
        for (const k of Object.keys(q.parts)) expect(bytesEqual(back.parts[k], q.parts[k].bytes()), k).toBe(true);
        expect(bitsOf(dequantizeSync(back).data as Float32Array)).toEqual(bitsOf(dequantizeSync(q).data as Float32Array));
        expect(dequantizeSync(back, 'f16').dtype).toBe('f16');
      } finally {
        f.close();
      }
    });
  }

  it('refuses a quant state it cannot read', () => {
    const file = path.join(dir, 'bad.safetensors');
    const q = quantizeSync(tensor(new Float32Array(128).fill(1)), { scheme: 'nf4' });
    const e = bitsandbytesEntries('w', q);
    saveSync(file, { ...e, 'w.quant_state.bitsandbytes__nf4': tensor(new Uint8Array(Buffer.from('{"quant_type": "int4", "shape": [128]}')), [38], 'u8') });
    const f = openSync(file);
    try {
      expect(() => readBitsandbytes(f, 'w')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
      expect(() => readBitsandbytes(f, 'nothing')).toThrow(expect.objectContaining({ code: 'ERR_TENSOR_NOT_FOUND' }));
    } finally {
      f.close();
    }
  });
});
