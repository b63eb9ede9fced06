// SPDX-License-Identifier: MIT
/**
 * BAD-INPUTS.md section B (GGUF file level), B1-B14: every input is built here by hand with
 * test/helpers/gguf-builder.ts, each case asserts the exact `code` through openSync and open with io auto,
 * mmap and pread, and after every test the process proves it is healthy by opening a real GGUF. Then the
 * positive side: every metadata value type, every plain tensor type, ggml block types as QuantizedTensor,
 * custom alignments, trailing bytes, version 2, and format sniffing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { open, openSync, Tensor, WeightsmithError } from '../../lib/index';
import type { WeightFile } from '../../lib/index';
import { QuantizedTensor } from '../../lib/index';
import { expectOpenCode, mkTemp, OPEN_MODES, openError, repoRoot } from '../helpers/bad-inputs-helpers';
import {
  f32, f64, GGML, gguf, GgufSpec, gstr, i16, i32, i64, kv, KV, kvArray, kvRaw, TensorSpec, u16, u32, u64, u8, VT,
} from '../helpers/gguf-builder';

const VALID = path.resolve(repoRoot, '../shared/realdata/stories260K/gguf/stories260K-f32.gguf');
if (!fs.existsSync(VALID)) throw new Error(`${VALID} is missing: these tests need ../shared/realdata next to the repository`);

type Coded = Error & { code?: string; tensor?: string; offset?: number | bigint; path?: string; [k: string]: unknown };

const root = mkTemp('ws-gguf-bad-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** Writes a GGUF image (bytes or a spec for the builder) to a fresh file and returns its path. */
function mk(img: Buffer | GgufSpec, ext = '.gguf'): string {
  const p = path.join(root, `case-${++counter}${ext}`);
  fs.writeFileSync(p, Buffer.isBuffer(img) ? img : gguf(img));
  return p;
}

/** Proves the process is healthy: a real GGUF opens and its data reads. */
function expectHealthy(): void {
  const f = openSync(VALID);
  try {
    expect(f.format).toBe('gguf');
    expect(f.names().length).toBe(48);
    const t = f.getTensor('output_norm.weight');
    expect(t.shape).toEqual([64]);
    expect(Number.isFinite((t.data as Float32Array)[0])).toBe(true);
  } finally {
    f.close();
  }
}
afterEach(() => expectHealthy());

const ARCH = kv('general.architecture', 'string', 'test');
/** A small valid file, with parts overridden. */
const base = (over: GgufSpec = {}): GgufSpec => ({ kvs: [ARCH], tensors: [{ name: 'w', ne: [4, 2], type: 'f32' }], ...over });

const tensorIs = (name: string) => (err: Coded) => expect(err.tensor, `${err.code}: ${err.message}`).toBe(name);

/** Asserts the code in every open mode (sync/async x auto/mmap/pread), with an optional field check. */
async function expectCode(img: Buffer | GgufSpec, code: string, check?: (err: Coded) => void, ext = '.gguf'): Promise<void> {
  await expectOpenCode(mk(img, ext), code, {}, check as ((err: Record<string, unknown> & Error) => void) | undefined);
}

/** Opens every mode, runs `body` on the file, closes it. */
async function eachMode(p: string, body: (f: WeightFile, label: string) => void): Promise<void> {
  for (const mode of OPEN_MODES) {
    const o = mode.io ? { io: mode.io } : {};
    const f = mode.sync ? openSync(p, o) : await open(p, o);
    try {
      body(f, mode.label);
    } finally {
      f.close();
    }
  }
}

