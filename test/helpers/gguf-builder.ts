// SPDX-License-Identifier: MIT
/**
 * A small GGUF v3 writer for tests (FORMATS.md b2), written independently of lib/ and native/. It lays out
 * well-formed files by default (little-endian header, KVs, tensor infos, data section aligned to
 * `general.alignment` or 32, each tensor at the running sum of the padded sizes, each padded), and every part
 * can be overridden with arbitrary bytes or values to produce the malformed files of BAD-INPUTS.md section B.
 */

/** GGUF metadata value type ids. */
export const VT = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type ScalarType = Exclude<keyof typeof VT, 'array'>;

/** ggml tensor type ids with their block size and bytes per block (FORMATS.md b2/b3: ggml's ggml.h, ggml-common.h). */
export const GGML: Record<string, { id: number; block: number; size: number }> = {
  f32: { id: 0, block: 1, size: 4 },
  f16: { id: 1, block: 1, size: 2 },
  q4_0: { id: 2, block: 32, size: 18 },
  q4_1: { id: 3, block: 32, size: 20 },
  q5_0: { id: 6, block: 32, size: 22 },
  q5_1: { id: 7, block: 32, size: 24 },
  q8_0: { id: 8, block: 32, size: 34 },
  q4_k: { id: 12, block: 256, size: 144 },
  q5_k: { id: 13, block: 256, size: 176 },
  q6_k: { id: 14, block: 256, size: 210 },
  q2_k: { id: 10, block: 256, size: 84 },
  q3_k: { id: 11, block: 256, size: 110 },
  q8_k: { id: 15, block: 256, size: 292 },
  iq4_nl: { id: 20, block: 32, size: 18 },
  tq1_0: { id: 34, block: 256, size: 54 },
  tq2_0: { id: 35, block: 256, size: 66 },
  mxfp4: { id: 39, block: 32, size: 17 },
  nvfp4: { id: 40, block: 64, size: 36 },
  i8: { id: 24, block: 1, size: 1 },
  i16: { id: 25, block: 1, size: 2 },
  i32: { id: 26, block: 1, size: 4 },
  i64: { id: 27, block: 1, size: 8 },
  f64: { id: 28, block: 1, size: 8 },
  bf16: { id: 30, block: 1, size: 2 },
};

const byId = new Map(Object.values(GGML).map((t) => [t.id, t]));

// ---- primitive encoders (little-endian) ----

export function u8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}
export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
export function i16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16LE(v);
  return b;
}
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
export function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}
export function u64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
  return b;
}
export function i64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(v));
  return b;
}
export function f32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return b;
}
export function f64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return b;
}

/** A gguf_string: u64 length + bytes. `len` overrides the declared length (the bytes stay as given). */
export function gstr(s: string | Uint8Array, len?: number | bigint): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  return Buffer.concat([u64(len ?? bytes.length), bytes]);
}

/** The encoding of one scalar value of a type (no type id). */
export function scalar(type: ScalarType, v: number | bigint | boolean | string): Buffer {
  switch (type) {
    case 'u8': return u8(Number(v));
    case 'i8': return Buffer.from([Number(v) & 0xff]);
    case 'u16': return u16(Number(v));
    case 'i16': return i16(Number(v));
    case 'u32': return u32(Number(v));
    case 'i32': return i32(Number(v));
    case 'f32': return f32(Number(v));
    case 'bool': return u8(v === true ? 1 : v === false ? 0 : Number(v));
    case 'string': return gstr(String(v));
    case 'u64': return u64(v as number | bigint);
    case 'i64': return i64(v as number | bigint);
    case 'f64': return f64(Number(v));
  }
}

/** One metadata KV as bytes: key, type id, value bytes. */
export interface KV {
  key: string | Uint8Array;
  /** Overrides the key's declared length. */
  keyLen?: number | bigint;
  type: number;
  value: Buffer;
}

/** A KV of a scalar (or string) type. */
export function kv(key: string | Uint8Array, type: ScalarType, v: number | bigint | boolean | string): KV {
  return { key, type: VT[type], value: scalar(type, v) };
}

/** A KV holding an array: elem type, count (overridable), elements. */
export function kvArray(key: string | Uint8Array, elem: ScalarType, values: (number | bigint | boolean | string)[],
  opts: { count?: number | bigint; elemId?: number } = {}): KV {
  const body = Buffer.concat(values.map((v) => scalar(elem, v)));
  return { key, type: VT.array, value: Buffer.concat([u32(opts.elemId ?? VT[elem]), u64(opts.count ?? values.length), body]) };
}

/** A KV whose type id and value bytes are given as is. */
export function kvRaw(key: string | Uint8Array, type: number, value: Buffer | number[]): KV {
  return { key, type, value: Buffer.from(value) };
}

function kvBytes(k: KV): Buffer {
  return Buffer.concat([gstr(k.key, k.keyLen), u32(k.type), k.value]);
}

