// SPDX-License-Identifier: MIT
// Lifetimes and races found in review: deferred detach, writes in flight at abort, sharded commits, cwd
// changes, forged native handles, and plain-array tensor input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { convert, createWriter, open, openSync, save, saveSync, tensor, zeros } from '../../lib/index';
import { native } from '../../lib/native';
import { OWNER } from '../../lib/tensor';
import { tempDir } from '../helpers/paths';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function tmp(): string {
  const t = tempDir('ws-life-');
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('views of a closed file', () => {
  it('a view whose detach waits for a write in flight is refused by kernels with ERR_HANDLE_CLOSED', async () => {
    const dir = tmp();
    const src = path.join(dir, 'src.safetensors');
    saveSync(src, { x: zeros([1 << 20]), y: tensor(new Float32Array(1 << 22).fill(1.5), [1 << 22]) });
    const f = openSync(src, { io: 'mmap' });
    const x = f.getTensor('x');
    const y = f.getTensor('y');
    const w = createWriter(path.join(dir, 'out.safetensors'), { plan: [{ name: 'x', dtype: 'f32', shape: [1 << 20] }] });
    const pending = w.writeBytes('x', 0, x.bytes());
    f.close();
    await expect(convert(x, 'bf16')).rejects.toMatchObject({ code: 'ERR_HANDLE_CLOSED' });
    expect(() => y.to('f16')).toThrow(expect.objectContaining({ code: 'ERR_HANDLE_CLOSED' }));
    await pending;
    await w.close();
    expect(x.data.byteLength).toBe(0);
    const out = openSync(path.join(dir, 'out.safetensors'));
    expect(out.getTensor('x').data.byteLength).toBe(4 << 20);
    out.close();
  });

  it('keeps working after process.chdir (paths are resolved at open)', () => {
    const dir = tmp();
    saveSync(path.join(dir, 'm.safetensors'), { a: tensor([1, 2, 3]) });
    const cwd = process.cwd();
    process.chdir(dir);
    let f;
    try {
      f = openSync('m.safetensors');
    } finally {
      process.chdir(cwd);
    }
    expect([...(f.getTensor('a').data as Float32Array)]).toEqual([1, 2, 3]);
    f.close();
  });

  it('native entry points refuse forged or closed handles instead of unwrapping them', () => {
    const src = new Float32Array(4);
    const dst = new Uint16Array(4);
    expect(() => native.convert(src, 'f32', dst, 'bf16', 4, [{}] as never, null)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const forged = Object.create(native.AbortToken.prototype);
    expect(() => native.convert(src, 'f32', dst, 'bf16', 4, [], forged)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const dir = tmp();
    saveSync(path.join(dir, 'm.safetensors'), { a: zeros([4]) });
    const f = openSync(path.join(dir, 'm.safetensors'));
    const owner = f.getTensor('a')[OWNER]!;
    f.close();
    expect(() => native.convert(src, 'f32', dst, 'bf16', 4, [owner], null)).toThrow(expect.objectContaining({ code: 'ERR_HANDLE_CLOSED' }));
  });
});

describe('writers', () => {
  it('abort() with a write in flight never lets it land in a file that reuses the descriptor', async () => {
    const dir = tmp();
    const w = createWriter(path.join(dir, 'a.safetensors'), { plan: [{ name: 'a', dtype: 'u8', shape: [1 << 24] }] });
    const data = new Uint8Array(1 << 24).fill(0x41);
    const pending = w.writeBytes('a', 0, data).catch((e) => e);
    w.abort();
    const other = path.join(dir, 'unrelated.txt');
    const fd = fs.openSync(other, 'w');
    await pending;
    fs.closeSync(fd);
    expect(fs.statSync(other).size).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['unrelated.txt']);
  });

  it('a sharded save whose index path is blocked fails before any shard appears', async () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'm.safetensors.index.json'));
    const t = { a: zeros([2048]), b: zeros([2048]) };
    await expect(save(path.join(dir, 'm.safetensors'), t, { shardSize: 8192 })).rejects.toMatchObject({ code: 'ERR_NOT_REGULAR_FILE' });
    expect(fs.readdirSync(dir)).toEqual(['m.safetensors.index.json']);
  });

  it('a save of one large tensor stops at the next chunk when aborted, leaving nothing', async () => {
    const dir = tmp();
    const big = zeros([3 << 25], 'u8');  // 96 MiB: two 64 MiB chunks
    const ac = new AbortController();
    const p = save(path.join(dir, 'big.safetensors'), { big }, { signal: ac.signal });
    setImmediate(() => ac.abort());
    await expect(p).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('writeBytes validates its arguments before touching the file', async () => {
    const dir = tmp();
    const w = createWriter(path.join(dir, 'v.safetensors'), { plan: [{ name: 'a', dtype: 'u8', shape: [4] }] });
    await expect(w.writeBytes('a', 0, 'abcd' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(w.writeBytes('a', -1, new Uint8Array(4))).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await w.writeBytes('a', 0, new Uint8Array([1, 2, 3, 4]));
    await w.close();
    const f = await open(path.join(dir, 'v.safetensors'));
    expect([...(f.getTensor('a').data as Uint8Array)]).toEqual([1, 2, 3, 4]);
    f.close();
  });
});

describe('tensor() from plain arrays', () => {
  it('rounds once from f64 and saturates integers; refuses non-numbers and raw-byte dtypes', () => {
    expect([...(tensor([300, -1, 2.5, 3.5], [4], 'u8').data as Uint8Array)]).toEqual([255, 0, 2, 4]);
    expect([...(tensor([1 + 2 ** -11, 65520], [2], 'f16').data as Uint16Array)]).toEqual([0x3c00, 0x7c00]);
    expect(() => tensor(['x', 'y'] as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => tensor([1, 2, 3, 4], [4], 'f4')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => tensor([2n ** 64n], [1], 'i64')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => tensor([1.5], [1], 'i64')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect([...(tensor([-(2n ** 63n), 5], [2], 'i64').data as BigInt64Array)]).toEqual([-(2n ** 63n), 5n]);
    expect(() => tensor(new Float32Array(3), undefined, 'c64')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
