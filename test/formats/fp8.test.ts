// SPDX-License-Identifier: MIT
// FP8 weight quantization against the committed numpy implementation of compressed-tensors' math.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compare, dequantizeSync, quantize, quantizeSync, tensor } from '../../lib/index';
import { repoRoot } from '../helpers/paths';

interface Case { dtype: 'f32' | 'bf16'; format: 'e4m3' | 'e5m2'; granularity: 'tensor' | 'channel' | 'block'; shape: number[]; scales: number[]; codes: string }
const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/fp8-golden.json'), 'utf8')) as { input_f32_le: string; cases: Case[] };
const raw = Buffer.from(doc.input_f32_le, 'base64');
const input = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));

describe('fp8 quantization equals the numpy reference', () => {
  for (const c of doc.cases) {
    it(`${c.dtype} ${c.format} ${c.granularity}: codes and scales exactly`, async () => {
      const x32 = tensor(input, c.shape);
      const x = c.dtype === 'f32' ? x32 : x32.to('bf16');
      const spec = { scheme: 'fp8', format: c.format, granularity: c.granularity } as const;
      for (const q of [quantizeSync(x, spec), await quantize(x, spec)]) {
        expect(Buffer.from(q.parts.weight.bytes()).equals(Buffer.from(c.codes, 'base64'))).toBe(true);
        expect(q.parts.weight_scale.dtype).toBe(c.dtype);
        const scales = new Uint32Array(q.parts.weight_scale.to('f32').data.buffer as ArrayBuffer);
        expect(Array.from(scales)).toEqual(c.scales);
        const back = dequantizeSync(q, c.dtype);
        expect(compare(x, back).sqnrDb).toBeGreaterThan(c.format === 'e4m3' ? 25 : 18);
      }
    });
  }

  it('refuses bad specs and non-finite weights; nonFinite zero maps them to 0', () => {
    const x = tensor([1, NaN, 3, 4], [2, 2]);
    expect(() => quantizeSync(x, { scheme: 'fp8' })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 1 }));
    const z = quantizeSync(x, { scheme: 'fp8' }, { nonFinite: 'zero' });
    expect((dequantizeSync(z).data as Float32Array)[1]).toBe(0);
    expect(() => quantizeSync(x, { scheme: 'fp8', format: 'e3m4' } as never)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => quantizeSync(tensor([1, 2]), { scheme: 'fp8', granularity: 'channel' })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => quantizeSync(x, { scheme: 'fp8', blockSize: 64 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
  });
});