/** Deterministic pseudo-random bytes. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;

describe('B1: magic and version', () => {
  it.each([
    ['GGUX', 'GGUX'], ['lower case', 'gguf'], ['reversed', 'FUGG'], ['zeros', '\0\0\0\0'], ['GGML (old format)', 'GGML'],
    ['GGJT (old format)', 'tjgg'],
  ])('bad magic %s -> ERR_GGUF_MAGIC', async (_label, magic) => {
    await expectCode(base({ magic }), 'ERR_GGUF_MAGIC');
  });

  it.each([0, 1, 2, 3])('a file of %i bytes -> ERR_GGUF_MAGIC', async (n) => {
    await expectCode(Buffer.from('GGUF'.slice(0, n), 'latin1'), 'ERR_GGUF_MAGIC');
  });

  it('a safetensors file named .gguf -> ERR_GGUF_MAGIC', async () => {
    const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
    const st = Buffer.concat([u64(header.length), header, Buffer.alloc(8)]);
    await expectCode(st, 'ERR_GGUF_MAGIC');
  });

  it.each([0, 1, 4, 5, 0xffff, 0x0001_0001, 0xffff_ffff])('version %i -> ERR_GGUF_VERSION', async (version) => {
    await expectCode(base({ version }), 'ERR_GGUF_VERSION');
  });

  it('a GGUF-magic file with another extension is sniffed: its bad version gives ERR_GGUF_VERSION', async () => {
    await expectCode(base({ version: 7 }), 'ERR_GGUF_VERSION', undefined, '.bin');
    await expectCode(base({ version: 1 }), 'ERR_GGUF_VERSION', undefined, '');
  });
});

describe('B2: big-endian files', () => {
  it.each([
    ['0x03000000 (3 byte-swapped)', 0x0300_0000], ['0x02000000 (2 byte-swapped)', 0x0200_0000], ['0x01000000', 0x0100_0000],
    ['0xffff0000', 0xffff_0000], ['0x00010000', 0x0001_0000],
  ] as [string, number][])('version %s -> ERR_GGUF_ENDIANNESS', async (_label, version) => {
    await expectCode(base({ version }), 'ERR_GGUF_ENDIANNESS');
  });

  it('a whole big-endian file (every integer byte-swapped) -> ERR_GGUF_ENDIANNESS', async () => {
    const be64 = (v: number) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(v));
      return b;
    };
    const be32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v);
      return b;
    };
    const key = Buffer.from('general.architecture');
    const val = Buffer.from('test');
    const img = Buffer.concat([Buffer.from('GGUF'), be32(3), be64(0), be64(1), be64(key.length), key, be32(VT.string), be64(val.length), val]);
    await expectCode(img, 'ERR_GGUF_ENDIANNESS');
  });
});

describe('B3: tensor and KV counts', () => {
  it.each([
    ['n_tensors = 2^64-1', { nTensors: U64_MAX }],
    ['n_kv = 2^64-1', { nKv: U64_MAX }],
    ['n_tensors = 2^63 (negative as int64)', { nTensors: 1n << 63n }],
    ['n_kv = 2^63 (negative as int64)', { nKv: 1n << 63n }],
    ['n_tensors = INT64_MAX', { nTensors: I64_MAX }],
    ['n_kv = INT64_MAX', { nKv: I64_MAX }],
    ['n_kv = 2^60 (x14 fits in u64, still too many)', { nKv: 1n << 60n }],
    ['n_kv = ceil(2^64 / 14) (x14 wraps to 12)', { nKv: 1317624576693539402n }],
    ['n_tensors = ceil(2^64 / 25) (x25 wraps to 9)', { nTensors: 737869762948382065n }],
    ['n_kv = 1000 in a small file', { nKv: 1000 }],
    ['n_tensors = 1000 in a small file', { nTensors: 1000 }],
    ['both counts 2^32', { nKv: 1n << 32n, nTensors: 1n << 32n }],
  ] as [string, GgufSpec][])('%s -> ERR_GGUF_COUNT', async (_label, over) => {
    await expectCode(base(over), 'ERR_GGUF_COUNT');
  });

  it('counts that fit the remaining bytes one by one, but not together -> ERR_GGUF_COUNT', async () => {
    // 24 header bytes, then exactly 100 bytes: 7 KVs (98 bytes) fit, 4 tensor infos (100) fit, both do not.
    const img = Buffer.concat([Buffer.from('GGUF'), u32(3), u64(4), u64(7), Buffer.alloc(100)]);
    await expectCode(img, 'ERR_GGUF_COUNT');
  });
});

describe('B4: string lengths', () => {
  it.each([
    ['key length 2^64-1', { kvs: [{ ...ARCH, keyLen: U64_MAX }] }],
    ['key length 2^63', { kvs: [{ ...ARCH, keyLen: 1n << 63n }] }],
    ['key length 2^30 + 1', { kvs: [{ ...ARCH, keyLen: (1n << 30n) + 1n }] }],
    ['key length past the end of the file', { kvs: [{ ...ARCH, keyLen: 5000 }] }],
    ['string value length 2^64-1', { kvs: [kvRaw('general.architecture', VT.string, gstr('test', U64_MAX))] }],
    ['string value length past the end of the file', { kvs: [kvRaw('general.architecture', VT.string, gstr('test', 1000))] }],
    ['tensor name length 2^64-1', { tensors: [{ name: 'w', nameLen: U64_MAX, ne: [4, 2], type: 'f32' }] }],
    ['tensor name length past the end of the file', { tensors: [{ name: 'w', nameLen: 100_000, ne: [4, 2], type: 'f32' }] }],
    ['array element string length 2^64-1', {
      kvs: [ARCH, kvRaw('tokenizer.ggml.tokens', VT.array, Buffer.concat([u32(VT.string), u64(2), gstr('a'), gstr('b', U64_MAX)]))],
    }],
    ['array element string length past the end', {
      kvs: [ARCH, kvRaw('tokenizer.ggml.tokens', VT.array, Buffer.concat([u32(VT.string), u64(2), gstr('a'), gstr('b', 4096)]))],
    }],
  ] as [string, GgufSpec][])('%s -> ERR_GGUF_STRING', async (_label, over) => {
    await expectCode(base(over), 'ERR_GGUF_STRING');
  });
});

describe('B5: value types', () => {
  it.each([13, 14, 255, 0x8000_0000, 0xffff_ffff])('KV type %i -> ERR_GGUF_TYPE', async (type) => {
    await expectCode(base({ kvs: [ARCH, kvRaw('x.bad', type, u64(0))] }), 'ERR_GGUF_TYPE');
  });

  it('an array of arrays -> ERR_GGUF_TYPE (no recursion)', async () => {
    const inner = Buffer.concat([u32(VT.u8), u64(1), u8(7)]);
    await expectCode(base({ kvs: [ARCH, kvRaw('x.nested', VT.array, Buffer.concat([u32(VT.array), u64(1), inner]))] }), 'ERR_GGUF_TYPE');
  });

  it('a deeply nested array of arrays -> ERR_GGUF_TYPE', async () => {
    // 10,000 levels of "array of 1 array": a recursive reader would overflow its stack.
    const level = Buffer.concat([u32(VT.array), u64(1)]);
    const body = Buffer.concat([Buffer.concat(Array(10_000).fill(level)), u32(VT.u8), u64(0)]);
    await expectCode(base({ kvs: [ARCH, kvRaw('x.nested', VT.array, body)] }), 'ERR_GGUF_TYPE');
  });

  it.each([13, 200, 0xffff_ffff])('array element type %i -> ERR_GGUF_TYPE', async (elem) => {
    await expectCode(base({ kvs: [ARCH, kvRaw('x.arr', VT.array, Buffer.concat([u32(elem), u64(1), u64(0)]))] }), 'ERR_GGUF_TYPE');
  });

  it.each([2, 255])('bool value %i -> ERR_GGUF_TYPE', async (v) => {
    await expectCode(base({ kvs: [ARCH, kvRaw('x.flag', VT.bool, [v])] }), 'ERR_GGUF_TYPE');
  });

  it('a bool array holding 2 -> ERR_GGUF_TYPE', async () => {
    await expectCode(base({ kvs: [ARCH, kvArray('x.flags', 'bool', [1, 0, 2])] }), 'ERR_GGUF_TYPE');
  });
});

describe('B6: array counts', () => {
  it.each([
    ['u8 x 2^64-1', kvArray('x.a', 'u8', [1, 2], { count: U64_MAX })],
    ['u64 x 2^61 (x8 wraps to 0)', kvArray('x.a', 'u64', [1], { count: 1n << 61n })],
    ['f64 x 2^62 (x8 overflows)', kvArray('x.a', 'f64', [1], { count: 1n << 62n })],
    ['u32 x 2^62 + 1', kvArray('x.a', 'u32', [1], { count: (1n << 62n) + 1n })],
    ['u8 x 2^30 + 1 (over ggml\'s limit)', kvArray('x.a', 'u8', [1], { count: (1n << 30n) + 1n })],
    ['u32 x 1000 past the end of the file', kvArray('x.a', 'u32', [1, 2], { count: 1000 })],
    ['i16 x 100 with 2 elements present', kvArray('x.a', 'i16', [1, 2], { count: 100 })],
    ['string x 2^64-1', kvArray('x.a', 'string', ['a'], { count: U64_MAX })],
    ['string x 2^62 (x8 wraps)', kvArray('x.a', 'string', ['a'], { count: 1n << 62n })],
    ['string x 2^30 + 1', kvArray('x.a', 'string', ['a'], { count: (1n << 30n) + 1n })],
    ['string x 10,000 past the end of the file', kvArray('x.a', 'string', ['a', 'b'], { count: 10_000 })],
  ] as [string, KV][])('array count %s -> ERR_GGUF_ARRAY', async (_label, bad) => {
    await expectCode(base({ kvs: [ARCH, bad] }), 'ERR_GGUF_ARRAY');
  });
});

describe('B7: duplicates', () => {
  it('a duplicate KV key -> ERR_GGUF_DUPLICATE', async () => {
    await expectCode(base({ kvs: [ARCH, kv('general.name', 'string', 'a'), kv('general.name', 'string', 'a')] }), 'ERR_GGUF_DUPLICATE');
  });

  it('a duplicate KV key of another type -> ERR_GGUF_DUPLICATE', async () => {
    await expectCode(base({ kvs: [ARCH, kv('general.architecture', 'u32', 7)] }), 'ERR_GGUF_DUPLICATE');
  });

  it('general.alignment twice -> ERR_GGUF_DUPLICATE', async () => {
    await expectCode(base({ kvs: [kv('general.alignment', 'u32', 32), ARCH, kv('general.alignment', 'u32', 64)] }), 'ERR_GGUF_DUPLICATE');
  });

  it('a duplicate tensor name -> ERR_GGUF_DUPLICATE', async () => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [8], type: 'f32' }, { name: 'w', ne: [8], type: 'f32' }] }), 'ERR_GGUF_DUPLICATE');
  });

  it('a duplicate tensor name with another type and shape -> ERR_GGUF_DUPLICATE', async () => {
    await expectCode(base({
      tensors: [{ name: 'a', ne: [8], type: 'f32' }, { name: 'w', ne: [8], type: 'f32' }, { name: 'w', ne: [32, 2], type: 'q8_0' }],
    }), 'ERR_GGUF_DUPLICATE');
  });
});

describe('B8: general.alignment', () => {
  it.each([0, 13, 4, 1, 2, 24, 48, 96, 0xffff_ffff, 0x8000_0001])('u32 alignment %i -> ERR_GGUF_ALIGNMENT', async (a) => {
    await expectCode(base({ kvs: [ARCH, kv('general.alignment', 'u32', a)], alignment: 32 }), 'ERR_GGUF_ALIGNMENT');
  });

  it.each([
    ['i32', kv('general.alignment', 'i32', 32)],
    ['u64', kv('general.alignment', 'u64', 32)],
    ['u16', kv('general.alignment', 'u16', 32)],
    ['u8', kv('general.alignment', 'u8', 32)],
    ['f32', kv('general.alignment', 'f32', 32)],
    ['string', kv('general.alignment', 'string', '32')],
    ['array<u32>', kvArray('general.alignment', 'u32', [32])],
  ] as [string, KV][])('alignment 32 declared as %s -> ERR_GGUF_ALIGNMENT', async (_label, a) => {
    await expectCode(base({ kvs: [ARCH, a] }), 'ERR_GGUF_ALIGNMENT');
  });
});

describe('B9: shapes', () => {
  it.each([5, 8, 0xffff_ffff])('n_dims %i -> ERR_GGUF_SHAPE', async (nDims) => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [2, 1, 1, 1, 1], nDims, type: 'f32' }] }), 'ERR_GGUF_SHAPE', tensorIs('w'));
  });

  it.each([
    ['ne[1] = -1', [4, U64_MAX]],
    ['ne[0] = -2^63', [1n << 63n, 1]],
    ['ne[3] = -5', [1, 1, 1, U64_MAX - 4n]],
    ['ne = [2^32, 2^32] (2^64 wraps to 0)', [1n << 32n, 1n << 32n]],
    ['ne = [2^16, 2^16, 2^16, 2^16] (wraps to 0)', [1 << 16, 1 << 16, 1 << 16, 1 << 16]],
    ['ne = [2^31, 2^32] (2^63 > INT64_MAX)', [1n << 31n, 1n << 32n]],
    ['ne = [3, 2^62] (overflows int64, not uint64)', [3, 1n << 62n]],
    ['ne = [INT64_MAX, 2]', [I64_MAX, 2]],
  ] as [string, bigint[]][])('%s -> ERR_GGUF_SHAPE', async (_label, ne) => {
    await expectCode(base({ tensors: [{ name: 'w', ne, type: 'f32' }] }), 'ERR_GGUF_SHAPE', tensorIs('w'));
  });

  it('a bad shape on the second tensor names that tensor', async () => {
    await expectCode(base({ tensors: [{ name: 'a', ne: [8], type: 'f32' }, { name: 'b', ne: [2, U64_MAX], type: 'f32' }] }),
      'ERR_GGUF_SHAPE', tensorIs('b'));
  });
});

describe('B10: ggml types', () => {
  it.each([
    ['-1', 0xffff_ffff], ['-2^31', 0x8000_0000], ['43 (GGML_TYPE_COUNT)', 43], ['44', 44], ['1000', 1000],
    ['4 (removed Q4_2)', 4], ['5 (removed Q4_3)', 5], ['31 (removed)', 31], ['32 (removed)', 32], ['33 (removed)', 33],
    ['36 (removed)', 36], ['37 (removed)', 37], ['38 (removed)', 38],
  ] as [string, number][])('type %s -> ERR_GGUF_TENSOR_TYPE', async (_label, type) => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [256], type }] }), 'ERR_GGUF_TENSOR_TYPE', tensorIs('w'));
  });

  it.each([
    ['q4_0', 33], ['q4_0', 16], ['q4_0', 1], ['q8_0', 48], ['q4_1', 31], ['q5_0', 100], ['q5_1', 64 + 8],
    ['q4_k', 128], ['q5_k', 255], ['q6_k', 32 * 3], ['q4_k', 257],
  ] as [string, number][])('%s with ne[0] = %i (not a multiple of the block size) -> ERR_GGUF_TENSOR_TYPE', async (type, ne0) => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [ne0, 2], type }] }), 'ERR_GGUF_TENSOR_TYPE', tensorIs('w'));
  });

  const BLOCK_TYPES = Object.entries(GGML).filter(([, t]) => t.block > 1);
  it.each(BLOCK_TYPES.map(([name]) => name))('%s: half a block in ne[0] -> ERR_GGUF_TENSOR_TYPE', async (type) => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [GGML[type].block / 2, 2], type }] }), 'ERR_GGUF_TENSOR_TYPE', tensorIs('w'));
  });

  it('every block type of FORMATS.md b3 reads back as a QuantizedTensor of its raw blocks', async () => {
    const tensors = BLOCK_TYPES.map(([type, t], i): TensorSpec => ({
      name: `t.${type}`, ne: [t.block * 2, 3], type, data: randomBytes(t.size * 6, 100 + i),
    }));
    await eachMode(mk(base({ tensors })), (f, mode) => {
      for (const spec of tensors) {
        const type = spec.type as string;
        const q = f.get(spec.name as string) as QuantizedTensor;
        const what = `${mode} ${type}`;
        expect(q, what).toBeInstanceOf(QuantizedTensor);
        expect(q.spec, what).toEqual({ scheme: 'ggml', type });
        expect(q.shape, what).toEqual([3, GGML[type].block * 2]);
        expect(Buffer.from(q.parts.blocks.bytes()).equals(Buffer.from(spec.data!)), what).toBe(true);
        expect(f.info(spec.name as string), what).toEqual({ dtype: 'u8', shape: [3, GGML[type].block * 2], byteLength: GGML[type].size * 6, ggmlType: type });
      }
    });
  });

  it('the block size applies to ne[0] only (ne[1] = 3 is fine for q8_0)', async () => {
    const p = mk(base({ tensors: [{ name: 'w', ne: [32, 3], type: 'q8_0' }] }));
    await eachMode(p, (f) => expect(f.info('w')).toEqual({ dtype: 'u8', shape: [3, 32], byteLength: 3 * 34, ggmlType: 'q8_0' }));
  });
});

describe('B11: byte size overflow', () => {
  it.each([
    ['f64 ne = [2^62] (x8 = 2^65)', 'f64', [1n << 62n]],
    ['f32 ne = [2^31, 2^31] (x4 wraps to exactly 0)', 'f32', [1n << 31n, 1n << 31n]],
    ['i64 ne = [2^61, 2] (x8 = 2^65)', 'i64', [1n << 61n, 2]],
    ['f32 ne = [2^30, 2^30, 4] (3-D, x4 wraps to exactly 0)', 'f32', [1n << 30n, 1n << 30n, 4]],
    ['f32 ne = [INT64_MAX]', 'f32', [I64_MAX]],
  ] as [string, string, bigint[]][])('byte size of %s -> ERR_GGUF_OVERFLOW', async (_label, type, ne) => {
    await expectCode(base({ tensors: [{ name: 'w', ne, type }] }), 'ERR_GGUF_OVERFLOW', tensorIs('w'));
  });

  it.each([
    ['f32 ne = [2^62 - 1] (2^64 - 4 bytes, padding to 32 wraps)', 'f32', [(1n << 62n) - 1n]],
    ['f16 ne = [2^63 - 9] (2^64 - 18 bytes)', 'f16', [I64_MAX - 8n]],
    ['f16 ne = [2^63 - 1] (2^64 - 2 bytes)', 'f16', [I64_MAX]],
    ['i16 ne = [2^62 - 1, 2] (2^64 - 4 bytes)', 'i16', [(1n << 62n) - 1n, 2]],
  ] as [string, string, bigint[]][])('padding of %s -> ERR_GGUF_OVERFLOW (checked before padding)', async (_label, type, ne) => {
    await expectCode(base({ tensors: [{ name: 'w', ne, type }] }), 'ERR_GGUF_OVERFLOW', tensorIs('w'));
  });

  it('i8 ne = [2^63 - 1]: 2^63 - 1 bytes pad to 2^63 without wrapping -> ERR_GGUF_TRUNCATED', async () => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [I64_MAX], type: 'i8' }] }), 'ERR_GGUF_TRUNCATED', tensorIs('w'));
  });

  it('cumulative data size 2^63 + 2^63 -> ERR_GGUF_OVERFLOW', async () => {
    await expectCode(base({
      tensors: [{ name: 'a', ne: [1n << 61n], type: 'f32' }, { name: 'b', ne: [1n << 61n], type: 'f32' }],
    }), 'ERR_GGUF_OVERFLOW', tensorIs('b'));
  });

  it('cumulative data size over four tensors of 2^62 bytes -> ERR_GGUF_OVERFLOW', async () => {
    const big = (name: string): TensorSpec => ({ name, ne: [1n << 60n], type: 'f32' });
    await expectCode(base({ tensors: [big('a'), big('b'), big('c'), big('d')] }), 'ERR_GGUF_OVERFLOW', tensorIs('d'));
  });

  it('one tensor of 2^63 bytes and one of 2^63 - 32: fits in u64 -> ERR_GGUF_TRUNCATED, not overflow', async () => {
    await expectCode(base({
      tensors: [{ name: 'a', ne: [1n << 61n], type: 'f32' }, { name: 'b', ne: [(1n << 61n) - 8n], type: 'f32' }],
    }), 'ERR_GGUF_TRUNCATED');
  });
});

describe('B12: offsets and data', () => {
  const two = (offB?: number | bigint, offA?: number | bigint): GgufSpec => base({
    tensors: [{ name: 'a', ne: [4], type: 'f32', offset: offA }, { name: 'b', ne: [4], type: 'f32', offset: offB }],
  });

  it.each([
    ['the first tensor at 32 instead of 0', undefined, 32],
    ['the first tensor at 1', undefined, 1],
    ['the second tensor unpadded (16, misaligned)', 16, undefined],
    ['the second tensor misaligned (4)', 4, undefined],
    ['the second tensor overlapping the first (0)', 0, undefined],
    ['a gap before the second tensor (64)', 64, undefined],
    ['the second tensor far away (2^40)', 1n << 40n, undefined],
    ['the second tensor at 2^64 - 32', U64_MAX - 31n, undefined],
  ] as [string, number | bigint | undefined, number | bigint | undefined][])('%s -> ERR_GGUF_OFFSET', async (_label, offB, offA) => {
    await expectCode(two(offB, offA), 'ERR_GGUF_OFFSET', tensorIs(offA === undefined ? 'b' : 'a'));
  });

  it('data in another order than the tensor infos -> ERR_GGUF_OFFSET', async () => {
    await expectCode(two(0, 32), 'ERR_GGUF_OFFSET', tensorIs('a'));
  });

  it('with general.alignment 64, a tensor at the 32-byte running offset -> ERR_GGUF_OFFSET', async () => {
    await expectCode(base({
      kvs: [ARCH, kv('general.alignment', 'u32', 64)],
      tensors: [{ name: 'a', ne: [4], type: 'f32' }, { name: 'b', ne: [4], type: 'f32', offset: 32 }],
    }), 'ERR_GGUF_OFFSET', tensorIs('b'));
  });

  it('data one byte short of the last tensor -> ERR_GGUF_TRUNCATED', async () => {
    const full = gguf(base({ tensors: [{ name: 'a', ne: [8], type: 'f32' }, { name: 'b', ne: [8], type: 'f32' }] }));
    await expectCode(full.subarray(0, full.length - 1), 'ERR_GGUF_TRUNCATED', tensorIs('b'));
  });

  it('no data at all -> ERR_GGUF_TRUNCATED naming the first tensor', async () => {
    await expectCode(base({ noData: true }), 'ERR_GGUF_TRUNCATED', tensorIs('w'));
  });

  it('the file ends right after the tensor infos -> ERR_GGUF_TRUNCATED', async () => {
    const spec = base();
    const full = gguf(spec);
    const headerEnd = gguf({ ...spec, alignment: 1, noData: true }).length;
    await expectCode(full.subarray(0, headerEnd), 'ERR_GGUF_TRUNCATED', tensorIs('w'));
  });

  it('a q8_0 tensor whose blocks run past the end -> ERR_GGUF_TRUNCATED', async () => {
    const full = gguf(base({ tensors: [{ name: 'q', ne: [64, 4], type: 'q8_0' }] }));
    // 8 blocks of 34 bytes = 272 bytes, padded to 288: cut into the last block.
    await expectCode(full.subarray(0, full.length - 16 - 10), 'ERR_GGUF_TRUNCATED', tensorIs('q'));
  });

  it('a huge tensor that does not overflow runs past the end -> ERR_GGUF_TRUNCATED', async () => {
    await expectCode(base({ tensors: [{ name: 'w', ne: [1n << 40n, 2], type: 'f32' }] }), 'ERR_GGUF_TRUNCATED', tensorIs('w'));
  });
});

describe('truncated headers -> ERR_GGUF_TRUNCATED', () => {
  const hdr = (nTensors: number, nKv: number) => Buffer.concat([Buffer.from('GGUF'), u32(3), u64(nTensors), u64(nKv)]);
  it.each([
    ['the magic only', Buffer.from('GGUF')],
    ['inside the version', Buffer.concat([Buffer.from('GGUF'), u16(3)])],
    ['inside the tensor count', Buffer.concat([Buffer.from('GGUF'), u32(3), u32(0)])],
    ['before the KV count', Buffer.concat([Buffer.from('GGUF'), u32(3), u64(0)])],
    ['inside the KV count', Buffer.concat([Buffer.from('GGUF'), u32(3), u64(0), u32(0)])],
    ['inside a KV value type', Buffer.concat([hdr(0, 1), gstr('general.x'), u16(4)])],
    ['inside a u32 value', Buffer.concat([hdr(0, 1), gstr('general.x'), u32(VT.u32), u16(0)])],
    ['inside an f64 value', Buffer.concat([hdr(0, 1), gstr('general.x'), u32(VT.f64), u32(0), u16(0)])],
    ['inside an array element type', Buffer.concat([hdr(0, 1), gstr('general.xy'), u32(VT.array), u8(0)])],
    ['inside an array count', Buffer.concat([hdr(0, 1), gstr('general.xy'), u32(VT.array), u32(VT.u8), u32(1)])],
    ['inside a string value length', Buffer.concat([hdr(0, 1), gstr('general.xyz'), u32(VT.string), u32(1)])],
    ['inside a tensor dimension', Buffer.concat([hdr(1, 0), gstr('w'), u32(2), u64(4), u32(2)])],
    ['inside a tensor type', Buffer.concat([hdr(1, 0), gstr('w'), u32(2), u64(4), u64(2), u16(0)])],
    ['inside a tensor offset', Buffer.concat([hdr(1, 0), gstr('w'), u32(2), u64(4), u64(2), u32(0), u32(0)])],
    ['inside n_dims', Buffer.concat([hdr(1, 0), gstr('w'.repeat(16)), u16(1)])],
  ] as [string, Buffer][])('%s', async (_label, img) => {
    await expectCode(img, 'ERR_GGUF_TRUNCATED');
  });

  it('every prefix of a rich file fails with a GGUF code (never a crash or another error)', () => {
    const full = gguf(richSpec());
    // The last tensor (q5_1, 24 bytes) is followed by 8 bytes of padding: prefixes that keep its data open.
    expect(quantBytes.q5_1.length % 32).toBe(24);
    const dataEnd = full.length - 8;
    const allowed = new Set(['ERR_GGUF_MAGIC', 'ERR_GGUF_TRUNCATED', 'ERR_GGUF_COUNT', 'ERR_GGUF_STRING', 'ERR_GGUF_ARRAY']);
    const p = path.join(root, 'prefix.gguf');
    const seen = new Set<string>();
    for (let n = 0; n < full.length; n++) {
      fs.writeFileSync(p, full.subarray(0, n));
      for (const io of ['mmap', 'pread'] as const) {
        let err: Coded | undefined;
        try {
          openSync(p, { io }).close();
        } catch (e) {
          err = e as Coded;
        }
        const what = `prefix of ${n}/${full.length} bytes, io ${io}: ${err ? `${err.code}: ${err.message}` : 'opened'}`;
        if (n >= dataEnd) {
          expect(err, what).toBeUndefined();
          continue;
        }
        expect(err, what).toBeInstanceOf(WeightsmithError);
        expect(allowed.has(err!.code!), what).toBe(true);
        seen.add(err!.code!);
      }
    }
    expect([...seen].sort()).toEqual([...allowed].sort());
  });
});

describe('B13: names and keys', () => {
  it.each([64, 65, 1000])('a tensor name of %i bytes -> ERR_GGUF_NAME', async (n) => {
    await expectCode(base({ tensors: [{ name: 'n'.repeat(n), ne: [4], type: 'f32' }] }), 'ERR_GGUF_NAME');
  });

  it('a tensor name of 64 bytes made of 32 two-byte UTF-8 characters -> ERR_GGUF_NAME (bytes, not characters)', async () => {
    await expectCode(base({ tensors: [{ name: 'é'.repeat(32), ne: [4], type: 'f32' }] }), 'ERR_GGUF_NAME');
  });

  it('a tensor name of 63 bytes is accepted', async () => {
    const name = 'blk.0.'.padEnd(63, 'x');
    await eachMode(mk(base({ tensors: [{ name, ne: [4], type: 'f32' }] })), (f) => expect(f.names()).toEqual([name]));
  });

  it('a key of 65,536 bytes -> ERR_GGUF_NAME; 65,535 bytes is accepted', async () => {
    await expectCode(base({ kvs: [ARCH, kv('k'.repeat(65_536), 'u8', 1)] }), 'ERR_GGUF_NAME');
    const key = 'k'.repeat(65_535);
    await eachMode(mk(base({ kvs: [ARCH, kv(key, 'u8', 1)] })), (f) => expect(f.getNumber(key)).toBe(1));
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['non-ASCII UTF-8 (é)', Buffer.from('general.nämé', 'utf8')],
    ['a newline', Buffer.from('general.\nname')],
    ['a NUL byte', Buffer.from('general.\0name', 'latin1')],
    ['DEL (0x7f)', Buffer.from('general.\x7fname', 'latin1')],
    ['a 0xff byte (not UTF-8)', Buffer.from([0x67, 0xff, 0x6b])],
    ['a tab', Buffer.from('general.\tname')],
  ] as [string, Buffer][])('a key that is %s -> ERR_GGUF_NAME', async (_label, key) => {
    await expectCode(base({ kvs: [ARCH, kv(key, 'u32', 1)] }), 'ERR_GGUF_NAME');
  });
});

describe('tensor names that are not UTF-8', () => {
  it('two names that differ only in invalid UTF-8 bytes -> a GGUF code (ERR_GGUF_NAME or ERR_GGUF_DUPLICATE)', async () => {
    // The bytes differ ('a\xff' vs 'a\xfe'), so the native parser sees no duplicate, but both decode to 'a\ufffd'
    // in JS: the file must still be refused with a GGUF code, not the safetensors shard error ERR_ST_DUPLICATE_KEY.
    const p = mk(base({
      tensors: [{ name: Buffer.from([0x61, 0xff]), ne: [4], type: 'f32' }, { name: Buffer.from([0x61, 0xfe]), ne: [4], type: 'f32' }],
    }));
    for (const mode of OPEN_MODES) {
      const err = (await openError(p, mode)) as Coded;
      const what = `${mode.label}: ${err ? `${err.code}: ${err.message}` : 'opened'}`;
      expect(err, what).toBeInstanceOf(WeightsmithError);
      expect(['ERR_GGUF_NAME', 'ERR_GGUF_DUPLICATE'], what).toContain(err.code);
      expect(err.path, what).toBe(p);
    }
  });
});

describe('B14: typed metadata accessors', () => {
  const spec = base({
    kvs: [
      ARCH,
      kv('llama.block_count', 'u32', 5),
      kv('llama.context_length', 'u64', 2048n),
      kv('general.flag', 'u8', 1),
      kv('general.truth', 'bool', true),
      kvArray('tokenizer.ggml.scores', 'u8', [0, 1, 2, 255]),
      kvArray('tokenizer.ggml.tokens', 'i32', [1, 2]),
      kvArray('tokenizer.ggml.merges', 'string', ['a b']),
    ],
  });

  const bad = (f: WeightFile, call: () => unknown, label: string) => {
    let err: Coded | undefined;
    try {
      call();
    } catch (e) {
      err = e as Coded;
    }
    expect(err, `${label}: no error`).toBeInstanceOf(WeightsmithError);
    expect(err!.code, `${label}: ${err!.message}`).toBe('ERR_GGUF_METADATA_TYPE');
    expect(err!.path, label).toBe(f.path);
  };

  it('a known key holding an array of the wrong element type throws ERR_GGUF_METADATA_TYPE, never reinterpreted', async () => {
    await eachMode(mk(spec), (f, mode) => {
      expect(f.metadataTypes['tokenizer.ggml.scores'], mode).toBe('array<u8>');
      bad(f, () => f.getArray('tokenizer.ggml.scores', 'f32'), `${mode} scores as f32`);
      bad(f, () => f.getArray('tokenizer.ggml.tokens', 'string'), `${mode} tokens as string`);
      bad(f, () => f.getArray('tokenizer.ggml.merges', 'u8'), `${mode} merges as u8`);
      // The raw value keeps its own type: 4 bytes stay 4 u8 values (not one reinterpreted f32).
      const scores = f.getArray('tokenizer.ggml.scores', 'u8');
      expect(scores, mode).toBeInstanceOf(Uint8Array);
      expect(Array.from(scores as Uint8Array)).toEqual([0, 1, 2, 255]);
      expect(f.getArray('tokenizer.ggml.scores')).toBe(scores);
      expect(Array.from(f.getArray('tokenizer.ggml.tokens', 'i32') as Int32Array)).toEqual([1, 2]);
      expect(f.getArray('tokenizer.ggml.merges', 'string')).toEqual(['a b']);
    });
  });

  it('scalar accessors refuse other types and return undefined for missing keys', async () => {
    await eachMode(mk(spec), (f, mode) => {
      bad(f, () => f.getString('llama.block_count'), `${mode} getString(u32)`);
      bad(f, () => f.getBigInt('llama.block_count'), `${mode} getBigInt(u32)`);
      bad(f, () => f.getNumber('llama.context_length'), `${mode} getNumber(u64)`);
      bad(f, () => f.getNumber('general.architecture'), `${mode} getNumber(string)`);
      bad(f, () => f.getBoolean('general.flag'), `${mode} getBoolean(u8)`);
      bad(f, () => f.getNumber('general.truth'), `${mode} getNumber(bool)`);
      bad(f, () => f.getArray('general.architecture'), `${mode} getArray(string)`);
      bad(f, () => f.getArray('llama.block_count', 'u32'), `${mode} getArray(u32)`);
      bad(f, () => f.getString('tokenizer.ggml.merges'), `${mode} getString(array<string>)`);
      bad(f, () => f.getNumber('tokenizer.ggml.scores'), `${mode} getNumber(array<u8>)`);
      expect(f.getNumber('llama.block_count')).toBe(5);
      expect(f.getBigInt('llama.context_length')).toBe(2048n);
      expect(f.getString('general.architecture')).toBe('test');
      expect(f.getBoolean('general.truth')).toBe(true);
      const getters: ((key: string) => unknown)[] = [f.getString, f.getNumber, f.getBigInt, f.getBoolean, f.getArray];
      for (const get of getters) expect(get.call(f, 'no.such.key')).toBeUndefined();
      expect(f.getArray('no.such.key', 'f32')).toBeUndefined();
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Valid files

/** Every scalar type, with edge values, and arrays of every element type (plus empty ones). */
function richKvs(): KV[] {
  return [
    ARCH,
    kv('t.u8', 'u8', 255), kv('t.i8', 'i8', -128), kv('t.u16', 'u16', 65535), kv('t.i16', 'i16', -32768),
    kv('t.u32', 'u32', 4294967295), kv('t.i32', 'i32', -2147483648), kv('t.f32', 'f32', 1.5), kv('t.f32_tiny', 'f32', 1e-45),
    kv('t.bool_true', 'bool', true), kv('t.bool_false', 'bool', false),
    kv('t.string', 'string', 'hello'), kv('t.string_empty', 'string', ''), kv('t.string_unicode', 'string', 'héllo wörld 世界 🦙'),
    kv('t.string_nul', 'string', 'a\0b'),
    kv('t.u64', 'u64', U64_MAX), kv('t.i64', 'i64', -(1n << 63n)), kv('t.f64', 'f64', Math.PI),
    kvArray('a.u8', 'u8', [0, 1, 255]), kvArray('a.i8', 'i8', [-128, 0, 127]),
    kvArray('a.u16', 'u16', [0, 65535]), kvArray('a.i16', 'i16', [-32768, 32767]),
    kvArray('a.u32', 'u32', [0, 4294967295]), kvArray('a.i32', 'i32', [-2147483648, 2147483647]),
    kvArray('a.f32', 'f32', [1.5, -0, Infinity, NaN, -2.25]), kvArray('a.bool', 'bool', [true, false, true]),
    kvArray('a.string', 'string', ['', 'a', 'naïve ✓', '🦙🦙']),
    kvArray('a.u64', 'u64', [0n, U64_MAX]), kvArray('a.i64', 'i64', [-(1n << 63n), I64_MAX]),
    kvArray('a.f64', 'f64', [Math.E, -0, -Infinity]),
    ...(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'u64', 'i64', 'f64'] as const).map((t) => kvArray(`e.${t}`, t, [])),
  ];
}