/** One tensor info (and its data). */
export interface TensorSpec {
  name: string | Uint8Array;
  /** Overrides the name's declared length. */
  nameLen?: number | bigint;
  /** ggml order: ne[0] is the contiguous (innermost) dimension. */
  ne: (number | bigint)[];
  /** Overrides n_dims (default ne.length). */
  nDims?: number;
  /** ggml type name of {@link GGML}, or a raw id. */
  type: string | number;
  /** Overrides the data offset (default: the running sum of padded sizes). */
  offset?: number | bigint;
  /** The data (default: zeros of the computed size, when that size is small). */
  data?: Uint8Array;
}

/** What {@link gguf} builds. */
export interface GgufSpec {
  magic?: string | Uint8Array;
  version?: number;
  /** Overrides the declared tensor count. */
  nTensors?: number | bigint;
  /** Overrides the declared KV count. */
  nKv?: number | bigint;
  kvs?: KV[];
  tensors?: TensorSpec[];
  /** Alignment used for the layout (default: a u32 `general.alignment` KV's value, else 32). */
  alignment?: number;
  /** Bytes appended after the data section. */
  trailing?: Uint8Array;
  /** Cut the file to this many bytes. */
  truncate?: number;
  /** Leave out the tensor data (the file ends after the header and its padding). */
  noData?: boolean;
}

/** The byte size of a tensor (BigInt, no overflow), or undefined for an unknown type. */
export function nbytesOf(type: string | number, ne: (number | bigint)[]): bigint | undefined {
  const t = typeof type === 'string' ? GGML[type] : byId.get(type);
  if (!t) return undefined;
  const n = ne.reduce<bigint>((a, d) => a * BigInt(d), 1n);
  return (n / BigInt(t.block)) * BigInt(t.size);
}

const pad = (n: bigint, a: bigint) => (a - (n % a)) % a;

/** Builds a GGUF image. */
export function gguf(spec: GgufSpec = {}): Buffer {
  const kvs = spec.kvs ?? [];
  const tensors = spec.tensors ?? [];
  let alignment = spec.alignment;
  if (alignment === undefined) {
    const a = kvs.find((k) => k.type === VT.u32 && Buffer.from(typeof k.key === 'string' ? Buffer.from(k.key) : k.key).toString() === 'general.alignment');
    alignment = a && a.value.length >= 4 ? a.value.readUInt32LE(0) : 32;
    if (!alignment || alignment & (alignment - 1)) alignment = 32;
  }
  const A = BigInt(alignment);
  const parts: Buffer[] = [];
  const magic = spec.magic ?? 'GGUF';
  parts.push(typeof magic === 'string' ? Buffer.from(magic, 'latin1') : Buffer.from(magic));
  parts.push(u32(spec.version ?? 3));
  parts.push(u64(spec.nTensors ?? tensors.length));
  parts.push(u64(spec.nKv ?? kvs.length));
  for (const k of kvs) parts.push(kvBytes(k));
  let running = 0n;
  const layout: { at: bigint; data?: Uint8Array }[] = [];
  for (const t of tensors) {
    const typeId = typeof t.type === 'string' ? GGML[t.type].id : t.type;
    const size = nbytesOf(t.type, t.ne) ?? 0n;
    const offset = t.offset === undefined ? running : BigInt(t.offset);
    parts.push(gstr(t.name, t.nameLen), u32(t.nDims ?? t.ne.length));
    for (const d of t.ne) parts.push(u64(d));
    parts.push(u32(typeId), u64(offset));
    const data = t.data ?? (size >= 0n && size <= 1n << 24n ? new Uint8Array(Number(size)) : undefined);
    layout.push({ at: offset, data });
    running += size + pad(size, A);
  }
  const header = Buffer.concat(parts);
  const dataStart = BigInt(header.length) + pad(BigInt(header.length), A);
  let end = layout.length > 0 ? dataStart : BigInt(header.length);
  for (const l of layout) {
    if (l.data && l.at + BigInt(l.data.length) <= 1n << 28n) {
      const e = l.at + BigInt(l.data.length);
      if (dataStart + e + pad(e, A) > end) end = dataStart + e + pad(e, A);
    }
  }
  if (spec.noData) end = dataStart;
  const out = Buffer.alloc(Number(end));
  header.copy(out, 0);
  if (!spec.noData) {
    for (const l of layout) {
      if (l.data && l.at + BigInt(l.data.length) <= 1n << 28n) Buffer.from(l.data).copy(out, Number(dataStart + l.at));
    }
  }
  let file = spec.trailing ? Buffer.concat([out, Buffer.from(spec.trailing)]) : out;
  if (spec.truncate !== undefined) file = file.subarray(0, spec.truncate);
  return file;
}

/** The header length of an image built by {@link gguf} without tensors' data (for truncation tests). */
export function headerLength(spec: GgufSpec): number {
  const b = gguf({ ...spec, alignment: 1, noData: true });
  return b.length;
}
