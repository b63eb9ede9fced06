// SPDX-License-Identifier: MIT
/**
 * Opening weight files: a safetensors file, a sharded checkpoint (index JSON or a folder), by mmap or pread.
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DType, DTYPES, dtypeInfo } from './dtype';
import { invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, NativeFile, NativeGgufArray } from './native';
import { OWNER, Tensor, whenIdle } from './tensor';
import { GgmlType, ggmlTypeName, QuantizedTensor } from './quantized';
import { checkInteger, checkOneOf, checkOptions, checkSignal, checkString } from './validate';

/** How a file's bytes are read. */
export type IoMode = 'auto' | 'mmap' | 'pread';

/** Options of {@link open}. */
export interface OpenOptions {
  /**
   * `'mmap'` maps the file (zero-copy views; the file is re-checked before each operation and a change gives
   * `ERR_FILE_CHANGED`). `'pread'` never maps (no SIGBUS on network filesystems; views are copies).
   * `'auto'` (default): mmap, except pread on network and FUSE filesystems.
   */
  io?: IoMode;
  /** Refuse headers declaring more tensors than this (`ERR_LIMIT_EXCEEDED`). Default 1,000,000. */
  maxTensors?: number;
  /** Refuse tensors of more dimensions than this (`ERR_LIMIT_EXCEEDED`). Default 64. */
  maxRank?: number;
  /** Cancels the open. */
  signal?: AbortSignal;
}

/** A metadata value: a safetensors `__metadata__` string, or a GGUF key's value (u64/i64 as bigint; arrays as
 * TypedArrays, `string[]` or `boolean[]`). */
export type MetadataValue =
  | string | number | bigint | boolean | string[] | boolean[]
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array;

/** GGUF value type names (`'u32'`, `'string'`, `'array<f32>'`...); `'string'` for safetensors metadata. */
export type MetadataType = string;

const GGUF_TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];
const GGUF_ARRAY_CTORS: Record<number, new (b: ArrayBuffer) => MetadataValue> = {
  0: Uint8Array, 1: Int8Array, 2: Uint16Array, 3: Int16Array, 4: Uint32Array, 5: Int32Array, 6: Float32Array,
  10: BigUint64Array, 11: BigInt64Array, 12: Float64Array,
};

/** What {@link WeightFile.info} tells about one tensor without reading it. */
export interface TensorInfo {
  /** Element type (`'u8'`, the storage, for ggml block-quantized tensors: see `ggmlType`). */
  dtype: DType;
  /** The ggml type of a GGUF tensor (`'f32'`, `'q4_0'`...). */
  ggmlType?: GgmlType;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Bytes of data in the file. */
  byteLength: number;
}

interface Entry {
  shard: number;
  index: number;
  dtype: DType;
  /** GGUF tensors: the ggml type; `quantized` when it is a block type (no plain dtype). */
  ggmlType?: GgmlType;
  quantized: boolean;
  shape: number[];
  /** Absolute file offset of the data. */
  fileOffset: number;
  byteLength: number;
}

interface Shard {
  path: string;
  handle: NativeFile;
  mapped: boolean;
}

const OPEN_KEYS = ['io', 'maxTensors', 'maxRank', 'signal'];

/**
 * An open weight file or sharded checkpoint. Tensors come back as zero-copy views of the mapping; close it
 * (or use `using`) to release the mapping: views are then detached (byteLength 0), and the mapping itself is
 * unmapped once no view and no running kernel uses it.
 */
export class WeightFile {
  /** The container format. */
  readonly format: 'safetensors' | 'gguf';
  /** The path given to {@link open}. */
  readonly path: string;
  /** The shard files, in order (one entry for a single file). */
  readonly files: readonly string[];
  /**
   * Metadata: the safetensors `__metadata__` string map (of the first shard for sharded checkpoints), or the
   * GGUF key/values in file order. Typed access: {@link getString}, {@link getNumber}, {@link getArray}...
   */
  readonly metadata: Readonly<Record<string, MetadataValue>>;
  /** The type of each metadata value (GGUF type names; `'string'` for safetensors). */
  readonly metadataTypes: Readonly<Record<string, MetadataType>>;
  readonly #shards: Shard[];
  readonly #entries: Map<string, Entry>;
  readonly #cache = new Map<string, Tensor>();
  readonly #quantized = new Map<string, QuantizedTensor>();
  #closed = false;

