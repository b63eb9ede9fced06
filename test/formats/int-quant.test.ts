// SPDX-License-Identifier: MIT
// Integer RTN (compressed-tensors math, pack-quantized) against the committed numpy implementation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compare, dequantizeSync, QuantizedTensor, quantize, quantizeSync, tensor } from '../../lib/index';
import { native } from '../../lib/native';
import { repoRoot } from '../helpers/paths';

interface Case {
  dtype: 'f32' | 'bf16'; bits: number; symmetric: boolean; groupSize: number | 'channel' | 'tensor';
  scales: number[]; zeroPoints: number[]; codes: string; packed: string;
}
const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/int-golden.json'), 'utf8')) as { shape: number[]; input_f32_le: string; cases: Case[] };
const raw = Buffer.from(doc.input_f32_le, 'base64');
const input = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
const [rows, cols] = doc.shape;

function zeroPoints(q: QuantizedTensor, c: Case): number[] {
  const zp = q.parts.weight_zero_point;
  if (c.symmetric) {
    expect(zp).toBeUndefined();
    return new Array(c.zeroPoints.length).fill(0);
  }
  if (c.groupSize === 'tensor') return Array.from(zp.data as Int32Array);
  const ng = c.zeroPoints.length / rows;
  const zw = Math.ceil((rows * c.bits) / 32);
  expect(zp.shape).toEqual([zw, ng]);
  const byGroup = new Int32Array(ng * zw);
  const zin = zp.data as Int32Array;
  for (let g = 0; g < ng; g++) for (let w = 0; w < zw; w++) byGroup[g * zw + w] = zin[w * ng + g];
  const zt = new Int8Array(ng * rows);
  native.unpackIntRows(byGroup, ng, rows, c.bits, zt);
  const out: number[] = [];
  for (let r = 0; r < rows; r++) for (let g = 0; g < ng; g++) out.push(zt[g * rows + r]);
  return out;
}

describe('int RTN equals the numpy reference', () => {
  for (const c of doc.cases) {
    it(`${c.dtype} ${c.bits}-bit ${c.symmetric ? 'sym' : 'asym'} group ${c.groupSize}: codes, packing, scales, zero points`, async () => {
      const x32 = tensor(input, [rows, cols]);
      const x = c.dtype === 'f32' ? x32 : x32.to('bf16');
      const spec = { scheme: 'int', bits: c.bits, symmetric: c.symmetric, groupSize: c.groupSize } as const;
      for (const q of [quantizeSync(x, spec), await quantize(x, spec)]) {
        expect(Buffer.from(q.parts.weight_packed.bytes()).equals(Buffer.from(c.packed, 'base64'))).toBe(true);
        const codes = new Int8Array(rows * cols);
        native.unpackIntRows(q.parts.weight_packed.data as Int32Array, rows, cols, c.bits, codes);
        expect(Buffer.from(codes.buffer).equals(Buffer.from(c.codes, 'base64'))).toBe(true);
        expect(q.parts.weight_scale.dtype).toBe(c.dtype);
        expect(Array.from(new Uint32Array(q.parts.weight_scale.to('f32').data.buffer as ArrayBuffer))).toEqual(c.scales);
        expect(zeroPoints(q, c)).toEqual(c.zeroPoints);
        expect(Array.from(q.parts.weight_shape.data as BigInt64Array)).toEqual([BigInt(rows), BigInt(cols)]);
        const back = dequantizeSync(q, c.dtype);
        expect(back.dtype).toBe(c.dtype);
        // One scale for the whole tensor meets the outlier (4.0 among values of ~0.05): little signal survives.
        expect(compare(x, back).sqnrDb).toBeGreaterThan(c.bits >= 4 && c.groupSize !== 'tensor' ? 10 : 2);
      }
    });
  }

  it('packs and unpacks every width with codes straddling words', () => {
    for (let bits = 1; bits <= 8; bits++) {
      const n = 37;
      const codes = Int8Array.from({ length: 3 * n }, (_, i) => ((i * 7) % (1 << bits)) - (1 << (bits - 1)));
      const words = new Int32Array(3 * Math.ceil((n * bits) / 32));
      native.packIntRows(codes, 3, n, bits, words);
      const back = new Int8Array(3 * n);
      native.unpackIntRows(words, 3, n, bits, back);
      expect(Array.from(back)).toEqual(Array.from(codes));
    }
  });

  it('refuses groups that do not divide the row unless pad is set; checks bits and non-finite input', () => {
    const x = tensor(new Float32Array(4 * 100).fill(0.5), [4, 100]);
    expect(() => quantizeSync(x, { scheme: 'int', bits: 4, groupSize: 64 })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    const padded = quantizeSync(x, { scheme: 'int', bits: 4, groupSize: 64, pad: true });
    expect(padded.parts.weight_scale.shape).toEqual([4, 2]);
    expect(compare(x, dequantizeSync(padded)).maxAbs).toBeLessThan(0.05);
    expect(() => quantizeSync(x, { scheme: 'int', bits: 9 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    const bad = tensor([1, 2, Infinity, 4], [1, 4]);
    expect(() => quantizeSync(bad, { scheme: 'int', bits: 4, groupSize: 'channel' })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 2 }));
    const zeros = tensor(new Float32Array(8), [2, 4]);
    expect((dequantizeSync(quantizeSync(zeros, { scheme: 'int', bits: 4, groupSize: 'channel' })).data as Float32Array).every((v) => v === 0)).toBe(true);
  });
});