const f32s = [0, 1, -1, 0.5, 1e-3, -2.5, 3.25, 100, -0, 7, 8, 9];
const f16bits = [0x3c00, 0xbc00, 0x0001, 0x7bff, 0x7c00, 0x8000, 0x3555, 0x0400];
const bf16bits = [0x3f80, 0xbf80, 0x0001, 0x7f7f, 0xff80];
const f64s = [Math.PI, -Math.E, 1e300];
const i8s = [-128, -1, 0, 1, 127, 5, 6];
const i16s = [-32768, -1, 0, 1, 32767, 42];
const i32s = [-2147483648, -1, 0, 1, 2147483647, 42];
const i64s = [-(1n << 63n), -1n, 1n, I64_MAX];

/** Tensors of every plain type; sizes that are not multiples of 32 so padding matters. */
function plainTensors(): TensorSpec[] {
  return [
    { name: 'f32', ne: [4, 3], type: 'f32', data: bytesOf(Float32Array.from(f32s)) },
    { name: 'f16', ne: [2, 2, 2], type: 'f16', data: bytesOf(Uint16Array.from(f16bits)) },
    { name: 'bf16', ne: [5], type: 'bf16', data: bytesOf(Uint16Array.from(bf16bits)) },
    { name: 'f64', ne: [3, 1], type: 'f64', data: bytesOf(Float64Array.from(f64s)) },
    { name: 'i8', ne: [7], type: 'i8', data: bytesOf(Int8Array.from(i8s)) },
    { name: 'i16', ne: [3, 2], type: 'i16', data: bytesOf(Int16Array.from(i16s)) },
    { name: 'i32', ne: [2, 3], type: 'i32', data: bytesOf(Int32Array.from(i32s)) },
    { name: 'i64', ne: [2, 1, 1, 2], type: 'i64', data: bytesOf(BigInt64Array.from(i64s)) },
  ];
}