  /** @internal */
  constructor(p: string, format: 'safetensors' | 'gguf', shards: Shard[], metadata: Record<string, MetadataValue>,
    metadataTypes: Record<string, MetadataType>, entries: Map<string, Entry>) {
    this.path = p;
    this.format = format;
    // Null-prototype maps: keys such as '__proto__' or 'constructor' are ordinary keys.
    this.metadataTypes = Object.freeze(Object.assign(Object.create(null) as Record<string, MetadataType>, metadataTypes));
    this.#shards = shards;
    this.files = Object.freeze(shards.map((s) => s.path));
    this.metadata = Object.freeze(Object.assign(Object.create(null) as Record<string, MetadataValue>, metadata));
    this.#entries = entries;
  }

  /** Whether {@link close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Tensor names, in file (data offset) order, shard by shard. */
  names(): string[] {
    this.#checkOpen();
    return [...this.#entries.keys()];
  }

  /** Whether the file holds a tensor of this name. */
  has(name: string): boolean {
    this.#checkOpen();
    checkString(name, 'name');
    return this.#entries.has(name);
  }

  /** dtype, shape and byte length of a tensor, without reading its data. */
  info(name: string): TensorInfo {
    const e = this.#entry(name);
    const out: TensorInfo = { dtype: e.dtype, shape: [...e.shape], byteLength: e.byteLength };
    if (e.ggmlType) out.ggmlType = e.ggmlType;
    return out;
  }

  /**
   * The tensor of this name: a zero-copy view of the mapped file (cached: every call returns the same
   * object over the same ArrayBuffer), or a copy in pread mode and for data not aligned to its element size.
   * A ggml block-quantized GGUF tensor comes back as a {@link QuantizedTensor} whose `blocks` part is such a
   * view. Throws `ERR_TENSOR_NOT_FOUND`, `ERR_HANDLE_CLOSED`, or `ERR_FILE_CHANGED` when the file changed.
   */
  get(name: string): Tensor | QuantizedTensor {
    const e = this.#entry(name);
    const t = this.#view(name, e);
    if (!e.quantized) return t;
    const cached = this.#quantized.get(name);
    if (cached) return cached;
    const q = new QuantizedTensor({ scheme: 'ggml', type: e.ggmlType! }, e.shape, { blocks: t });
    this.#quantized.set(name, q);
    return q;
  }

  /** Like {@link get}, for a tensor that is not quantized: a ggml block-quantized one gives `ERR_DTYPE`. */
  getTensor(name: string): Tensor {
    const t = this.get(name);
    if (t instanceof QuantizedTensor)
      throw new WeightsmithError('ERR_DTYPE', `tensor '${name}' is ${String(t)}: use get() for its QuantizedTensor`, { path: this.path, tensor: name });
    return t;
  }

  #view(name: string, e: Entry): Tensor {
    const shard = this.#shards[e.shard];
    shard.handle.check();
    const cached = this.#cache.get(name);
    if (cached) return cached;
    const info = dtypeInfo(e.dtype)!;
    const len = e.byteLength;
    const elem = Math.max(1, info.array.BYTES_PER_ELEMENT);
    let buffer: ArrayBuffer;
    let zeroCopy = false;
    if (len > 0 && e.fileOffset % elem !== 0) {
      // Unaligned data (allowed by the format): JS typed arrays need aligned elements, so copy.
      const copy = new Uint8Array(len);
      shard.handle.readInto(e.index, 0, copy);
      buffer = copy.buffer;
    } else {
      [buffer, zeroCopy] = shard.handle.view(e.index);
    }
    const data = new info.array(buffer, 0, len / elem);
    const t = new Tensor(e.dtype, e.quantized ? [len] : e.shape, data, zeroCopy ? shard.handle : undefined);
    this.#cache.set(name, t);
    return t;
  }

  /** The metadata value of `key` as a string; undefined when absent; ERR_GGUF_METADATA_TYPE for another type. */
  getString(key: string): string | undefined {
    return this.#typed(key, (v) => typeof v === 'string', 'a string') as string | undefined;
  }

