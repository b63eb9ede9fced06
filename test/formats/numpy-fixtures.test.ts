// SPDX-License-Identifier: MIT
// References written by numpy (test/fixtures/make-fixtures.py; numpy is not needed to run these tests):
// a safetensors file with every arithmetic dtype written by hand in the reference writer's layout, and f32
// conversion cases. Reading must give the numpy values, our writer must reproduce the numpy file byte for
// byte, and conversions must match numpy bit for bit (NaN payloads excepted where numpy encodes NaN its own way).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  convert, DType, getThreads, open, openSync, save, saveSync, setThreads, Tensor, tensor, TypedArray, WeightFile,
} from '../../lib/index';

const FIXTURES = path.resolve(__dirname, '../fixtures');
const ST_FILE = path.join(FIXTURES, 'numpy-all-dtypes.safetensors');

/** A JSON float: a number, or 'nan' / 'inf' / '-inf'. */
type JNum = number | string;

interface TensorRecord {
  name: string;
  dtype: DType;
  st_dtype: string;
  shape: number[];
  data_offsets: [number, number];
  sha256: string;
  /** Decoded values: floats as JNum, integers as numbers or decimal strings (beyond 2^53). */
  values: JNum[];
  /** Expected `to('f32')` / `to('f64')` values. */
  f32: JNum[];
  f64: JNum[];
  /** Stored codes of float tensors (f64 as decimal strings). */
  bits?: (number | string)[];
  /** f32 inputs whose conversion gives the first codes of the tensor. */
  source_f32_bits?: number[];
}

interface AllDTypes {
  file_sha256: string;
  header_size: number;
  metadata: Record<string, string>;
  tensors: TensorRecord[];
}

interface ConvertCases {
  groups: { name: string; count: number }[];
  f32_bits: number[];
  f16_bits: number[];
  bf16_bits: number[];
  f64: JNum[];
  f16_to_f32_bits: number[];
  bf16_to_f32_bits: number[];
  dense: { stride: number; count: number; f16_sha256: string; bf16_sha256: string; all_f16_to_f32_sha256: string };
}

const readJson = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as T;
const ref = readJson<AllDTypes>('numpy-all-dtypes.json');
const cases = readJson<ConvertCases>('convert-cases.json');

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const num = (v: JNum): number => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : (v as number));
const hex = (v: number, digits: number): string => `0x${v.toString(16).padStart(digits, '0')}`;
const bytesOf = (a: TypedArray): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const u32Of = (t: Tensor): Uint32Array => new Uint32Array(t.data.buffer, t.data.byteOffset, t.numel);

/** The stored values as JS values comparable with `Array.from(t.data)`. */
function expectedElements(r: TensorRecord): (number | bigint)[] {
  if (r.dtype === 'f16' || r.dtype === 'bf16' || r.dtype === 'f8_e4m3' || r.dtype === 'f8_e5m2') return r.bits as number[];
  if (r.dtype === 'i64' || r.dtype === 'u64') return r.values.map((v) => BigInt(v));
  return r.values.map(num);  // f32/f64 (NaN compares equal to NaN in toEqual, -0 differs from 0) and the rest
}

/** The tensor rebuilt from the JSON alone (no file involved). */
function fromJson(r: TensorRecord): Tensor {
  switch (r.dtype) {
    case 'f64':
      return tensor(new Float64Array(BigUint64Array.from((r.bits as string[]).map((s) => BigInt(s))).buffer), r.shape);
    case 'f32':
      return tensor(new Float32Array(Uint32Array.from(r.bits as number[]).buffer), r.shape);
    case 'f16': case 'bf16': case 'u16':
      return tensor(Uint16Array.from((r.bits ?? r.values) as number[]), r.shape, r.dtype);
    case 'f8_e4m3': case 'f8_e5m2': case 'u8': case 'bool':
      return tensor(Uint8Array.from((r.bits ?? r.values) as number[]), r.shape, r.dtype);
    case 'i64': return tensor(BigInt64Array.from(r.values.map((v) => BigInt(v))), r.shape);
    case 'u64': return tensor(BigUint64Array.from(r.values.map((v) => BigInt(v))), r.shape);
    case 'i32': return tensor(Int32Array.from(r.values as number[]), r.shape);
    case 'u32': return tensor(Uint32Array.from(r.values as number[]), r.shape);
    case 'i16': return tensor(Int16Array.from(r.values as number[]), r.shape);
    case 'i8': return tensor(Int8Array.from(r.values as number[]), r.shape);
    default: throw new Error(`no rebuild rule for ${r.dtype}`);
  }
}