const quantBytes = {
  q8_0: randomBytes(2 * 2 * 34, 1),
  q4_0: randomBytes(3 * 18, 2),
  q4_k: randomBytes(144, 3),
  q6_k: randomBytes(2 * 210, 4),
  q5_1: randomBytes(24, 5),
};
function quantTensors(): TensorSpec[] {
  return [
    { name: 'q8', ne: [64, 2], type: 'q8_0', data: quantBytes.q8_0 },
    { name: 'q4', ne: [32, 3], type: 'q4_0', data: quantBytes.q4_0 },
    { name: 'q4k', ne: [256], type: 'q4_k', data: quantBytes.q4_k },
    { name: 'q6k', ne: [256, 1, 2], type: 'q6_k', data: quantBytes.q6_k },
    { name: 'q51', ne: [32, 1], type: 'q5_1', data: quantBytes.q5_1 },
  ];
}

function richSpec(over: GgufSpec = {}): GgufSpec {
  return { kvs: richKvs(), tensors: [...plainTensors(), ...quantTensors()], ...over };
}

const PLAIN_EXPECT: Record<string, { dtype: string; shape: number[]; values: (number | bigint)[] }> = {
  f32: { dtype: 'f32', shape: [3, 4], values: f32s },
  f16: { dtype: 'f16', shape: [2, 2, 2], values: f16bits },
  bf16: { dtype: 'bf16', shape: [5], values: bf16bits },
  f64: { dtype: 'f64', shape: [1, 3], values: f64s },
  i8: { dtype: 'i8', shape: [7], values: i8s },
  i16: { dtype: 'i16', shape: [2, 3], values: i16s },
  i32: { dtype: 'i32', shape: [3, 2], values: i32s },
  i64: { dtype: 'i64', shape: [2, 1, 1, 2], values: i64s },
};

