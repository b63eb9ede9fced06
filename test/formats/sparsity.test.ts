// SPDX-License-Identifier: MIT
// Pruning masks against the committed numpy implementation of the reference selection, the optimized kernels
// against the scalar reference, mask application, and bad inputs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyMask, applyMaskAsync, compress, decompress, getThreads, Mask, mask, maskSync, openSync, readSparse, saveSync, setThreads, sparseEntries, tensor,
  type DType, type MaskOptions,
} from '../../lib/index';
import { native } from '../../lib/native';
import { repoRoot } from '../helpers/paths';

interface Case {
  shape: [number, number]; dtype: 'f32' | 'bf16'; method: 'magnitude' | 'wanda' | 'random'; sparsity: number | null; scope: 'row' | 'tensor';
  pattern: string; seed: number; w_f32_le: string; norms_f32_le: string; base: string | null; bits: string;
}
const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/sparsity-golden.json'), 'utf8')) as { cases: Case[] };
const f32s = (b64: string) => {
  const raw = Buffer.from(b64, 'base64');
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};
const u8s = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
const threads0 = getThreads();
const ALL_TIERS = ['baseline', 'avx2', 'avx512'] as const;
const TIERS = ALL_TIERS.slice(0, ALL_TIERS.indexOf(native.cpuInfo().simdSupported) + 1);
afterAll(() => {
  setThreads(threads0);
  native.setSimd(native.cpuInfo().simdSupported);
});

function optionsOf(c: Case): MaskOptions {
  const o: MaskOptions = { method: c.method };
  if (c.pattern !== 'unstructured') o.pattern = c.pattern;
  else {
    o.sparsity = c.sparsity!;
    o.scope = c.scope;
  }
  if (c.method === 'wanda') o.inputNorms = f32s(c.norms_f32_le);
  if (c.method === 'random') o.seed = c.seed;
  if (c.base) o.base = new Mask(c.shape, u8s(c.base));
  return o;
}

describe('masks equal the numpy reference selection', () => {
  for (const c of doc.cases) {
    const label = `${c.method} ${c.pattern === 'unstructured' ? `${c.sparsity} per ${c.scope}` : c.pattern} ${c.dtype} [${c.shape}]${c.base ? ' extending a base mask' : ''}`;
    it(label, async () => {
      const w32 = tensor(f32s(c.w_f32_le), c.shape);
      const w = c.dtype === 'f32' ? w32 : w32.to(c.dtype);
      const expected = u8s(c.bits);
      const o = optionsOf(c);
      for (const m of [maskSync(w, o), await mask(w, o)]) {
        expect(Buffer.from(m.bits).equals(Buffer.from(expected))).toBe(true);
        expect(m.shape).toEqual(c.shape);
      }
      // The scalar reference agrees.
      const ref = new Uint8Array(expected.length);
      const opts: Record<string, unknown> = { score: c.method, perRow: c.scope === 'row', seed: c.seed };
      if (c.pattern !== 'unstructured') [opts.n, opts.m] = c.pattern.split(':').map(Number);
      else opts.prune = Math.floor((c.scope === 'row' ? c.shape[1] : c.shape[0] * c.shape[1]) * c.sparsity!);
      if (c.method === 'wanda') opts.norms = f32s(c.norms_f32_le);
      if (c.base) opts.base = u8s(c.base);
      native.sparsityMaskSync(w.bytes(), w.dtype, c.shape[0], c.shape[1], opts, ref, 'ref');
      expect(Buffer.from(ref).equals(Buffer.from(expected))).toBe(true);
    });
  }

  it('keeps exactly N of every M, and exactly floor(cols * sparsity) pruned per row', () => {
    const w = tensor(Float32Array.from({ length: 64 * 96 }, (_v, i) => Math.round(Math.sin(i * 0.37) * 8) / 8), [64, 96]);
    const m24 = maskSync(w, { method: 'magnitude', pattern: '2:4' });
    for (let r = 0; r < 64; r++) for (let g = 0; g < 96; g += 4) expect([0, 1, 2, 3].filter((j) => m24.get(r, g + j)).length).toBe(2);
    expect(m24.density).toBe(0.5);
    const u = maskSync(w, { method: 'magnitude', sparsity: 0.37 });
    expect(Array.from(u.rowCounts()).every((n) => n === 96 - Math.floor(96 * 0.37))).toBe(true);
    const t = maskSync(w, { method: 'magnitude', sparsity: 0.37, scope: 'tensor' });
    expect(t.kept).toBe(64 * 96 - Math.floor(64 * 96 * 0.37));
  });
});