  /** The metadata value of `key` as a number (GGUF u8..i32, f32, f64). */
  getNumber(key: string): number | undefined {
    return this.#typed(key, (v) => typeof v === 'number', 'a number') as number | undefined;
  }

  /** The metadata value of `key` as a bigint (GGUF u64, i64). */
  getBigInt(key: string): bigint | undefined {
    return this.#typed(key, (v) => typeof v === 'bigint', 'a 64-bit integer') as bigint | undefined;
  }

  /** The metadata value of `key` as a boolean (GGUF bool). */
  getBoolean(key: string): boolean | undefined {
    return this.#typed(key, (v) => typeof v === 'boolean', 'a bool') as boolean | undefined;
  }

  /**
   * The metadata array of `key`; with `elementType` (`'f32'`, `'string'`, `'i32'`...), also checks the element
   * type, so a key holding an array of another type gives ERR_GGUF_METADATA_TYPE instead of reinterpreted bytes.
   */
  getArray(key: string, elementType?: string): Exclude<MetadataValue, string | number | bigint | boolean> | undefined {
    const t = this.metadataTypes[key];
    const v = this.#typed(key, () => t !== undefined && t.startsWith('array<'), 'an array');
    if (v !== undefined && elementType !== undefined && t !== `array<${elementType}>`)
      throw new WeightsmithError('ERR_GGUF_METADATA_TYPE', `metadata '${key}' is ${t}, not array<${elementType}>`, { path: this.path, key });
    return v as Exclude<MetadataValue, string | number | bigint | boolean> | undefined;
  }

  #typed(key: string, ok: (v: MetadataValue) => boolean, what: string): MetadataValue | undefined {
    this.#checkOpen();
    checkString(key, 'key');
    if (!Object.prototype.hasOwnProperty.call(this.metadata, key)) return undefined;
    const v = this.metadata[key];
    if (!ok(v))
      throw new WeightsmithError('ERR_GGUF_METADATA_TYPE', `metadata '${key}' is ${this.metadataTypes[key]}, not ${what}`, { path: this.path, key });
    return v;
  }

  /**
   * Copies `target.byteLength` bytes (or fewer at the end) of a tensor's data starting at `byteOffset` into
   * `target`, without creating a view. Returns the bytes copied. For streaming tensors in chunks.
   */
  readInto(name: string, byteOffset: number, target: ArrayBufferView): number {
    const e = this.#entry(name);
    checkInteger(byteOffset, 'byteOffset');
    if (!ArrayBuffer.isView(target) || target instanceof DataView)
      throw invalidArgType('The "target" argument must be a TypedArray');
    return this.#shards[e.shard].handle.readInto(e.index, byteOffset, target);
  }

  /** Whether the shard holding this tensor is memory-mapped. */
  isMapped(name: string): boolean {
    return this.#shards[this.#entry(name).shard].mapped;
  }

  /**
   * Closes the file: detaches every view handed out (their byteLength becomes 0) and drops this handle's
   * reference to each mapping. A second call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#cache.values()) {
      const buf = t.data.buffer;
      // A buffer an async operation still uses is detached when that operation settles.
      if (buf instanceof ArrayBuffer) whenIdle(buf, () => { if (buf.byteLength > 0) native.detach(buf); });
    }
    this.#cache.clear();
    this.#quantized.clear();
    for (const s of this.#shards) s.handle.close();
  }

  /** Same as {@link close}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new WeightsmithError('ERR_HANDLE_CLOSED', `the weight file '${this.path}' is closed`, { path: this.path });
  }

  #entry(name: string): Entry {
    this.#checkOpen();
    checkString(name, 'name');
    const e = this.#entries.get(name);
    if (!e) throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `no tensor named '${name}' in '${this.path}'`, { path: this.path, tensor: name });
    return e;
  }
}

interface Resolved {
  files: string[];
  /** weight_map of an index, when there is one. */
  weightMap?: Map<string, string>;
}

const INDEX_NAME = 'model.safetensors.index.json';

const MAX_INDEX_BYTES = 100_000_000;