const QUANT_EXPECT: Record<string, { type: string; shape: number[]; bytes: Uint8Array }> = {
  q8: { type: 'q8_0', shape: [2, 64], bytes: quantBytes.q8_0 },
  q4: { type: 'q4_0', shape: [3, 32], bytes: quantBytes.q4_0 },
  q4k: { type: 'q4_k', shape: [256], bytes: quantBytes.q4_k },
  q6k: { type: 'q6_k', shape: [2, 1, 256], bytes: quantBytes.q6_k },
  q51: { type: 'q5_1', shape: [1, 32], bytes: quantBytes.q5_1 },
};

/** Asserts every plain and quantized tensor of {@link richSpec} reads back exactly. */
function checkTensors(f: WeightFile, mode: string): void {
  expect(f.format, mode).toBe('gguf');
  expect(f.names(), mode).toEqual([...Object.keys(PLAIN_EXPECT), ...Object.keys(QUANT_EXPECT)]);
  for (const [name, e] of Object.entries(PLAIN_EXPECT)) {
    const what = `${mode} ${name}`;
    const t = f.get(name);
    expect(t, what).toBeInstanceOf(Tensor);
    expect(f.getTensor(name), what).toBe(t);
    const tt = t as Tensor;
    expect(tt.dtype, what).toBe(e.dtype);
    expect(tt.shape, what).toEqual(e.shape);
    if (e.dtype === 'f32' || e.dtype === 'f64') {
      // Bit-exact (keeps -0).
      const Ctor = e.dtype === 'f32' ? Float32Array : Float64Array;
      expect(bytesOf(tt.data).equals(bytesOf(Ctor.from(e.values as number[]))), what).toBe(true);
    } else {
      expect(Array.from(tt.data as ArrayLike<number | bigint>), what).toEqual(e.values);
    }
    const size = { f32: 4, f16: 2, bf16: 2, f64: 8, i8: 1, i16: 2, i32: 4, i64: 8 }[e.dtype]!;
    expect(f.info(name), what).toEqual({ dtype: e.dtype, shape: e.shape, byteLength: e.values.length * size, ggmlType: e.dtype });
  }
  for (const [name, e] of Object.entries(QUANT_EXPECT)) {
    const what = `${mode} ${name}`;
    const q = f.get(name);
    expect(q, what).toBeInstanceOf(QuantizedTensor);
    const qt = q as QuantizedTensor;
    expect(qt.spec, what).toEqual({ scheme: 'ggml', type: e.type });
    expect(qt.shape, what).toEqual(e.shape);
    expect(Object.keys(qt.parts), what).toEqual(['blocks']);
    const blocks = qt.parts.blocks;
    expect(blocks, what).toBeInstanceOf(Tensor);
    expect(blocks.dtype, what).toBe('u8');
    expect(blocks.shape, what).toEqual([e.bytes.length]);
    expect(Buffer.from(blocks.bytes()).equals(Buffer.from(e.bytes)), what).toBe(true);
    expect(f.get(name), what).toBe(q);
    expect(f.info(name), what).toEqual({ dtype: 'u8', shape: e.shape, byteLength: e.bytes.length, ggmlType: e.type });
    let err: Coded | undefined;
    try {
      f.getTensor(name);
    } catch (x) {
      err = x as Coded;
    }
    expect(err, what).toBeInstanceOf(WeightsmithError);
    expect(err!.code, what).toBe('ERR_DTYPE');
  }
}