// Weights with many exact ties (a coarse grid), zeros, and a few outliers.
function weights(rows: number, cols: number, seed: number, dtype: DType) {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = Float32Array.from({ length: rows * cols }, () => {
    const r = rnd();
    return r < 0.1 ? 0 : r < 0.6 ? Math.round((rnd() - 0.5) * 16) / 8 : r < 0.61 ? (rnd() - 0.5) * 1e4 : (rnd() - 0.5) * 2;
  });
  const t = tensor(x, [rows, cols]);
  return dtype === 'f32' ? t : t.to(dtype);
}

describe('optimized selection equals the scalar reference', () => {
  const shapes: [number, number][] = [[1, 1], [1, 7], [7, 31], [3, 33], [2, 257], [5, 1000], [300, 260], [2, 70000], [3, 4096]];
  it(`unstructured per row and per tensor, N:M, with and without base masks; shapes ${shapes.map((s) => s.join('x')).join(', ')}; 1 and 2 threads`, () => {
    for (const [rows, cols] of shapes) {
      for (const dtype of ['f32', 'f16', 'bf16'] as DType[]) {
        const w = weights(rows, cols, rows * 7919 + cols, dtype);
        const norms = Float32Array.from({ length: cols }, (_v, i) => 0.5 + (i % 5) * 0.25);
        const baseBits = new Uint8Array(rows * Math.ceil(cols / 8)).map((_v, i) => (i * 37) & 0xff | 0x11);
        const specs: Record<string, unknown>[] = [];
        for (const score of ['magnitude', 'wanda', 'random'])
          for (const s of [0, 0.25, 0.5, 0.99])
            for (const perRow of [true, false]) specs.push({ score, perRow, prune: Math.floor((perRow ? cols : rows * cols) * s), seed: 3 });
        for (const [n, m] of [[2, 4], [1, 4], [3, 4], [4, 8], [5, 8], [8, 16], [3, 7]]) if (cols % m === 0) for (const score of ['magnitude', 'wanda']) specs.push({ score, n, m });
        specs.push({ score: 'magnitude', perRow: true, prune: Math.floor(cols / 2), base: baseBits });
        specs.push({ score: 'magnitude', perRow: false, prune: Math.floor((rows * cols) / 2), base: baseBits });
        for (const sp of specs) {
          if (sp.score === 'wanda') sp.norms = norms;
          const ref = new Uint8Array(rows * Math.ceil(cols / 8));
          native.sparsityMaskSync(w.bytes(), dtype, rows, cols, sp, ref, 'ref');
          for (const tier of TIERS) {
            native.setSimd(tier);
            for (const threads of [1, 2]) {
              setThreads(threads);
              const got = new Uint8Array(ref.length).fill(0xee);
              native.sparsityMaskSync(w.bytes(), dtype, rows, cols, sp, got);
              expect(Buffer.from(got).equals(Buffer.from(ref)), `${rows}x${cols} ${dtype} ${JSON.stringify({ ...sp, norms: undefined, base: !!sp.base })} ${tier} ${threads} threads`).toBe(true);
            }
          }
        }
      }
    }
    setThreads(threads0);
    native.setSimd(native.cpuInfo().simdSupported);
  });
});

