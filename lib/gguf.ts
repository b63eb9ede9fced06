// SPDX-License-Identifier: MIT
/**
 * GGUF v3 writing: metadata typing and the header (FORMATS.md b2). Data is laid out as ggml requires:
 * tensors in plan order, each at the running sum of the aligned sizes before it.
 * @internal
 */
import { DType } from './dtype';
import { invalidArgType, outOfRange, WeightsmithError } from './errors';
import type { MetadataValue } from './file';
import { GGML_BLOCKS, GGML_TYPES, GgmlType } from './quantized';

const TYPE_IDS: Record<string, number> = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 };
const SCALAR_BYTES: Record<string, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8 };
const INT_RANGE: Record<string, [bigint, bigint]> = {
  u8: [0n, 255n], i8: [-128n, 127n], u16: [0n, 65535n], i16: [-32768n, 32767n], u32: [0n, 4294967295n],
  i32: [-2147483648n, 2147483647n], u64: [0n, 2n ** 64n - 1n], i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** The ggml type of a plain dtype in GGUF, or undefined where GGUF has none (u8, bool, fp8...). */
export function ggmlTypeOfDType(dtype: DType): GgmlType | undefined {
  return (['f32', 'f16', 'bf16', 'f64', 'i8', 'i16', 'i32', 'i64'] as const).find((t) => t === dtype);
}

/** The GGUF type a JS metadata value gets when none is given. */
export function inferMetadataType(key: string, v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return v > INT_RANGE.i64[1] ? 'u64' : 'i64';
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 4294967295) return 'u32';
    if (Number.isInteger(v) && v >= -2147483648 && v < 0) return 'i32';
    return 'f32';
  }
  const arrays: [unknown, string][] = [[Uint8Array, 'u8'], [Int8Array, 'i8'], [Uint16Array, 'u16'], [Int16Array, 'i16'], [Uint32Array, 'u32'],
    [Int32Array, 'i32'], [Float32Array, 'f32'], [Float64Array, 'f64'], [BigUint64Array, 'u64'], [BigInt64Array, 'i64']];
  for (const [ctor, t] of arrays) if (v instanceof (ctor as new () => unknown)) return `array<${t}>`;
  if (Array.isArray(v)) {
    if (v.every((e) => typeof e === 'string')) return 'array<string>';
    if (v.every((e) => typeof e === 'boolean')) return 'array<bool>';
    if (v.every((e) => typeof e === 'number' && Number.isInteger(e) && e >= -2147483648 && e <= 2147483647)) return 'array<i32>';
    if (v.every((e) => typeof e === 'number')) return 'array<f32>';
  }
  throw invalidArgType(`metadata '${key}': cannot store a value of type ${typeof v} in GGUF`);
}

