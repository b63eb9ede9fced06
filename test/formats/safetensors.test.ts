// SPDX-License-Identifier: MIT
// Writing and reading safetensors through the public API: round trips for every dtype, the reference layout,
// sharding, the streaming writer, and atomicity.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createWriter, DType, DTYPES, open, openSync, save, saveSync, Tensor, tensor, WeightsmithError, zeros,
} from '../../lib/index';
import { tempDir } from '../helpers/paths';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});
function tmp(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function randomTensor(dtype: DType, shape: number[], seed: number): Tensor {
  const t = zeros(shape, dtype);
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  let s = seed;
  for (let i = 0; i < bytes.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    bytes[i] = s >>> 24;
  }
  if (dtype === 'bool') for (let i = 0; i < bytes.length; i++) bytes[i] &= 1;
  return t;
}

function headerOf(file: string): { n: number; json: string; raw: Buffer } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { n, json: buf.subarray(8, 8 + n).toString('utf8'), raw: buf };
}

describe('round trips', () => {
  it('every dtype, including pass-through ones, survives save -> open bit for bit (mmap and pread)', async () => {
    const dir = tmp();
    const tensors: Record<string, Tensor> = {};
    DTYPES.forEach((d, i) => {
      const shape = d.lanes === 0 ? [3, 4] : [2, 3, 5];
      tensors[`t.${d.name}`] = randomTensor(d.name, shape, i + 1);
    });
    tensors.scalar = tensor(new Float32Array([3.5]), []);
    tensors.empty = zeros([0, 7], 'bf16');
    const file = path.join(dir, 'all.safetensors');
    await save(file, tensors, { metadata: { format: 'pt', note: 'ünïcode ✓' } });
    for (const io of ['mmap', 'pread'] as const) {
      const f = await open(file, { io });
      expect(f.metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
      expect(new Set(f.names())).toEqual(new Set(Object.keys(tensors)));
      for (const [name, t] of Object.entries(tensors)) {
        const got = f.getTensor(name);
        expect(got.dtype).toBe(t.dtype);
        expect(got.shape).toEqual(t.shape);
        expect(got.data.constructor).toBe(t.data.constructor);
        expect(Buffer.from(got.bytes()).equals(Buffer.from(t.bytes())), `${name} via ${io}`).toBe(true);
      }
      f.close();
    }
  });

  it('saveSync and openSync agree with their async twins byte for byte', async () => {
    const dir = tmp();
    const tensors = { a: randomTensor('f16', [5, 3], 1), b: randomTensor('i64', [4], 2) };
    saveSync(path.join(dir, 's.safetensors'), tensors);
    await save(path.join(dir, 'a.safetensors'), tensors);
    expect(fs.readFileSync(path.join(dir, 's.safetensors')).equals(fs.readFileSync(path.join(dir, 'a.safetensors')))).toBe(true);
    const f = openSync(path.join(dir, 's.safetensors'));
    expect([...(f.getTensor('b').data as BigInt64Array)]).toEqual([...(tensors.b.data as BigInt64Array)]);
    f.close();
  });
});

describe('reference layout', () => {
  it('orders tensors by dtype descending then name bytes, metadata first, header padded with spaces to 8', () => {
    const dir = tmp();
    const file = path.join(dir, 'layout.safetensors');
    saveSync(file, {
      'b.weight': zeros([2], 'f16'), 'a.weight': zeros([3], 'f16'), z: zeros([1], 'u8'), big: zeros([2], 'i64'),
      Z: zeros([1], 'f32'), 'é': zeros([1], 'f32'), mask: zeros([5], 'bool'), q: zeros([2], 'bf16'),
    }, { metadata: { format: 'pt' } });
    const { n, json, raw } = headerOf(file);
    expect(n % 8).toBe(0);
    expect(json.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(json.slice(json.trimEnd().length))).toBe(true);
    expect(json.startsWith('{"__metadata__":{"format":"pt"},')).toBe(true);
    const order = [...json.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(order).toEqual(['big', 'Z', 'é', 'q', 'a.weight', 'b.weight', 'z', 'mask']);
    expect(json).toContain('"big":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}');
    expect(raw.length).toBe(8 + n + 16 + 4 + 4 + 4 + 6 + 4 + 1 + 5);
  });

  it('does not reorder integer-like names (the header is not built from a JS object)', () => {
    const dir = tmp();
    const file = path.join(dir, 'ints.safetensors');
    saveSync(file, { b: zeros([1]), 10: zeros([1]), 2: zeros([1]) });
    const order = [...headerOf(file).json.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(order).toEqual(['10', '2', 'b']);
  });

  it('refuses names it could not read back', () => {
    const dir = tmp();
    expect(() => saveSync(path.join(dir, 'x.safetensors'), { __metadata__: zeros([1]) })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => saveSync(path.join(dir, 'x.safetensors'), { ['bad\ud800']: zeros([1]) })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => saveSync(path.join(dir, 'x.safetensors'), { a: zeros([1]) }, { metadata: { k: 1 as unknown as string } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('sharded checkpoints', () => {
  it('writes shards plus an index and reads them back through the index, the folder, or a shard', async () => {
    const dir = tmp();
    const tensors: Record<string, Tensor> = {};
    for (let i = 0; i < 10; i++) tensors[`layer.${i}.weight`] = randomTensor('f32', [64, 16], i);  // 4 kB each
    const file = path.join(dir, 'model.safetensors');
    await save(file, tensors, { shardSize: 10_000, metadata: { format: 'pt' } });
    const listing = fs.readdirSync(dir).sort();
    // 4096-byte tensors, at most 10,000 bytes per shard: two per shard.
    expect(listing).toEqual([1, 2, 3, 4, 5].map((i) => `model-0000${i}-of-00005.safetensors`).concat('model.safetensors.index.json'));
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(10 * 4096);
    expect(Object.keys(index.weight_map).length).toBe(10);
    for (const p of [dir, path.join(dir, 'model.safetensors.index.json')]) {
      const f = await open(p);
      expect(f.files.length).toBe(5);
      expect(f.names().length).toBe(10);
      for (const [name, t] of Object.entries(tensors)) expect(Buffer.from(f.getTensor(name).bytes()).equals(Buffer.from(t.bytes()))).toBe(true);
      f.close();
    }
    const one = openSync(path.join(dir, 'model-00002-of-00005.safetensors'));
    expect(one.names().length).toBeGreaterThan(0);
    one.close();
  });

  it('a folder without an index opens all its .safetensors files as shards; inconsistent indexes are refused', async () => {
    const dir = tmp();
    saveSync(path.join(dir, 'a.safetensors'), { x: zeros([2]) });
    saveSync(path.join(dir, 'b.safetensors'), { y: zeros([3]) });
    const f = openSync(dir);
    expect(f.names()).toEqual(['x', 'y']);
    f.close();
    saveSync(path.join(dir, 'c.safetensors'), { x: zeros([1]) });
    expect(() => openSync(dir)).toThrow(expect.objectContaining({ code: 'ERR_ST_DUPLICATE_KEY', tensor: 'x' }));
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 'a.safetensors', y: 'a.safetensors' } }));
    expect(() => openSync(dir)).toThrow(expect.objectContaining({ code: 'ERR_TENSOR_NOT_FOUND', tensor: 'y' }));
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: '../a.safetensors' } }));
    expect(() => openSync(dir)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{not json');
    expect(() => openSync(dir)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    const empty = tmp();
    expect(() => openSync(empty)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });
});

describe('streaming writer', () => {
  it('accepts tensors in any order and in sequential chunks, and writes the same bytes as save()', async () => {
    const dir = tmp();
    const a = randomTensor('f32', [1000, 3], 1);
    const b = randomTensor('bf16', [7, 9], 2);
    const c = randomTensor('u8', [13], 3);
    const w = createWriter(path.join(dir, 'stream.safetensors'), {
      plan: [{ name: 'a', dtype: 'f32', shape: [1000, 3] }, { name: 'b', dtype: 'bf16', shape: [7, 9] }, { name: 'c', dtype: 'u8', shape: [13] }],
      metadata: { k: 'v' },
    });
    expect(fs.existsSync(path.join(dir, 'stream.safetensors'))).toBe(false);
    await w.write('c', c);
    const ab = a.bytes();
    for (let off = 0; off < ab.length; off += 1000) await w.writeBytes('a', off, ab.subarray(off, off + 1000));
    w.writeSync('b', b);
    await w.close();
    await save(path.join(dir, 'ref.safetensors'), { a, b, c }, { metadata: { k: 'v' } });
    expect(fs.readFileSync(path.join(dir, 'stream.safetensors')).equals(fs.readFileSync(path.join(dir, 'ref.safetensors')))).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['ref.safetensors', 'stream.safetensors']);
  });

  it('refuses plan mismatches, out-of-order chunks and incomplete files, leaving nothing behind', async () => {
    const dir = tmp();
    const dest = path.join(dir, 'w.safetensors');
    const plan = [{ name: 'a', dtype: 'f32' as const, shape: [4] }, { name: 'b', dtype: 'f16' as const, shape: [2] }];
    const w = createWriter(dest, { plan });
    await expect(w.write('a', zeros([4], 'f16'))).rejects.toMatchObject({ code: 'ERR_DTYPE' });
    await expect(w.write('a', zeros([5], 'f32'))).rejects.toMatchObject({ code: 'ERR_SHAPE' });
    await expect(w.write('nope', zeros([4], 'f32'))).rejects.toMatchObject({ code: 'ERR_TENSOR_NOT_FOUND' });
    await expect(w.writeBytes('a', 4, new Uint8Array(4))).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await w.write('a', zeros([4], 'f32'));
    await expect(w.close()).rejects.toMatchObject({ code: 'ERR_TENSOR_NOT_FOUND', tensor: 'b' });
    expect(fs.readdirSync(dir)).toEqual([]);
    await expect(w.write('b', zeros([2], 'f16'))).rejects.toMatchObject({ code: 'ERR_HANDLE_CLOSED' });

    const w2 = createWriter(dest, { plan });
    await w2.write('a', zeros([4], 'f32'));
    w2.abort();
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(() => createWriter(dest, { plan: [{ name: 'a', dtype: 'f32', shape: [1] }, { name: 'a', dtype: 'f32', shape: [1] }] }))
      .toThrow(expect.objectContaining({ code: 'ERR_ST_DUPLICATE_KEY' }));
    expect(() => createWriter(dest, { plan: [{ name: 'a', dtype: 'f4', shape: [3] }] })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => createWriter(dest, { plan, shardSize: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => createWriter(dest, { plan, shardsize: 5 } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringContaining('shardSize') }));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('replaces an existing destination only when complete, and removes temp files of dead processes', async () => {
    const dir = tmp();
    const dest = path.join(dir, 'm.safetensors');
    saveSync(dest, { old: zeros([1]) });
    const before = fs.readFileSync(dest);
    const stale = path.join(dir, '.m.safetensors.tmp-999999999-0123abcd');
    fs.writeFileSync(stale, 'partial');
    const w = createWriter(dest, { plan: [{ name: 'new', dtype: 'f32', shape: [2] }] });
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.readFileSync(dest).equals(before)).toBe(true);
    await w.write('new', zeros([2]));
    await w.close();
    const f = openSync(dest);
    expect(f.names()).toEqual(['new']);
    f.close();
    expect(fs.readdirSync(dir)).toEqual(['m.safetensors']);
  });
});

describe('tensors', () => {
  it('tensor() infers dtypes, validates shapes and converts plain arrays for half types', () => {
    expect(tensor(new Int16Array(6), [2, 3]).dtype).toBe('i16');
    expect(tensor([1, 2, 3]).shape).toEqual([3]);
    const h = tensor([1, -2, 0.5], [3], 'f16');
    expect([...(h.data as Uint16Array)]).toEqual([0x3c00, 0xc000, 0x3800]);
    expect(tensor([1n, -1n], [2], 'i64').data).toBeInstanceOf(BigInt64Array);
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(WeightsmithError);
    expect(() => tensor(new Float32Array(6), [2, 3], 'f16')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => zeros([2, -1])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => zeros([2, 1.5])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => zeros([2], 'f128' as DType)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    const t = tensor(new Float32Array(12), [3, 4]);
    expect(t.reshape([2, 6]).data).toBe(t.data);
    expect(() => t.reshape([5])).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(t.numel).toBe(12);
    expect(t.byteLength).toBe(48);
    expect(String(t)).toBe('Tensor<f32>[3, 4]');
    expect(zeros([3], 'c64').data.length).toBe(6);
  });
});