describe('applyMask', () => {
  it('zeroes the pruned elements of any dtype, on every SIMD tier, for odd shapes', async () => {
    const tiers = ['baseline', 'avx2', 'avx512'] as const;
    for (const [rows, cols] of [[1, 1], [3, 7], [5, 33], [2, 257], [4, 1000]] as [number, number][]) {
      const w32 = weights(rows, cols, cols, 'f32');
      const m = maskSync(w32, { method: 'random', sparsity: 0.5, seed: cols });
      for (const dtype of ['f32', 'f16', 'bf16', 'f8_e4m3', 'f64', 'i8'] as DType[]) {
        const w = w32.to(dtype);
        const es = w.byteLength / (rows * cols);
        const wb = w.bytes();
        const expected = new Uint8Array(wb.length);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
          if (m.get(r, c)) expected.set(wb.subarray((r * cols + c) * es, (r * cols + c + 1) * es), (r * cols + c) * es);
        }
        for (const tier of tiers.slice(0, tiers.indexOf(native.cpuInfo().simdSupported) + 1)) {
          native.setSimd(tier);
          expect(Buffer.from(applyMask(w, m).bytes()).equals(Buffer.from(expected)), `${rows}x${cols} ${dtype} ${tier}`).toBe(true);
        }
        expect(Buffer.from((await applyMaskAsync(w, m)).bytes()).equals(Buffer.from(expected))).toBe(true);
      }
    }
  });

  it('combines masks with and(), and a base mask extends sparsity', () => {
    const w = weights(16, 64, 1, 'f32');
    const a = maskSync(w, { method: 'magnitude', sparsity: 0.5 });
    const b = maskSync(w, { method: 'random', sparsity: 0.5, seed: 1 });
    const both = a.and(b);
    for (let r = 0; r < 16; r++) for (let c = 0; c < 64; c++) expect(both.get(r, c)).toBe(a.get(r, c) && b.get(r, c));
    const ext = maskSync(w, { method: 'magnitude', sparsity: 0.75, base: a });
    expect(ext.and(a).bits).toEqual(ext.bits);  // everything a pruned stays pruned
    expect(Array.from(ext.rowCounts()).every((n) => n === 16)).toBe(true);
    const pruned = applyMask(w, ext);
    expect(Mask.fromNonZero(pruned).and(ext).kept).toBe(Mask.fromNonZero(pruned).kept);
  });
});

