// SPDX-License-Identifier: MIT
// NF4 against the committed numpy implementation of bitsandbytes' blockwise quantization.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compare, dequantizeSync, quantize, quantizeSync, tensor } from '../../lib/index';
import { repoRoot } from '../helpers/paths';

const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/nf4-golden.json'), 'utf8')) as {
  input_f32_le: string; cases: { dtype: 'f32' | 'bf16'; blockSize: number; absmax: number[]; packed: string }[];
};
const raw = Buffer.from(doc.input_f32_le, 'base64');
const input = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));

describe('nf4 equals the numpy reference', () => {
  for (const c of doc.cases) {
    it(`${c.dtype}, block ${c.blockSize}: packed codes and absmax exactly`, async () => {
      const x32 = tensor(input, [input.length]);
      const x = c.dtype === 'f32' ? x32 : x32.to('bf16');
      for (const q of [quantizeSync(x, { scheme: 'nf4', blockSize: c.blockSize }), await quantize(x, { scheme: 'nf4', blockSize: c.blockSize })]) {
        expect(Buffer.from(q.parts.weight.bytes()).equals(Buffer.from(c.packed, 'base64'))).toBe(true);
        expect(q.parts.weight.shape).toEqual([Math.ceil(input.length / 2), 1]);
        expect(Array.from(new Uint32Array(q.parts.absmax.data.buffer as ArrayBuffer))).toEqual(c.absmax);
        expect(q.parts.quant_map.shape).toEqual([16]);
        const back = dequantizeSync(q);
        expect(compare(x.to('f32'), back).sqnrDb).toBeGreaterThan(15);
        // The all-zero block dequantizes to exact zeros.
        expect((back.data as Float32Array).subarray(64, 128).every((v) => v === 0)).toBe(true);
      }
    });
  }

  it('refuses unsupported block sizes, double quantization and non-finite input', () => {
    const x = tensor([1, 2, 3, NaN]);
    expect(() => quantizeSync(tensor([1, 2]), { scheme: 'nf4', blockSize: 48 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => quantizeSync(tensor([1, 2]), { scheme: 'nf4', doubleQuant: true })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => quantizeSync(x, { scheme: 'nf4' })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 3 }));
  });
});