describe('valid files', () => {
  it('every metadata value type reads back with the right JS value and metadataTypes, in file order', async () => {
    await eachMode(mk(richSpec()), (f, mode) => {
      const m = f.metadata;
      const t = f.metadataTypes;
      expect(Object.keys(m), mode).toEqual(richKvs().map((k) => String(k.key)));
      expect(Object.keys(t), mode).toEqual(Object.keys(m));
      expect(m['general.architecture']).toBe('test');
      const scalars: [string, string, unknown][] = [
        ['t.u8', 'u8', 255], ['t.i8', 'i8', -128], ['t.u16', 'u16', 65535], ['t.i16', 'i16', -32768],
        ['t.u32', 'u32', 4294967295], ['t.i32', 'i32', -2147483648], ['t.f32', 'f32', 1.5], ['t.f32_tiny', 'f32', Math.fround(1e-45)],
        ['t.bool_true', 'bool', true], ['t.bool_false', 'bool', false],
        ['t.string', 'string', 'hello'], ['t.string_empty', 'string', ''], ['t.string_unicode', 'string', 'héllo wörld 世界 🦙'],
        ['t.string_nul', 'string', 'a\0b'],
        ['t.u64', 'u64', U64_MAX], ['t.i64', 'i64', -(1n << 63n)], ['t.f64', 'f64', Math.PI],
      ];
      for (const [key, type, value] of scalars) {
        expect(m[key], `${mode} ${key}`).toBe(value);
        expect(t[key], `${mode} ${key}`).toBe(type);
      }
      const arrays: [string, string, new (...a: never[]) => unknown, unknown[]][] = [
        ['a.u8', 'u8', Uint8Array, [0, 1, 255]], ['a.i8', 'i8', Int8Array, [-128, 0, 127]],
        ['a.u16', 'u16', Uint16Array, [0, 65535]], ['a.i16', 'i16', Int16Array, [-32768, 32767]],
        ['a.u32', 'u32', Uint32Array, [0, 4294967295]], ['a.i32', 'i32', Int32Array, [-2147483648, 2147483647]],
        ['a.u64', 'u64', BigUint64Array, [0n, U64_MAX]], ['a.i64', 'i64', BigInt64Array, [-(1n << 63n), I64_MAX]],
      ];
      for (const [key, elem, Ctor, values] of arrays) {
        const v = m[key];
        expect(v, `${mode} ${key}`).toBeInstanceOf(Ctor);
        expect(Array.from(v as ArrayLike<unknown>), `${mode} ${key}`).toEqual(values);
        expect(t[key], `${mode} ${key}`).toBe(`array<${elem}>`);
        expect(f.getArray(key, elem), `${mode} ${key}`).toBe(v);
      }
      // Floats bit for bit (-0, Inf, NaN).
      expect(m['a.f32']).toBeInstanceOf(Float32Array);
      expect(bytesOf(m['a.f32'] as Float32Array).equals(bytesOf(Float32Array.from([1.5, -0, Infinity, NaN, -2.25]))), mode).toBe(true);
      expect(t['a.f32']).toBe('array<f32>');
      expect(m['a.f64']).toBeInstanceOf(Float64Array);
      expect(bytesOf(m['a.f64'] as Float64Array).equals(bytesOf(Float64Array.from([Math.E, -0, -Infinity]))), mode).toBe(true);
      expect(t['a.f64']).toBe('array<f64>');
      expect(m['a.bool'], mode).toEqual([true, false, true]);
      expect(t['a.bool']).toBe('array<bool>');
      expect(m['a.string'], mode).toEqual(['', 'a', 'naïve ✓', '🦙🦙']);
      expect(t['a.string']).toBe('array<string>');
      // Empty arrays of every element type.
      const empty: Record<string, unknown> = {
        u8: Uint8Array, i8: Int8Array, u16: Uint16Array, i16: Int16Array, u32: Uint32Array, i32: Int32Array, f32: Float32Array,
        u64: BigUint64Array, i64: BigInt64Array, f64: Float64Array,
      };
      for (const elem of ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'u64', 'i64', 'f64']) {
        const key = `e.${elem}`;
        const v = m[key] as ArrayLike<unknown>;
        expect(t[key], `${mode} ${key}`).toBe(`array<${elem}>`);
        if (empty[elem]) expect(v, `${mode} ${key}`).toBeInstanceOf(empty[elem] as new () => unknown);
        else expect(Array.isArray(v), `${mode} ${key}`).toBe(true);
        expect(v.length, `${mode} ${key}`).toBe(0);
        expect(f.getArray(key, elem), `${mode} ${key}`).toBe(v);
      }
    });
  });

  it('a tensor of each plain type reads back with its values and the PyTorch-order shape; block types as QuantizedTensor', async () => {
    await eachMode(mk(richSpec()), (f, mode) => checkTensors(f, mode));
  });

  it('custom general.alignment 64 (and 8, 256) lays out the data section and the tensors', async () => {
    for (const a of [64, 8, 256]) {
      // The builder places the data section at the header end rounded up to `a`: make sure the header end is
      // not a multiple of `a` (and not of 32 either, so the default alignment would read the wrong bytes).
      let extra: KV[] = [];
      const specOf = () => richSpec({ kvs: [kv('general.alignment', 'u32', a), ...richKvs(), ...extra] });
      const headerEnd = () => gguf({ ...specOf(), alignment: 1, noData: true }).length;
      while (headerEnd() % a === 0 || headerEnd() % 32 === 0) extra = [...extra, kv(`x.pad${extra.length}`, 'u8', 0)];
      const img = gguf(specOf());
      await eachMode(mk(img), (f, mode) => {
        expect(f.getNumber('general.alignment')).toBe(a);
        checkTensors(f, `${mode} alignment ${a}`);
      });
    }
  });

  it('trailing bytes after the last tensor are accepted', async () => {
    await eachMode(mk(richSpec({ trailing: randomBytes(1000, 9) })), (f, mode) => checkTensors(f, mode));
    await eachMode(mk(richSpec({ trailing: Buffer.from('GGUF') })), (f, mode) => checkTensors(f, mode));
  });

  it('GGUF version 2 is accepted', async () => {
    await eachMode(mk(richSpec({ version: 2 })), (f, mode) => checkTensors(f, mode));
  });

  it('an empty GGUF (no tensors, no metadata, 24 bytes) opens', async () => {
    const img = gguf({});
    expect(img.length).toBe(24);
    await eachMode(mk(img), (f) => {
      expect(f.format).toBe('gguf');
      expect(f.names()).toEqual([]);
      expect(f.metadata).toEqual({});
    });
  });

  it('a 0-D tensor (n_dims 0) has shape [] and a zero-element tensor is accepted', async () => {
    const spec = base({
      tensors: [
        { name: 'scalar', ne: [], type: 'f32', data: f32(2.5) },
        { name: 'empty', ne: [0, 3], type: 'f32' },
        { name: 'empty_q', ne: [0], type: 'q8_0' },
        { name: 'after', ne: [2], type: 'f32', data: Buffer.concat([f32(1), f32(-1)]) },
      ],
    });
    await eachMode(mk(spec), (f, mode) => {
      const s = f.getTensor('scalar');
      expect(s.shape, mode).toEqual([]);
      expect(Array.from(s.data as Float32Array)).toEqual([2.5]);
      const e = f.getTensor('empty');
      expect(e.shape, mode).toEqual([3, 0]);
      expect(e.data.length).toBe(0);
      expect((f.get('empty_q') as QuantizedTensor).shape).toEqual([0]);
      expect(Array.from(f.getTensor('after').data as Float32Array)).toEqual([1, -1]);
    });
  });

  it('a file missing only the last tensor\'s trailing padding opens (its data is complete)', async () => {
    const spec = base({ tensors: [{ name: 'w', ne: [3], type: 'f32', data: Buffer.concat([f32(1), f32(2), f32(3)]) }] });
    const full = gguf(spec);
    const cut = full.subarray(0, full.length - 20);
    await eachMode(mk(cut), (f) => expect(Array.from(f.getTensor('w').data as Float32Array)).toEqual([1, 2, 3]));
  });

  it('files with other extensions are sniffed by the GGUF magic; .safetensors files never are', async () => {
    const img = gguf(richSpec());
    for (const ext of ['.bin', '', '.GGUF', '.model']) await eachMode(mk(img, ext), (f, mode) => checkTensors(f, `${mode} ${ext}`));
    const p = mk(img, '.safetensors');
    for (const mode of OPEN_MODES) {
      const err = (await openError(p, mode)) as Coded;
      expect(err, mode.label).toBeInstanceOf(WeightsmithError);
      expect(err.code, `${mode.label}: ${err.message}`).toMatch(/^ERR_ST_/);
    }
  });

  it('keys named like Object.prototype members (__proto__, constructor, toString) are ordinary keys', async () => {
    const spec = base({
      kvs: [ARCH, kv('__proto__', 'u32', 5), kv('constructor', 'string', 'c'), kv('toString', 'bool', true), kvArray('hasOwnProperty', 'u8', [1, 2])],
    });
    await eachMode(mk(spec), (f, mode) => {
      expect(Object.keys(f.metadata), mode).toEqual(['general.architecture', '__proto__', 'constructor', 'toString', 'hasOwnProperty']);
      expect(Object.keys(f.metadataTypes), mode).toEqual(Object.keys(f.metadata));
      expect(f.metadataTypes['__proto__'], mode).toBe('u32');
      expect(f.getNumber('__proto__'), mode).toBe(5);
      expect(f.getString('constructor'), mode).toBe('c');
      expect(f.getBoolean('toString'), mode).toBe(true);
      expect(Array.from(f.getArray('hasOwnProperty', 'u8') as Uint8Array), mode).toEqual([1, 2]);
      expect(Object.getPrototypeOf(f.metadata) === Object.prototype || Object.getPrototypeOf(f.metadata) === null, mode).toBe(true);
    });
    // An array value under __proto__ must not become the metadata object's prototype either.
    await eachMode(mk(base({ kvs: [ARCH, kvArray('__proto__', 'u8', [7])] })), (f, mode) => {
      expect(Array.from(f.getArray('__proto__', 'u8') as Uint8Array), mode).toEqual([7]);
      expect(f.metadataTypes['__proto__'], mode).toBe('array<u8>');
    });
  });

  it('maxTensors applies to GGUF files (ERR_LIMIT_EXCEEDED)', async () => {
    const p = mk(richSpec());
    await expectOpenCode(p, 'ERR_LIMIT_EXCEEDED', { maxTensors: 3 });
    await eachMode(p, (f) => expect(f.names().length).toBe(13));
  });

  it('the typed accessors read every scalar type', async () => {
    await eachMode(mk(richSpec()), (f) => {
      expect(f.getNumber('t.u8')).toBe(255);
      expect(f.getNumber('t.i32')).toBe(-2147483648);
      expect(f.getNumber('t.f64')).toBe(Math.PI);
      expect(f.getBigInt('t.u64')).toBe(U64_MAX);
      expect(f.getBigInt('t.i64')).toBe(-(1n << 63n));
      expect(f.getBoolean('t.bool_false')).toBe(false);
      expect(f.getString('t.string_unicode')).toBe('héllo wörld 世界 🦙');
      expect(f.getString('t.string_empty')).toBe('');
      expect(f.getArray('a.string', 'string')).toEqual(['', 'a', 'naïve ✓', '🦙🦙']);
      expect(f.getArray('a.bool', 'bool')).toEqual([true, false, true]);
    });
  });
});

