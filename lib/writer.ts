// SPDX-License-Identifier: MIT
/**
 * Writing safetensors: the reference layout (tensors by dtype descending, then name; compact header JSON with
 * `__metadata__` first, padded with spaces to a multiple of 8 bytes), atomic files, streaming from a plan,
 * and sharded output with an index.
 * @module
 */
import * as path from 'node:path';
import { DType, dtypeInfo } from './dtype';
import { invalidArgType, outOfRange, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { AtomicFile } from './atomic';
import { checkAttached, pinBuffers, Tensor } from './tensor';
import type { MetadataValue } from './file';
import { GGML_BLOCKS, GGML_TYPES, GgmlType, QuantizedTensor } from './quantized';
import { buildGgufHeader, ggmlTypeOfDType, ggufAlignment, ggufByteLength, toGgufKVs } from './gguf';
import { checkInteger, checkObject, checkOneOf, checkOptions, checkShape, checkSignal, checkString } from './validate';

/** One tensor of a {@link createWriter} plan. */
export interface PlanEntry {
  /** Tensor name (any well-formed string except `__metadata__`; at most 63 bytes in GGUF). */
  name: string;
  /** Element type of a plain tensor. */
  dtype?: DType;
  /** GGUF only: a ggml block type (`'q4_0'`...) for a {@link QuantizedTensor}; `dtype` is then omitted. */
  ggmlType?: GgmlType;
  /** Dimensions, outermost first (the logical shape for quantized tensors). */
  shape: readonly number[];
}

/** Options of {@link createWriter}. */
export interface WriterOptions {
  /** The tensors the file will hold. They may then be written in any order. */
  plan: readonly PlanEntry[];
  /** safetensors: the `__metadata__` string map. GGUF: key/values (types inferred unless `metadataTypes`). */
  metadata?: Readonly<Record<string, MetadataValue>>;
  /** GGUF only: explicit value types by key (`'u32'`, `'f32'`, `'array<string>'`...). */
  metadataTypes?: Readonly<Record<string, string>>;
  /** `'safetensors'` (default) or `'gguf'` (v3, ggml's sequential aligned layout, tensors in plan order). */
  format?: 'safetensors' | 'gguf';
  /**
   * safetensors only: split into shards of at most this many data bytes (a tensor larger than that gets a shard of its own):
   * `<stem>-00001-of-0000N.safetensors` plus `<stem>.safetensors.index.json` next to `path`. With one shard,
   * `path` itself is written.
   */
  shardSize?: number;
}

/** Options of {@link save}. */
export interface SaveOptions {
  /** Metadata (see {@link WriterOptions.metadata}). */
  metadata?: Readonly<Record<string, MetadataValue>>;
  /** GGUF only: explicit metadata value types. */
  metadataTypes?: Readonly<Record<string, string>>;
  /** `'safetensors'` (default) or `'gguf'`. */
  format?: 'safetensors' | 'gguf';
  /** Split into shards of at most this many data bytes (see {@link WriterOptions.shardSize}). */
  shardSize?: number;
  /** Cancels the save: nothing is left at the destination. */
  signal?: AbortSignal;
}

interface Placed {
  name: string;
  dtype?: DType;
  ggmlType?: GgmlType;
  shape: number[];
  byteLength: number;
  shard: number;
  offset: number;  // absolute file offset
  written: number;
}

interface ShardPlan {
  path: string;
  entries: Placed[];
  header: Buffer;
  dataBytes: number;
  /** Zero padding to write at close (GGUF: after each tensor, up to the alignment). */
  padding: { offset: number; length: number }[];
  file?: AtomicFile;
}

const utf8Compare = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** Orders entries as the reference writer does: dtype descending (safetensors enum order), then name bytes. */
export function referenceOrder<T extends { name: string; dtype: DType }>(entries: readonly T[]): T[] {
  if (!Array.isArray(entries)) throw invalidArgType('The "entries" argument must be an array of { name, dtype }');
  entries.forEach((e, i) => {
    if (typeof e?.name !== 'string') throw invalidArgType(`The "entries[${i}].name" argument must be a string`);
    if (!dtypeInfo(e.dtype)) throw invalidArgType(`The "entries[${i}].dtype" argument must be a dtype name. Received ${String(e.dtype)}`);
  });
  return [...entries].sort((a, b) => dtypeInfo(b.dtype)!.stRank - dtypeInfo(a.dtype)!.stRank || utf8Compare(a.name, b.name));
}

/** Header bytes for entries already in layout order with data offsets relative to the data buffer. */
function buildHeader(entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[],
  metadata: Record<string, MetadataValue> | undefined): Buffer {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const md = Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v as string)}`);
    parts.push(`"__metadata__":{${md.join(',')}}`);
  }
  for (const e of entries) {
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${dtypeInfo(e.dtype)!.stName}","shape":[${e.shape.join(',')}],"data_offsets":[${e.begin},${e.end}]}`);
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