describe('bad inputs', () => {
  const w = tensor(new Float32Array(24).fill(1), [4, 6]);
  it('N >= M, M not dividing the row, sparsity outside [0, 1), shapes, statistics, non-finite scores', async () => {
    expect(() => maskSync(w, { method: 'magnitude', pattern: '4:4' })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => maskSync(w, { method: 'magnitude', pattern: '0:4' })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => maskSync(w, { method: 'magnitude', pattern: '2:4' })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => maskSync(w, { method: 'magnitude', pattern: 'two:four' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    for (const sparsity of [1, -0.1, 1.5, NaN]) expect(() => maskSync(w, { method: 'magnitude', sparsity })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => maskSync(w, { method: 'wanda', sparsity: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => maskSync(w, { method: 'wanda', sparsity: 0.5, inputNorms: new Float32Array(5) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => maskSync(w, { method: 'wanda', sparsity: 0.5, inputNorms: new Float32Array([1, 1, -1, 1, 1, 1]) })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => maskSync(w, { method: 'magnitude', sparsity: 0.5, base: new Mask([4, 8], new Uint8Array(4)) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => applyMask(w, new Mask([6, 4], new Uint8Array(6)))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => maskSync(w, { method: 'magnitude', sparsity: 0.5, scope: 'column' as 'row' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => maskSync(w, { method: 'magnitude', sparsity: 0.5, typo: 1 } as MaskOptions)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    const bad = tensor(Float32Array.from({ length: 24 }, (_v, i) => (i === 13 ? NaN : 1)), [4, 6]);
    expect(() => maskSync(bad, { method: 'magnitude', sparsity: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 13 }));
    await expect(mask(bad, { method: 'magnitude', sparsity: 0.5, scope: 'tensor' })).rejects.toMatchObject({ code: 'ERR_NON_FINITE', index: 13 });
    expect(() => maskSync(w, { method: 'wanda', sparsity: 0.5, inputNorms: new Float32Array([1, 1, Infinity, 1, 1, 1]) })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE' }));
    const huge = tensor(new Float32Array(24).fill(3e38), [4, 6]);
    expect(() => maskSync(huge, { method: 'wanda', sparsity: 0.5, inputNorms: new Float32Array(6).fill(10) })).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 0 }));
  });

  it('aborts', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(mask(w, { method: 'magnitude', sparsity: 0.5, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });
});

interface CompressedCase {
  shape: [number, number]; dtype: 'f32' | 'bf16' | 'f16' | 'f8'; raw: string;
  sparse_bitmask: { compressed: string; bitmask: string; row_offsets: number[] };
  sparse_24: { compressed: string; bitmask: string }; nv24: { values: string; meta: string };
}
const compressedCases = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/sparsity-golden.json'), 'utf8')) as { compressed: CompressedCase[] }).compressed;

describe('compressed sparse storage', () => {
  const dtypes = { f32: 'f32', bf16: 'bf16', f16: 'f16', f8: 'f8_e4m3' } as const;
  const rawTensor = (c: CompressedCase) => {
    const b = u8s(c.raw);
    const d = dtypes[c.dtype];
    const data = d === 'f32' ? new Float32Array(b.buffer, b.byteOffset, b.length / 4) : d === 'f8_e4m3' ? b : new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
    return tensor(data, c.shape, d);
  };
  for (const c of compressedCases) {
    it(`${c.dtype} [${c.shape}]: sparse-bitmask, sparse-24-bitmask and nv24 equal the numpy reference; round trips are bit-exact`, async () => {
      const w = rawTensor(c);
      const bm = compress(w, { format: 'sparse-bitmask' });
      expect(Buffer.from(bm.parts.compressed.bytes()).equals(Buffer.from(c.sparse_bitmask.compressed, 'base64'))).toBe(true);
      expect(Buffer.from(bm.parts.bitmask.bytes()).equals(Buffer.from(c.sparse_bitmask.bitmask, 'base64'))).toBe(true);
      expect(Array.from(bm.parts.row_offsets.data as BigInt64Array, Number)).toEqual(c.sparse_bitmask.row_offsets);
      expect(bm.parts.shape.shape).toEqual([2]);
      const s24 = compress(w, { format: 'sparse-24-bitmask' });
      expect(Buffer.from(s24.parts.compressed.bytes()).equals(Buffer.from(c.sparse_24.compressed, 'base64'))).toBe(true);
      expect(Buffer.from(s24.parts.bitmask.bytes()).equals(Buffer.from(c.sparse_24.bitmask, 'base64'))).toBe(true);
      expect(s24.parts.shape.shape).toEqual([2, 1]);
      expect(s24.parts.compressed.shape).toEqual([c.shape[0], c.shape[1] / 2]);
      const nv = compress(w, { format: 'nv24' });
      expect(Buffer.from(nv.parts.values.bytes()).equals(Buffer.from(c.nv24.values, 'base64'))).toBe(true);
      expect(Buffer.from(nv.parts.meta.bytes()).equals(Buffer.from(c.nv24.meta, 'base64'))).toBe(true);
      for (const s of [bm, s24, nv]) {
        const back = decompress(s);
        expect(back.dtype).toBe(w.dtype);
        expect(Buffer.from(back.bytes()).equals(Buffer.from(w.bytes())), s.format).toBe(true);
        // Through a safetensors file and back.
        const file = path.join(os.tmpdir(), `ws-sparse-${process.pid}-${s.format}-${c.dtype}.safetensors`);
        saveSync(file, sparseEntries('layer', s));
        const f = openSync(file);
        try {
          const r = readSparse(f, 'layer');
          expect(r.format).toBe(s.format);
          expect(Buffer.from(decompress(r).bytes()).equals(Buffer.from(w.bytes()))).toBe(true);
        } finally {
          f.close();
          fs.rmSync(file, { force: true });
        }
      }
    });
  }

  it('round-trips masks of the pruning kernels for f32, f16, bf16 and fp8 at larger sizes', () => {
    for (const dtype of ['f32', 'f16', 'bf16', 'f8_e4m3'] as DType[]) {
      const w = weights(33, 96, 4, 'f32').to(dtype);
      const pruned = applyMask(w, maskSync(w.to('f32'), { method: 'magnitude', pattern: '2:4' }));
      for (const format of ['sparse-bitmask', 'sparse-24-bitmask', 'nv24'] as const) {
        expect(Buffer.from(decompress(compress(pruned, { format })).bytes()).equals(Buffer.from(pruned.bytes())), `${dtype} ${format}`).toBe(true);
      }
      const un = applyMask(w, maskSync(w.to('f32'), { method: 'magnitude', sparsity: 0.7 }));
      expect(Buffer.from(decompress(compress(un, { format: 'sparse-bitmask' })).bytes()).equals(Buffer.from(un.bytes()))).toBe(true);
    }
  });

  it('refuses groups with more than two non-zeros for the 2:4 formats, and rows not a multiple of 4', () => {
    const w = tensor(Float32Array.from({ length: 16 }, (_v, i) => (i === 5 || i === 6 || i === 7 ? 1 : 0)), [2, 8]);
    expect(() => compress(w, { format: 'sparse-24-bitmask' })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE', row: 0, column: 4 }));
    expect(() => compress(w, { format: 'nv24' })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => compress(tensor(new Float32Array(6), [1, 6]), { format: 'nv24' })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => compress(w, { format: 'csr' as 'nv24' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