class Bytes {
  parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: string, v: unknown, key: string): void {
    const b = Buffer.alloc(SCALAR_BYTES[type]);
    if (type === 'f32' || type === 'f64') {
      if (typeof v !== 'number') throw invalidArgType(`metadata '${key}': ${type} needs a number`);
      if (type === 'f32') b.writeFloatLE(v);
      else b.writeDoubleLE(v);
    } else if (type === 'bool') {
      if (typeof v !== 'boolean') throw invalidArgType(`metadata '${key}': bool needs a boolean`);
      b.writeUInt8(v ? 1 : 0);
    } else {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v))) throw invalidArgType(`metadata '${key}': ${type} needs an integer`);
      const x = BigInt(v);
      const [lo, hi] = INT_RANGE[type];
      if (x < lo || x > hi) throw outOfRange(`metadata '${key}': ${x} is outside the range of ${type}`);
      if (SCALAR_BYTES[type] === 8) (type === 'u64' ? b.writeBigUInt64LE(x) : b.writeBigInt64LE(x));
      else if (type[0] === 'u') b.writeUIntLE(Number(x), 0, SCALAR_BYTES[type]);
      else b.writeIntLE(Number(x), 0, SCALAR_BYTES[type]);
    }
    this.push(b);
  }
  concat(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/** One KV to write: key, GGUF type name (`'u32'`, `'array<f32>'`...) and value. */
export interface GgufKV {
  key: string;
  type: string;
  value: unknown;
}

function checkKey(key: string): void {
  const b = Buffer.from(key, 'utf8');
  if (b.length === 0 || b.length > 65535 || !/^[\x20-\x7e]+$/.test(key))
    throw new WeightsmithError('ERR_GGUF_NAME', `metadata key '${key.slice(0, 80)}' must be 1 to 65,535 printable ASCII bytes`, { key });
}

/** The GGUF alignment the metadata asks for (general.alignment), checked; 32 by default. */
export function ggufAlignment(kvs: readonly GgufKV[]): number {
  const kv = kvs.find((k) => k.key === 'general.alignment');
  if (!kv) return 32;
  const a = kv.value;
  if (kv.type !== 'u32' || typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0 || a % 8 !== 0)
    throw new WeightsmithError('ERR_GGUF_ALIGNMENT', 'general.alignment must be a u32 power of two that is a multiple of 8');
  return a;
}

/** One tensor info to write. */
export interface GgufTensorEntry {
  name: string;
  ggmlType: GgmlType;
  shape: readonly number[];
  byteLength: number;
}

/** Byte size of a tensor stored as a ggml type, checking the row against the block size. */
export function ggufByteLength(name: string, ggmlType: GgmlType, shape: readonly number[]): number {
  if (shape.length > 4) throw new WeightsmithError('ERR_GGUF_SHAPE', `tensor '${name}': GGUF allows at most 4 dimensions, not ${shape.length}`, { tensor: name });
  const numel = shape.reduce((a, b) => a * b, 1);
  const block = GGML_BLOCKS[ggmlType];
  if (block) {
    const row = shape.length ? shape[shape.length - 1] : 1;
    if (row % block.size !== 0)
      throw new WeightsmithError('ERR_SHAPE', `tensor '${name}': rows of ${row} are not a multiple of the ${ggmlType} block size ${block.size}`, { tensor: name });
    return (numel / block.size) * block.bytes;
  }
  const bytes: Partial<Record<GgmlType, number>> = { f32: 4, f16: 2, bf16: 2, f64: 8, i8: 1, i16: 2, i32: 4, i64: 8 };
  if (bytes[ggmlType] === undefined) throw new WeightsmithError('ERR_DTYPE', `tensor '${name}': writing ggml type ${ggmlType} is not supported`, { tensor: name });
  return numel * bytes[ggmlType]!;
}

/**
 * The GGUF header (magic through the padding before the data section) and the data offset of each tensor
 * (relative to the data section).
 */
export function buildGgufHeader(kvs: readonly GgufKV[], tensors: readonly GgufTensorEntry[], alignment: number): { header: Buffer; offsets: number[]; dataBytes: number } {
  const out = new Bytes();
  out.push(Buffer.from('GGUF', 'ascii'));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(kvs.length);
  const seen = new Set<string>();
  for (const kv of kvs) {
    checkKey(kv.key);
    if (seen.has(kv.key)) throw new WeightsmithError('ERR_GGUF_DUPLICATE', `duplicate metadata key '${kv.key}'`, { key: kv.key });
    seen.add(kv.key);
    out.str(kv.key);
    const m = /^array<(\w+)>$/.exec(kv.type);
    if (m) {
      const elem = m[1];
      if (!(elem in TYPE_IDS) || elem === 'array') throw invalidArgType(`metadata '${kv.key}': unknown array element type '${elem}'`);
      const arr = kv.value as ArrayLike<unknown>;
      if (arr === null || typeof arr !== 'object' || typeof arr.length !== 'number') throw invalidArgType(`metadata '${kv.key}': ${kv.type} needs an array`);
      out.u32(TYPE_IDS.array);
      out.u32(TYPE_IDS[elem]);
      out.u64(arr.length);
      for (let i = 0; i < arr.length; i++) {
        if (elem === 'string') {
          if (typeof arr[i] !== 'string') throw invalidArgType(`metadata '${kv.key}'[${i}] must be a string`);
          out.str(arr[i] as string);
        } else {
          out.scalar(elem, arr[i], kv.key);
        }
      }
    } else if (kv.type === 'string') {
      if (typeof kv.value !== 'string') throw invalidArgType(`metadata '${kv.key}': string needs a string`);
      out.u32(TYPE_IDS.string);
      out.str(kv.value);
    } else if (kv.type in SCALAR_BYTES) {
      out.u32(TYPE_IDS[kv.type]);
      out.scalar(kv.type, kv.value, kv.key);
    } else {
      throw invalidArgType(`metadata '${kv.key}': unknown GGUF type '${kv.type}'`);
    }
  }
  const offsets: number[] = [];
  let off = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (Buffer.byteLength(t.name, 'utf8') > 63)
      throw new WeightsmithError('ERR_GGUF_NAME', `tensor name '${t.name}' is longer than 63 bytes (ggml's limit)`, { tensor: t.name });
    if (names.has(t.name)) throw new WeightsmithError('ERR_GGUF_DUPLICATE', `duplicate tensor name '${t.name}'`, { tensor: t.name });
    names.add(t.name);
    out.str(t.name);
    out.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) out.u64(t.shape[d]);  // ggml order: innermost first
    out.u32(GGML_TYPES[t.ggmlType]);
    out.u64(off);
    offsets.push(off);
    off += Math.ceil(t.byteLength / alignment) * alignment;
  }
  const pad = (alignment - (out.length % alignment)) % alignment;
  out.push(Buffer.alloc(pad));
  return { header: out.concat(), offsets, dataBytes: off };
}

/** Metadata and explicit types to KVs: explicit types win, the rest are inferred. */
export function toGgufKVs(metadata: Readonly<Record<string, MetadataValue>> | undefined, types: Readonly<Record<string, string>> | undefined): GgufKV[] {
  return Object.entries(metadata ?? {}).map(([key, value]) => ({ key, value, type: types?.[key] ?? inferMetadataType(key, value) }));
}