function checkMetadata(md: unknown, gguf: boolean): Record<string, MetadataValue> | undefined {
  if (md === undefined) return undefined;
  checkObject(md, 'options.metadata');
  if (gguf) return md as Record<string, MetadataValue>;
  for (const [k, v] of Object.entries(md)) {
    if (typeof v !== 'string') throw invalidArgType(`The "options.metadata.${k}" value must be a string`);
    if (!k.isWellFormed() || !v.isWellFormed()) throw outOfRange(`metadata key '${k}' or its value is not well-formed Unicode`);
  }
  return md as Record<string, MetadataValue>;
}

function checkName(name: unknown, where: string): string {
  checkString(name, where);
  if (name === '__metadata__') throw outOfRange(`'__metadata__' is reserved and cannot name a tensor`);
  if (!name.isWellFormed()) throw outOfRange(`tensor name '${name}' is not well-formed Unicode (lone surrogate)`);
  return name;
}

function shardPaths(p: string, n: number): { shards: string[]; index?: string } {
  if (n === 1) return { shards: [p] };
  const dir = path.dirname(p);
  const stem = path.basename(p).replace(/\.safetensors$/, '');
  const w = Math.max(5, String(n).length);
  const pad = (i: number) => String(i).padStart(w, '0');
  return {
    shards: Array.from({ length: n }, (_, i) => path.join(dir, `${stem}-${pad(i + 1)}-of-${pad(n)}.safetensors`)),
    index: path.join(dir, `${stem}.safetensors.index.json`),
  };
}

/**
 * A streaming writer (safetensors or GGUF) from a plan: the header is written up front, tensors may then arrive in
 * any order (whole, or in sequential byte chunks), and {@link SafetensorsWriter.close} makes the file(s)
 * appear atomically. Memory use is bounded by what the caller passes in, so files larger than RAM stream.
 */
export class WeightWriter {
  /** The path given to {@link createWriter}. */
  readonly path: string;
  /** Files that {@link close} will create (shards, then the index if sharded). */
  readonly files: readonly string[];
  readonly #shards: ShardPlan[];
  readonly #byName = new Map<string, Placed>();
  readonly #indexPath?: string;
  #indexFile?: AtomicFile;
  readonly #metadata?: Record<string, MetadataValue>;
  #state: 'open' | 'closed' | 'aborted' = 'open';