/** Reads a small regular file; FIFOs, devices and oversized files are refused before any read. */
function readRegularFile(p: string, limit: number): string {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new WeightsmithError('ERR_NOT_REGULAR_FILE', `'${p}' is not a regular file`, { path: p });
    if (st.size > limit) throw new WeightsmithError('ERR_LIMIT_EXCEEDED', `'${p}' is larger than ${limit} bytes`, { path: p, limit });
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function readIndex(indexPath: string): Resolved {
  let json: unknown;
  const text = readRegularFile(indexPath, MAX_INDEX_BYTES);
  try {
    json = JSON.parse(text);
  } catch (err) {
    if ((err as { code?: string }).code) throw err;
    throw new WeightsmithError('ERR_CONFIG', `'${indexPath}' is not valid JSON: ${(err as Error).message}`, { path: indexPath });
  }
  const wm = (json as { weight_map?: unknown })?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm))
    throw new WeightsmithError('ERR_CONFIG', `'${indexPath}' has no "weight_map" object`, { path: indexPath });
  const dir = path.dirname(indexPath);
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '' || file.includes('/') || file.includes('\\') || file === '.' || file === '..')
      throw new WeightsmithError('ERR_CONFIG', `'${indexPath}': weight_map entry for '${name}' must be a plain file name in the same folder`, { path: indexPath, tensor: name });
    weightMap.set(name, file);
    const full = path.join(dir, file);
    if (!files.includes(full)) files.push(full);
  }
  files.sort();
  return { files, weightMap };
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function resolvePath(p: string): Resolved {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(p);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) {
    const index = path.join(p, INDEX_NAME);
    if (fs.existsSync(index) || isSymlink(index)) return readIndex(index);
    const files = fs.readdirSync(p).filter((f) => f.endsWith('.safetensors')).sort().map((f) => path.join(p, f));
    if (files.length === 0) throw new WeightsmithError('ERR_CONFIG', `no .safetensors files in the folder '${p}'`, { path: p });
    return { files };
  }
  if (p.endsWith('.json') && st && !st.isDirectory()) return readIndex(p);
  if (p.endsWith('.gguf')) return { files: [p] };
  return { files: [p] };
}

function ggufMetadataValue(typeId: number, v: unknown): [MetadataValue, MetadataType] {
  if (typeId !== 9) return [v as MetadataValue, GGUF_TYPE_NAMES[typeId]];
  const arr = v as NativeGgufArray;
  const elem = GGUF_TYPE_NAMES[arr.elementType];
  if (arr.values) return [arr.values, `array<${elem}>`];
  if (arr.elementType === 7) return [Array.from(new Uint8Array(arr.bytes!), (b) => b !== 0), 'array<bool>'];
  return [new GGUF_ARRAY_CTORS[arr.elementType](arr.bytes!), `array<${elem}>`];
}