// Keep the builder's primitive helpers honest: one hand-written image, byte for byte.
describe('the test builder', () => {
  it('writes the GGUF v3 layout of FORMATS.md b2', () => {
    const img = gguf({ kvs: [kv('a.b', 'u32', 7)], tensors: [{ name: 't', ne: [2, 1], type: 'f16', data: Buffer.from([1, 2, 3, 4]) }] });
    const expected = Buffer.concat([
      Buffer.from('GGUF'), u32(3), u64(1), u64(1),
      u64(3), Buffer.from('a.b'), u32(4), u32(7),
      u64(1), Buffer.from('t'), u32(2), u64(2), u64(1), u32(1), u64(0),
    ]);
    const start = Math.ceil(expected.length / 32) * 32;
    expect(img.subarray(0, expected.length).equals(expected)).toBe(true);
    expect(img.length).toBe(start + 32);
    expect([...img.subarray(start, start + 4)]).toEqual([1, 2, 3, 4]);
    expect(GGML.q4_k).toEqual({ id: 12, block: 256, size: 144 });
    expect(i16(-1).equals(Buffer.from([0xff, 0xff]))).toBe(true);
    expect(i32(-2).readInt32LE()).toBe(-2);
    expect(i64(-3n).readBigInt64LE()).toBe(-3n);
    expect(f64(0.5).readDoubleLE()).toBe(0.5);
  });
});