  /** @internal */
  constructor(p: string, options: WriterOptions) {
    this.path = p;
    const opts = checkOptions<WriterOptions>(options, 'options', ['plan', 'metadata', 'metadataTypes', 'format', 'shardSize']);
    const format = opts.format === undefined ? 'safetensors' : checkOneOf(opts.format, 'options.format', ['safetensors', 'gguf'] as const);
    const gguf = format === 'gguf';
    this.#metadata = checkMetadata(opts.metadata, gguf);
    if (opts.metadataTypes !== undefined) {
      checkObject(opts.metadataTypes, 'options.metadataTypes');
      if (!gguf) throw invalidArgType('The "options.metadataTypes" option applies to GGUF only');
    }
    if (!Array.isArray(opts.plan)) throw invalidArgType('The "options.plan" argument must be an array of { name, dtype, shape }');
    if (gguf && opts.shardSize !== undefined) throw new WeightsmithError('ERR_CONFIG', 'sharded GGUF output is not supported; omit shardSize');
    const shardSize = opts.shardSize === undefined ? Infinity : checkInteger(opts.shardSize, 'options.shardSize', 1);
    const entries = opts.plan.map((e, i) => planEntry(e, i, gguf));
    const seen = new Set<string>();
    for (const e of entries) {
      if (seen.has(e.name)) throw new WeightsmithError('ERR_ST_DUPLICATE_KEY', `tensor '${e.name}' appears twice in the plan`, { tensor: e.name });
      seen.add(e.name);
    }
    const layout = gguf ? layoutGguf(p, entries, this.#metadata, opts.metadataTypes) : layoutSafetensors(p, entries, this.#metadata, shardSize);
    this.#indexPath = layout.index;
    this.#shards = layout.shards;
    for (const s of this.#shards) for (const pl of s.entries) this.#byName.set(pl.name, pl);
    this.files = Object.freeze([...this.#shards.map((s) => s.path), ...(layout.index ? [layout.index] : [])]);
    try {
      for (const s of this.#shards) {
        s.file = AtomicFile.create(s.path);
        s.file.writeSync(s.header, 0);
      }
      // Claimed now, so a destination problem (busy, a folder in the way) shows before any shard is renamed.
      if (layout.index) this.#indexFile = AtomicFile.create(layout.index);
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  #target(name: unknown, data: Uint8Array, byteOffset: number): Placed {
    if (this.#state !== 'open') throw new WeightsmithError('ERR_HANDLE_CLOSED', `the writer for '${this.path}' is ${this.#state}`, { path: this.path });
    checkString(name, 'name');
    if (!(data instanceof Uint8Array)) throw invalidArgType('The "data" argument must be a Uint8Array');
    checkInteger(byteOffset, 'byteOffset');
    const pl = this.#byName.get(name);
    if (!pl) throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `tensor '${name}' is not in the writer's plan`, { path: this.path, tensor: name });
    if (byteOffset !== pl.written)
      throw outOfRange(`tensor '${name}': chunks must be written in order; expected byteOffset ${pl.written}, got ${byteOffset}`);
    if (byteOffset + data.byteLength > pl.byteLength)
      throw outOfRange(`tensor '${name}': ${byteOffset + data.byteLength} bytes exceed its ${pl.byteLength}`);
    return pl;
  }

  /** The raw bytes of `t`, after checking its dtype and shape against the plan entry `name`. @internal */
  tensorBytes(name: string, t: unknown): Uint8Array {
    return this.#checkTensor(name, t);
  }

  #checkTensor(name: string, t: unknown): Uint8Array {
    const pl = this.#byName.get(name);
    if (t instanceof QuantizedTensor) {
      if (t.spec.scheme !== 'ggml') throw fp8NotStorable(name);
      if (pl && pl.ggmlType !== t.spec.type)
        throw new WeightsmithError('ERR_DTYPE', `tensor '${name}' is ${t.spec.type}-quantized but the plan says ${pl.ggmlType ?? pl.dtype}`, { tensor: name });
      if (pl && (t.shape.length !== pl.shape.length || t.shape.some((d, i) => d !== pl.shape[i])))
        throw new WeightsmithError('ERR_SHAPE', `tensor '${name}' has shape [${t.shape.join(', ')}] but the plan says [${pl.shape.join(', ')}]`, { tensor: name });
      const blocks = t.parts.blocks;
      checkAttached(blocks);
      return blocks.bytes();
    }
    if (!(t instanceof Tensor)) throw invalidArgType(`The "tensor" argument for '${name}' must be a Tensor or QuantizedTensor`);
    if (pl) {
      if (pl.ggmlType && !pl.dtype) throw new WeightsmithError('ERR_DTYPE', `tensor '${name}' must be a ${pl.ggmlType} QuantizedTensor`, { tensor: name });
      if (t.dtype !== pl.dtype) throw new WeightsmithError('ERR_DTYPE', `tensor '${name}' is ${t.dtype} but the plan says ${pl.dtype}`, { tensor: name });
      if (t.shape.length !== pl.shape.length || t.shape.some((d, i) => d !== pl.shape[i]))
        throw new WeightsmithError('ERR_SHAPE', `tensor '${name}' has shape [${t.shape.join(', ')}] but the plan says [${pl.shape.join(', ')}]`, { tensor: name });
    }
    checkAttached(t);
    return t.bytes();
  }

  /** Writes a whole tensor (dtype and shape must match the plan). */
  async write(name: string, t: Tensor | QuantizedTensor): Promise<void> {
    await this.writeBytes(name, 0, this.#checkTensor(name, t));
  }

  /** Synchronous twin of {@link write}. */
  writeSync(name: string, t: Tensor | QuantizedTensor): void {
    this.writeBytesSync(name, 0, this.#checkTensor(name, t));
  }

  /** Writes the next chunk of a tensor's raw bytes; chunks of one tensor go in order from byteOffset 0. */
  async writeBytes(name: string, byteOffset: number, data: Uint8Array): Promise<void> {
    const pl = this.#target(name, data, byteOffset);
    pl.written += data.byteLength;  // reserve before awaiting, so a concurrent call sees the new offset
    const release = pinBuffers([data.buffer]);
    try {
      await this.#shards[pl.shard].file!.write(data, pl.offset + byteOffset);
    } catch (err) {
      this.abort();
      throw err;
    } finally {
      release();
    }
  }

  /** Synchronous twin of {@link writeBytes}. */
  writeBytesSync(name: string, byteOffset: number, data: Uint8Array): void {
    const pl = this.#target(name, data, byteOffset);
    try {
      this.#shards[pl.shard].file!.writeSync(data, pl.offset + byteOffset);
    } catch (err) {
      this.abort();
      throw err;
    }
    pl.written += data.byteLength;
  }

  #checkComplete(): void {
    if (this.#state !== 'open') throw new WeightsmithError('ERR_HANDLE_CLOSED', `the writer for '${this.path}' is ${this.#state}`, { path: this.path });
    for (const pl of this.#byName.values()) {
      if (pl.written !== pl.byteLength) {
        this.abort();
        throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `tensor '${pl.name}' was planned but ${pl.written === 0 ? 'never written' : `only ${pl.written} of ${pl.byteLength} bytes were written`}; nothing was saved`, { path: this.path, tensor: pl.name });
      }
    }
  }

  #indexJson(): Buffer {
    const weightMap: Record<string, string> = {};
    const names = [...this.#byName.keys()].sort(utf8Compare);
    for (const n of names) weightMap[n] = path.basename(this.#shards[this.#byName.get(n)!.shard].path);
    const total = this.#shards.reduce((a, s) => a + s.dataBytes, 0);
    return Buffer.from(`${JSON.stringify({ metadata: { ...(this.#metadata ?? {}), total_size: total }, weight_map: weightMap }, null, 2)}\n`);
  }

  /**
   * Checks every planned tensor was fully written, then commits the file(s) (the index last). Each file
   * appears atomically; with several shards, a failure between two renames can leave the shards renamed so
   * far, but never an index that points at missing or partial shards.
   */
  async close(): Promise<void> {
    this.#checkComplete();
    try {
      this.#writePadding();
      for (const s of this.#shards) await s.file!.commit();
      this.#writeIndex();
    } catch (err) {
      this.abort();
      throw err;
    }
    this.#state = 'closed';
  }

  /** Synchronous twin of {@link close}. */
  closeSync(): void {
    this.#checkComplete();
    try {
      this.#writePadding();
      for (const s of this.#shards) s.file!.commitSync();
      this.#writeIndex();
    } catch (err) {
      this.abort();
      throw err;
    }
    this.#state = 'closed';
  }

  #writePadding(): void {
    for (const s of this.#shards) for (const pad of s.padding) s.file!.writeSync(new Uint8Array(pad.length), pad.offset);
  }

  /** Writes the index of a sharded output (small: written synchronously by both close forms). */
  #writeIndex(): void {
    if (!this.#indexFile) return;
    this.#indexFile.writeSync(this.#indexJson(), 0);
    this.#indexFile.commitSync();
  }

  /** Discards everything written: temp files are removed, no destination file is created or changed. */
  abort(): void {
    if (this.#state === 'closed') return;
    this.#state = 'aborted';
    for (const s of this.#shards ?? []) s.file?.abort();
    this.#indexFile?.abort();
  }
}

interface Sized {
  name: string;
  dtype?: DType;
  ggmlType?: GgmlType;
  shape: number[];
  byteLength: number;
}

function planEntry(e: unknown, i: number, gguf: boolean): Sized {
  checkObject(e, `options.plan[${i}]`);
  const pe = e as Partial<PlanEntry>;
  const name = checkName(pe.name, `options.plan[${i}].name`);
  const shape = checkShape(pe.shape, `options.plan[${i}].shape`);
  const numel = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(numel)) throw outOfRange(`options.plan[${i}]: shape has more than 2^53 - 1 elements`);
  if (pe.ggmlType !== undefined) {
    if (!gguf) throw new WeightsmithError('ERR_CONFIG', `tensor '${name}': ggml-quantized tensors are written to GGUF (format: 'gguf')`, { tensor: name });
    if (typeof pe.ggmlType !== 'string' || !(pe.ggmlType in GGML_TYPES)) throw invalidArgType(`The "options.plan[${i}].ggmlType" argument must be a ggml type name`);
    if (!GGML_BLOCKS[pe.ggmlType]) throw new WeightsmithError('ERR_DTYPE', `tensor '${name}': ggml type ${pe.ggmlType} is not a block type weightsmith writes`, { tensor: name });
    return { name, ggmlType: pe.ggmlType, shape, byteLength: ggufByteLength(name, pe.ggmlType, shape) };
  }
  if (typeof pe.dtype !== 'string') throw invalidArgType(`The "options.plan[${i}].dtype" argument must be a dtype name string`);
  if (!dtypeInfo(pe.dtype)) throw new WeightsmithError('ERR_DTYPE', `options.plan[${i}]: unknown dtype '${String(pe.dtype)}'`, { tensor: name });
  const dtype = pe.dtype;
  if (gguf) {
    const g = ggmlTypeOfDType(dtype);
    if (!g) throw new WeightsmithError('ERR_DTYPE', `tensor '${name}': GGUF has no ${dtype} type (it stores f32, f16, bf16, f64, i8, i16, i32, i64)`, { tensor: name });
    return { name, dtype, ggmlType: g, shape, byteLength: ggufByteLength(name, g, shape) };
  }
  const bits = numel * dtypeInfo(dtype)!.bits;
  if (bits % 8 !== 0) throw new WeightsmithError('ERR_SHAPE', `tensor '${name}': ${numel} elements of ${dtype} do not fill whole bytes`, { tensor: name });
  return { name, dtype, shape, byteLength: bits / 8 };
}

function layoutSafetensors(p: string, entries: Sized[], metadata: Record<string, MetadataValue> | undefined, shardSize: number): { shards: ShardPlan[]; index?: string } {
  const ordered = referenceOrder(entries as (Sized & { dtype: DType })[]);
  const groups: (typeof ordered)[] = [[]];
  let bytes = 0;
  for (const e of ordered) {
    const cur = groups[groups.length - 1];
    if (cur.length > 0 && bytes + e.byteLength > shardSize) {
      groups.push([]);
      bytes = 0;
    }
    groups[groups.length - 1].push(e);
    bytes += e.byteLength;
  }
  const { shards, index } = shardPaths(p, groups.length);
  return {
    index,
    shards: groups.map((g, si) => {
      let off = 0;
      const rel = g.map((e) => {
        const r = { ...e, begin: off, end: off + e.byteLength };
        off += e.byteLength;
        return r;
      });
      const header = buildHeader(rel, metadata);
      const placed = rel.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, byteLength: e.byteLength, shard: si, offset: header.length + e.begin, written: 0 }));
      return { path: shards[si], entries: placed, header, dataBytes: off, padding: [] };
    }),
  };
}

function layoutGguf(p: string, entries: Sized[], metadata: Record<string, MetadataValue> | undefined,
  types: Readonly<Record<string, string>> | undefined): { shards: ShardPlan[]; index?: string } {
  const kvs = toGgufKVs(metadata, types);
  const alignment = ggufAlignment(kvs);
  const tensors = entries.map((e) => ({ name: e.name, ggmlType: e.ggmlType!, shape: e.shape, byteLength: e.byteLength }));
  const { header, offsets, dataBytes } = buildGgufHeader(kvs, tensors, alignment);
  const placed = entries.map((e, i) => ({ ...e, shard: 0, offset: header.length + offsets[i], written: 0 }));
  const padding = entries
    .map((e, i) => ({ offset: header.length + offsets[i] + e.byteLength, length: (alignment - (e.byteLength % alignment)) % alignment }))
    .filter((pad) => pad.length > 0);
  return { shards: [{ path: p, entries: placed, header, dataBytes, padding }] };
}

/** Creates a streaming writer for `path` from a plan (safetensors or GGUF). See {@link WeightWriter}. */
export function createWriter(p: string, options: WriterOptions): WeightWriter {
  checkString(p, 'path');
  checkObject(options, 'options');
  return new WeightWriter(p, options);
}

const SAVE_CHUNK = 64 << 20;

/** FP8 QuantizedTensors are saved through their parts until the compressed-tensors layout lands. */
function fp8NotStorable(name: string): WeightsmithError {
  return new WeightsmithError('ERR_CONFIG', `tensor '${name}': save an fp8 QuantizedTensor through its parts (e.g. '${name}' = parts.weight, '${name}_scale' = parts.weight_scale)`, { tensor: name });
}

function planOf(tensors: unknown): { plan: PlanEntry[]; values: [string, Tensor | QuantizedTensor][] } {
  checkObject(tensors, 'tensors');
  const values = Object.entries(tensors) as [string, unknown][];
  for (const [name, t] of values) {
    if (!(t instanceof Tensor) && !(t instanceof QuantizedTensor)) throw invalidArgType(`The "tensors.${name}" value must be a Tensor or QuantizedTensor`);
  }
  const typed = values as [string, Tensor | QuantizedTensor][];
  const plan = typed.map(([name, t]): PlanEntry => {
    if (!(t instanceof QuantizedTensor)) return { name, dtype: t.dtype, shape: t.shape };
    if (t.spec.scheme !== 'ggml') throw fp8NotStorable(name);
    return { name, ggmlType: t.spec.type, shape: t.shape };
  });
  return { plan, values: typed };
}

/**
 * Saves tensors to `path`, atomically: on any failure or abort the destination is untouched and no temp file
 * is left. safetensors (default): the reference layout; with `shardSize`, shards plus an index. GGUF
 * (`format: 'gguf'`): v3 with ggml's sequential aligned layout, in the order given; QuantizedTensors of ggml
 * block types are stored as such.
 */
export function save(p: string, tensors: Record<string, Tensor | QuantizedTensor>, options?: SaveOptions): Promise<void> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, save);
  return withCallerStack((async () => {
    checkString(p, 'path');
    const opts = checkOptions<SaveOptions>(options, 'options', ['metadata', 'metadataTypes', 'format', 'shardSize', 'signal']);
    const signal = checkSignal(opts.signal);
    const { plan, values } = planOf(tensors);
    throwIfAborted(signal);
    const w = createWriter(p, { plan, metadata: opts.metadata, metadataTypes: opts.metadataTypes, format: opts.format, shardSize: opts.shardSize });
    try {
      // In bounded chunks, so an abort takes effect within one chunk even for a huge tensor.
      for (const [name, t] of values) {
        for (let off = 0; ; off += SAVE_CHUNK) {
          throwIfAborted(signal);
          const bytes = w.tensorBytes(name, t);  // re-checked per chunk: the source file may close meanwhile
          await w.writeBytes(name, off, bytes.subarray(off, off + SAVE_CHUNK));
          if (off + SAVE_CHUNK >= bytes.byteLength) break;
        }
      }
      throwIfAborted(signal);
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    }
  })(), caller);
}

/** Synchronous twin of {@link save}. */
export function saveSync(p: string, tensors: Record<string, Tensor | QuantizedTensor>, options?: Omit<SaveOptions, 'signal'>): void {
  checkString(p, 'path');
  const opts = checkOptions<SaveOptions>(options, 'options', ['metadata', 'metadataTypes', 'format', 'shardSize']);
  const { plan, values } = planOf(tensors);
  const w = createWriter(p, { plan, metadata: opts.metadata, metadataTypes: opts.metadataTypes, format: opts.format, shardSize: opts.shardSize });
  try {
    for (const [name, t] of values) w.writeSync(name, t);
    w.closeSync();
  } catch (err) {
    w.abort();
    throw err;
  }
}

/** The former name of {@link WeightWriter} (it wrote only safetensors then). */
export const SafetensorsWriter = WeightWriter;
/** The former name of {@link WeightWriter}. */
export type SafetensorsWriter = WeightWriter;