function buildFile(p: string, resolved: Resolved, handles: NativeFile[]): WeightFile {
  const shards: Shard[] = [];
  const entries = new Map<string, Entry>();
  const metadata: Record<string, MetadataValue> = Object.create(null);
  const metadataTypes: Record<string, MetadataType> = Object.create(null);
  let format: 'safetensors' | 'gguf' = 'safetensors';
  try {
    handles.forEach((handle, si) => {
      const info = handle.info();
      const file = resolved.files[si];
      shards.push({ path: file, handle, mapped: info.mapped });
      if (si === 0) {
        format = info.format;
        for (const kv of info.metadata ?? []) {
          if (kv.length === 2) {
            metadata[kv[0]] = kv[1];
            metadataTypes[kv[0]] = 'string';
          } else {
            [metadata[kv[0]], metadataTypes[kv[0]]] = ggufMetadataValue(kv[1], kv[2]);
          }
        }
      }
      const table = info.tensors;
      let k = 0;
      for (let index = 0; index < table.names.length; index++) {
        const name = table.names[index];
        const shape = Array.from(table.dims.subarray(k, k + table.ranks[index]));
        k += table.ranks[index];
        if (entries.has(name))
          throw new WeightsmithError('ERR_ST_DUPLICATE_KEY', `tensor '${name}' appears in more than one shard ('${file}')`, { path: file, tensor: name });
        if (resolved.weightMap && resolved.weightMap.get(name) !== path.basename(file)) {
          if (!resolved.weightMap.has(name)) continue;  // a shard may hold tensors the index does not list; skip them
          throw new WeightsmithError('ERR_CONFIG', `the index puts '${name}' in '${resolved.weightMap.get(name)}' but it is in '${path.basename(file)}'`, { path: file, tensor: name });
        }
        const quantized = table.dtypes[index] >= DTYPES.length;
        const ggmlType = table.ggmlTypes[index] === 255 ? undefined : ggmlTypeName(table.ggmlTypes[index]);
        entries.set(name, {
          shard: si, index, shape, quantized, ggmlType,
          dtype: quantized ? 'u8' : DTYPES[table.dtypes[index]].name,
          fileOffset: table.offsets[2 * index], byteLength: table.offsets[2 * index + 1],
        });
      }
    });
    if (resolved.weightMap) {
      for (const [name, file] of resolved.weightMap) {
        if (!entries.has(name))
          throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `the index lists '${name}' in '${file}' but that shard does not hold it`, { path: p, tensor: name });
      }
    }
  } catch (err) {
    for (const h of handles) h.close();
    throw err;
  }
  return new WeightFile(p, format, shards, metadata, metadataTypes, entries);
}

/**
 * Opens natively by absolute path (so a later chdir cannot break the file-change checks) while errors keep
 * naming the path the caller gave.
 */
function withUserPath<T>(p: string, fn: (abs: string) => T): T {
  const abs = path.resolve(p);
  const fix = (err: unknown) => {
    if (err && typeof err === 'object' && (err as { path?: string }).path === abs) (err as { path?: string }).path = p;
    return err;
  };
  try {
    const r = fn(abs);
    if (r instanceof Promise) return r.catch((err) => { throw fix(err); }) as T;
    return r;
  } catch (err) {
    throw fix(err);
  }
}

function readOpenOptions(p: unknown, options: unknown) {
  checkString(p, 'path');
  const o = checkOptions<OpenOptions>(options, 'options', OPEN_KEYS);
  const io = o.io === undefined ? 'auto' : checkOneOf(o.io, 'options.io', ['auto', 'mmap', 'pread'] as const);
  const maxTensors = o.maxTensors === undefined ? undefined : checkInteger(o.maxTensors, 'options.maxTensors', 1);
  const maxRank = o.maxRank === undefined ? undefined : checkInteger(o.maxRank, 'options.maxRank', 0, 1024);
  const signal = checkSignal(o.signal);
  return { p, io, maxTensors, maxRank, signal };
}

/**
 * Opens a weight file: a `.safetensors` file, a `model.safetensors.index.json`, or a folder holding either.
 * Reads and validates only the header (O(header), the tensor data is not read); every malformed input is
 * refused with its `ERR_ST_*` code. Close the result when done.
 */
export function open(p: string, options?: OpenOptions): Promise<WeightFile> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, open);
  return withCallerStack((async () => {
    const { io, maxTensors, maxRank, signal } = readOpenOptions(p, options);
    throwIfAborted(signal);
    const resolved = resolvePath(p);
    const handles: NativeFile[] = [];
    try {
      for (const f of resolved.files) {
        handles.push(await withUserPath(f, (abs) => native.openFile(abs, io, maxTensors, maxRank)));
        throwIfAborted(signal);
      }
    } catch (err) {
      for (const h of handles) h.close();
      throw err;
    }
    return buildFile(p, resolved, handles);
  })(), caller);
}

/** Synchronous twin of {@link open}. */
export function openSync(p: string, options?: Omit<OpenOptions, 'signal'>): WeightFile {
  const { io, maxTensors, maxRank } = readOpenOptions(p, options);
  const resolved = resolvePath(p);
  const handles: NativeFile[] = [];
  try {
    for (const f of resolved.files) handles.push(withUserPath(f, (abs) => native.openFileSync(abs, io, maxTensors, maxRank)));
  } catch (err) {
    for (const h of handles) h.close();
    throw err;
  }
  return buildFile(p, resolved, handles);
}
