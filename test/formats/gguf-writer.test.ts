// SPDX-License-Identifier: MIT
// Writing GGUF: byte-identical round trips of llama.cpp's own files, quantized tensors, and refusals.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createWriter, dequantizeSync, open, openSync, QuantizedTensor, quantizeSync, save, saveSync, Tensor, tensor, zeros,
} from '../../lib/index';
import { repoRoot, tempDir } from '../helpers/paths';

const ggufDir = path.resolve(repoRoot, '../shared/realdata/stories260K/gguf');
let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function tmp(): string {
  const t = tempDir('ws-ggufw-');
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('round trips of real GGUF files', () => {
  for (const name of ['stories260K-f32.gguf', 'stories260K-F16.gguf']) {
    it(`${name}: reading every tensor and the typed metadata and saving gives the same bytes`, async () => {
      const src = path.join(ggufDir, name);
      const f = await open(src);
      const tensors: Record<string, Tensor | QuantizedTensor> = {};
      for (const n of f.names()) tensors[n] = f.get(n);
      const out = path.join(tmp(), name);
      await save(out, tensors, { format: 'gguf', metadata: f.metadata, metadataTypes: f.metadataTypes });
      expect(fs.readFileSync(out).equals(fs.readFileSync(src))).toBe(true);
      f.close();
    });
  }
});

describe('quantized GGUF', () => {
  it('q8_0 and q4_0 tensors are stored as blocks and read back as the same QuantizedTensor', () => {
    const dir = tmp();
    let s = 3;
    const x = tensor(Float32Array.from({ length: 64 * 96 }, () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32 - 0.5; }), [64, 96]);
    const q8 = quantizeSync(x, { scheme: 'ggml', type: 'q8_0' });
    const q4 = quantizeSync(x, { scheme: 'ggml', type: 'q4_0' });
    const out = path.join(dir, 'q.gguf');
    saveSync(out, { a: q8, b: q4, norm: tensor([1, 2, 3]) }, { format: 'gguf', metadata: { 'general.architecture': 'test', 'general.alignment': 64 } });
    const f = openSync(out);
    expect(f.metadataTypes['general.alignment']).toBe('u32');
    const a = f.get('a') as QuantizedTensor;
    const b = f.get('b') as QuantizedTensor;
    expect(a).toBeInstanceOf(QuantizedTensor);
    expect([String(a), String(b)]).toEqual(['QuantizedTensor<ggml q8_0>[64, 96]', 'QuantizedTensor<ggml q4_0>[64, 96]']);
    expect(Buffer.from(a.parts.blocks.bytes()).equals(Buffer.from(q8.parts.blocks.bytes()))).toBe(true);
    expect(Buffer.from(b.parts.blocks.bytes()).equals(Buffer.from(q4.parts.blocks.bytes()))).toBe(true);
    expect(Array.from(dequantizeSync(a).data as Float32Array)).toEqual(Array.from(dequantizeSync(q8).data as Float32Array));
    expect(() => f.getTensor('a')).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(fs.statSync(out).size % 64).toBe(0);  // the last tensor is padded to the alignment too
    f.close();
  });

  it('infers metadata types, and explicit types win', () => {
    const out = path.join(tmp(), 'm.gguf');
    saveSync(out, { t: zeros([2]) }, {
      format: 'gguf',
      metadata: { s: 'x', u: 7, i: -3, f: 0.5, b: true, big: 2n ** 40n, arr: new Float32Array([1, 2]), strs: ['a', 'b'], forced: 7 },
      metadataTypes: { forced: 'u8' },
    });
    const f = openSync(out);
    expect({ ...f.metadataTypes }).toEqual({ s: 'string', u: 'u32', i: 'i32', f: 'f32', b: 'bool', big: 'i64', arr: 'array<f32>', strs: 'array<string>', forced: 'u8' });
    expect(f.getBigInt('big')).toBe(2n ** 40n);
    expect(Array.from(f.getArray('arr', 'f32') as Float32Array)).toEqual([1, 2]);
    f.close();
  });
});

describe('refusals (nothing is written)', () => {
  it('names over 63 bytes, dtypes GGUF lacks, sharding, bad alignment, rows that blocks do not divide', () => {
    const dir = tmp();
    const out = path.join(dir, 'x.gguf');
    expect(() => saveSync(out, { ['n'.repeat(64)]: zeros([1]) }, { format: 'gguf' })).toThrow(expect.objectContaining({ code: 'ERR_GGUF_NAME' }));
    expect(() => saveSync(out, { a: zeros([1], 'u8') }, { format: 'gguf' })).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => saveSync(out, { a: zeros([1]) }, { format: 'gguf', shardSize: 10 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => saveSync(out, { a: zeros([1]) }, { format: 'gguf', metadata: { 'general.alignment': 4 } })).toThrow(expect.objectContaining({ code: 'ERR_GGUF_ALIGNMENT' }));
    expect(() => saveSync(out, { a: zeros([1, 2, 3, 4, 5]) }, { format: 'gguf' })).toThrow(expect.objectContaining({ code: 'ERR_GGUF_SHAPE' }));
    expect(() => createWriter(out, { format: 'gguf', plan: [{ name: 'q', ggmlType: 'q4_0', shape: [2, 48] }] })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => createWriter(path.join(dir, 'y.safetensors'), { plan: [{ name: 'q', ggmlType: 'q4_0', shape: [2, 64] }] })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => saveSync(out, { a: zeros([1]) }, { format: 'gguf', metadata: { k: 300 }, metadataTypes: { k: 'u8' } })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