const ARRAY_CLASS: Record<string, string> = {
  f64: 'Float64Array', f32: 'Float32Array', f16: 'Uint16Array', bf16: 'Uint16Array', f8_e4m3: 'Uint8Array',
  f8_e5m2: 'Uint8Array', i64: 'BigInt64Array', i32: 'Int32Array', i16: 'Int16Array', i8: 'Int8Array',
  u64: 'BigUint64Array', u32: 'Uint32Array', u16: 'Uint16Array', u8: 'Uint8Array', bool: 'Uint8Array',
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-numpy-fixtures-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** First differing byte offset, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Asserts two safetensors files are byte-identical, showing the headers when they are not. */
function expectSameFile(written: Buffer, reference: Buffer): void {
  const header = (b: Buffer) => b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8');
  expect(header(written)).toBe(header(reference));
  expect(firstDiff(written, reference), 'first differing byte').toBe(-1);
}

describe('numpy-written safetensors with every arithmetic dtype', () => {
  const openers: [string, () => Promise<WeightFile>][] = [
    ['openSync mmap', async () => openSync(ST_FILE, { io: 'mmap' })],
    ['openSync pread', async () => openSync(ST_FILE, { io: 'pread' })],
    ['open mmap', () => open(ST_FILE, { io: 'mmap' })],
    ['open pread', () => open(ST_FILE, { io: 'pread' })],
  ];

  it('the fixture is the committed one', () => {
    const bytes = fs.readFileSync(ST_FILE);
    expect(sha256(bytes)).toBe(ref.file_sha256);
    // the layout promised: header length a multiple of 8, '{' first, padded with spaces
    expect(Number(bytes.readBigUInt64LE(0))).toBe(ref.header_size);
    expect(ref.header_size % 8).toBe(0);
    const header = bytes.subarray(8, 8 + ref.header_size).toString('utf8');
    expect(header[0]).toBe('{');
    expect(header.trimEnd().length).toBeGreaterThan(ref.header_size - 8);
    expect(Object.keys(JSON.parse(header))[0]).toBe('__metadata__');
    expect(ref.tensors.length).toBe(20);
    expect(new Set(ref.tensors.map((r) => r.dtype)).size).toBe(15);
  });

  for (const [how, openIt] of openers) {
    it(`reads names, dtypes, shapes and values (${how})`, async () => {
      const f = await openIt();
      try {
        expect(f.names()).toEqual(ref.tensors.map((r) => r.name));
        expect({ ...f.metadata }).toEqual(ref.metadata);
        for (const r of ref.tensors) {
          const numel = r.shape.reduce((a, b) => a * b, 1);
          expect(f.has(r.name)).toBe(true);
          expect(f.info(r.name), r.name).toEqual({ dtype: r.dtype, shape: r.shape, byteLength: r.data_offsets[1] - r.data_offsets[0] });
          expect(f.isMapped(r.name)).toBe(how.endsWith('mmap'));
          const t = f.getTensor(r.name);
          expect(t.dtype, r.name).toBe(r.dtype);
          expect(t.shape, r.name).toEqual(r.shape);
          expect(t.numel, r.name).toBe(numel);
          expect(t.data.constructor.name, r.name).toBe(ARRAY_CLASS[r.dtype]);
          expect(t.data.length, r.name).toBe(numel);
          expect(t.byteLength, r.name).toBe(r.data_offsets[1] - r.data_offsets[0]);
          expect(sha256(t.bytes()), r.name).toBe(r.sha256);
          expect(Array.from(t.data as ArrayLike<number | bigint>), r.name).toEqual(expectedElements(r));
          if (r.dtype === 'f32') expect(Array.from(u32Of(t)), r.name).toEqual(r.bits);
          if (r.dtype === 'f64') {
            const u = new BigUint64Array(t.data.buffer, t.data.byteOffset, numel);
            expect(Array.from(u, String), r.name).toEqual(r.bits);
          }
        }
        expect(f.has('missing')).toBe(false);
      } finally {
        f.close();
      }
    });
  }

  it('to("f32") and to("f64") give the numpy values of every tensor', () => {
    const f = openSync(ST_FILE);
    try {
      for (const r of ref.tensors) {
        const t = f.getTensor(r.name);
        const a = t.to('f32');
        expect(a.dtype).toBe('f32');
        expect(a.shape).toEqual(r.shape);
        expect(Array.from(a.data as Float32Array), `${r.name} to f32`).toEqual(r.f32.map(num));
        const b = t.to('f64');
        expect(Array.from(b.data as Float64Array), `${r.name} to f64`).toEqual(r.f64.map(num));
      }
    } finally {
      f.close();
    }
  });

  it('async convert() agrees with to()', async () => {
    const f = await open(ST_FILE);
    try {
      for (const r of ref.tensors) {
        const t = f.getTensor(r.name);
        for (const d of ['f32', 'f64'] as const) {
          const a = await convert(t, d);
          expect(Array.from(a.data as Float32Array), `${r.name} to ${d}`).toEqual(r[d].map(num));
        }
      }
    } finally {
      f.close();
    }
  });

  it('f32 sources encode to the fixture codes (f16 by numpy, bf16 and fp8 by bit arithmetic)', async () => {
    const withSources = ref.tensors.filter((r) => r.source_f32_bits);
    expect(withSources.map((r) => r.dtype).sort()).toEqual(['bf16', 'f16', 'f8_e4m3', 'f8_e5m2']);
    for (const r of withSources) {
      const src = tensor(new Float32Array(Uint32Array.from(r.source_f32_bits!).buffer), [r.source_f32_bits!.length]);
      const want = (r.bits as number[]).slice(0, r.source_f32_bits!.length);
      expect(Array.from(src.to(r.dtype).data as Uint16Array), r.name).toEqual(want);
      expect(Array.from((await convert(src, r.dtype)).data as Uint16Array), r.name).toEqual(want);
      // and from f64 (one rounding from the exact value, so the same codes)
      expect(Array.from(src.to('f64').to(r.dtype).data as Uint16Array), `${r.name} via f64`).toEqual(want);
    }
  });

  it('saveSync of the file\'s tensors is byte-identical to the numpy-written file (mmap and pread views)', () => {
    const reference = fs.readFileSync(ST_FILE);
    for (const io of ['mmap', 'pread'] as const) {
      const f = openSync(ST_FILE, { io });
      try {
        // insertion order deliberately not the layout order: the writer must sort
        const record: Record<string, Tensor> = {};
        for (const name of [...f.names()].reverse()) record[name] = f.getTensor(name);
        const out = path.join(tmp, `resaved-${io}.safetensors`);
        saveSync(out, record, { metadata: ref.metadata });
        expectSameFile(fs.readFileSync(out), reference);
      } finally {
        f.close();
      }
    }
  });

  it('tensors rebuilt from the JSON values save to the same bytes, sync and async', async () => {
    const reference = fs.readFileSync(ST_FILE);
    const byJsOrder = [...ref.tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const record: Record<string, Tensor> = {};
    for (const r of byJsOrder) record[r.name] = fromJson(r);
    for (const r of ref.tensors) expect(sha256(record[r.name].bytes()), r.name).toBe(r.sha256);
    const a = path.join(tmp, 'rebuilt-sync.safetensors');
    saveSync(a, record, { metadata: ref.metadata });
    expectSameFile(fs.readFileSync(a), reference);
    const b = path.join(tmp, 'rebuilt-async.safetensors');
    await save(b, record, { metadata: ref.metadata });
    expectSameFile(fs.readFileSync(b), reference);
  });
});

describe('f32 conversion cases (numpy references)', () => {
  const n = cases.f32_bits.length;
  const inBits = Uint32Array.from(cases.f32_bits);
  const x = tensor(new Float32Array(inBits.buffer), [n]);
  const isNaN32 = (u: number) => (u & 0x7fffffff) > 0x7f800000;
  const isNaN16 = (h: number) => (h & 0x7fff) > 0x7c00;
  /** Group name and index of case i, for messages. */
  const where = (i: number): string => {
    let k = i;
    for (const g of cases.groups) {
      if (k < g.count) return `${g.name}#${k}`;
      k -= g.count;
    }
    return `#${i}`;
  };

  it('covers the promised categories', () => {
    expect(cases.groups.reduce((a, g) => a + g.count, 0)).toBe(n);
    const names = cases.groups.map((g) => g.name).join(' | ');
    for (const want of ['f16 ties', 'bf16 ties', 'f32 subnormals', 'f16 subnormals', 'overflow', 'nan', 'inf and zero'])
      expect(names).toContain(want);
    for (const v of [65504, 65519, 65520]) expect(cases.f64).toContain(v);
    expect(inBits.filter(isNaN32).length).toBeGreaterThanOrEqual(8);
  });

  /** Mismatch lines (empty when all agree): NaN inputs are checked with `nanCheck` instead of equality. */
  function mismatches(got: ArrayLike<number>, want: number[], digits: number, nanCheck?: (g: number, i: number) => boolean): string[] {
    const bad: string[] = [];
    for (let i = 0; i < n; i++) {
      const ok = nanCheck && isNaN32(inBits[i]) ? nanCheck(got[i], i) : got[i] === want[i];
      if (!ok) bad.push(`${where(i)}: in ${hex(inBits[i], 8)} want ${hex(want[i], digits)} got ${hex(got[i], digits)}`);
    }
    return bad.slice(0, 20);
  }

  // Our documented NaN rules (lib/tensor.ts, native/include/weightsmith/float-bits.h).
  const nanF16 = (h: number, i: number) => isNaN16(h) && h === (((inBits[i] >>> 16) & 0x8000) | 0x7e00 | ((inBits[i] >>> 13) & 0x3ff));

  async function runAll(conv: (t: Tensor, d: DType) => Tensor | Promise<Tensor>): Promise<void> {
    const f16 = await conv(x, 'f16');
    expect(mismatches(f16.data as Uint16Array, cases.f16_bits, 4, nanF16), 'f32 -> f16').toEqual([]);
    const bf16 = await conv(x, 'bf16');
    // numpy-side bf16 uses the same NaN rule as ours ((x >> 16) | 0x40): bit-exact everywhere
    expect(mismatches(bf16.data as Uint16Array, cases.bf16_bits, 4), 'f32 -> bf16').toEqual([]);
    const f64 = (await conv(x, 'f64')).data as Float64Array;
    const badF64 = [];
    for (let i = 0; i < n; i++) {
      const want = num(cases.f64[i]);
      if (!(Number.isNaN(want) ? Number.isNaN(f64[i]) : Object.is(f64[i], want))) badF64.push(`${where(i)}: want ${want} got ${f64[i]}`);
    }
    expect(badF64, 'f32 -> f64').toEqual([]);
    // back: from the numpy codes (for NaN inputs numpy's own f16 NaN, which must stay a NaN)
    const h = tensor(Uint16Array.from(cases.f16_bits), [n], 'f16');
    const back16 = u32Of(await conv(h, 'f32'));
    expect(mismatches(back16, cases.f16_to_f32_bits, 8, (g) => isNaN32(g) && (g & 0x400000) !== 0), 'f16 -> f32').toEqual([]);
    const b = tensor(Uint16Array.from(cases.bf16_bits), [n], 'bf16');
    expect(mismatches(u32Of(await conv(b, 'f32')), cases.bf16_to_f32_bits, 8), 'bf16 -> f32').toEqual([]);
    // f64 -> f32 is exact for values that came from f32
    const again = u32Of(await conv(await conv(x, 'f64'), 'f32'));
    expect(mismatches(again, cases.f32_bits, 8, (g, i) => g === (inBits[i] | 0x400000) >>> 0), 'f32 -> f64 -> f32').toEqual([]);
  }

  it('Tensor.to() matches numpy bit for bit (NaN: a quiet NaN by our rule)', async () => {
    await runAll((t, d) => t.to(d));
  });

  it('async convert() matches numpy bit for bit', async () => {
    await runAll((t, d) => convert(t, d));
  });

  it('each case alone (no SIMD body, scalar tails only) gives the same codes', () => {
    const bad: string[] = [];
    for (let i = 0; i < n; i++) {
      const one = tensor(new Float32Array(inBits.buffer, i * 4, 1), [1]);
      const h = (one.to('f16').data as Uint16Array)[0];
      const b = (one.to('bf16').data as Uint16Array)[0];
      if (isNaN32(inBits[i]) ? !nanF16(h, i) : h !== cases.f16_bits[i]) bad.push(`${where(i)} f16 ${hex(h, 4)}`);
      if (b !== cases.bf16_bits[i]) bad.push(`${where(i)} bf16 ${hex(b, 4)}`);
    }
    expect(bad.slice(0, 20)).toEqual([]);
  });

  it('a dense sample of all 2^32 f32 patterns converts as numpy does, for 1 and many threads', async () => {
    const { stride, count } = cases.dense;
    const bits = new Uint32Array(count);
    for (let i = 0; i < count; i++) bits[i] = i * stride;
    const src = tensor(new Float32Array(bits.buffer), [count]);
    const saved = getThreads();
    try {
      for (const threads of [1, Math.max(2, saved)]) {
        setThreads(threads);
        const h = (await convert(src, 'f16')).data as Uint16Array;
        for (let i = 0; i < count; i++) if (isNaN16(h[i])) h[i] = 0x7e00;
        expect(sha256(bytesOf(h)), `f16, ${threads} threads`).toBe(cases.dense.f16_sha256);
        expect(sha256(src.to('bf16').bytes()), `bf16, ${threads} threads`).toBe(cases.dense.bf16_sha256);
      }
    } finally {
      setThreads(saved);
    }
    const all = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i;
    const back = u32Of(tensor(all, [65536], 'f16').to('f32'));
    for (let i = 0; i < 65536; i++) if (isNaN32(back[i])) back[i] = 0x7fc00000;
    expect(sha256(bytesOf(back)), 'every f16 code to f32').toBe(cases.dense.all_f16_to_f32_sha256);
  });
});
