// SPDX-License-Identifier: MIT
/**
 * Opening weight files: a safetensors file, a sharded checkpoint (index JSON or a folder), by mmap or pread.
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DType, DTYPES, dtypeInfo } from './dtype';
import { invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, NativeFile } from './native';
import { OWNER, Tensor, whenIdle } from './tensor';
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

/** What {@link WeightFile.info} tells about one tensor without reading it. */
export interface TensorInfo {
  /** Element type. */
  dtype: DType;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Bytes of data in the file. */
  byteLength: number;
}

interface Entry {
  shard: number;
  index: number;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
  /** Absolute file offset of the data (8 + header size + begin). */
  fileOffset: number;
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
  readonly format: 'safetensors' = 'safetensors';
  /** The path given to {@link open}. */
  readonly path: string;
  /** The shard files, in order (one entry for a single file). */
  readonly files: readonly string[];
  /** The `__metadata__` string map (of the first shard for sharded checkpoints). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly #shards: Shard[];
  readonly #entries: Map<string, Entry>;
  readonly #cache = new Map<string, Tensor>();
  #closed = false;

  /** @internal */
  constructor(p: string, shards: Shard[], metadata: Record<string, string>, entries: Map<string, Entry>) {
    this.path = p;
    this.#shards = shards;
    this.files = Object.freeze(shards.map((s) => s.path));
    this.metadata = Object.freeze({ ...metadata });
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
    return { dtype: e.dtype, shape: [...e.shape], byteLength: e.end - e.begin };
  }

  /**
   * The tensor of this name: a zero-copy view of the mapped file (cached: every call returns the same
   * Tensor over the same ArrayBuffer), or a copy in pread mode and for data not aligned to its element size.
   * Throws `ERR_TENSOR_NOT_FOUND`, `ERR_HANDLE_CLOSED`, or `ERR_FILE_CHANGED` when the file changed on disk.
   */
  get(name: string): Tensor {
    const e = this.#entry(name);
    const shard = this.#shards[e.shard];
    shard.handle.check();
    const cached = this.#cache.get(name);
    if (cached) return cached;
    const info = dtypeInfo(e.dtype)!;
    const len = e.end - e.begin;
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
    const t = new Tensor(e.dtype, e.shape, data, zeroCopy ? shard.handle : undefined);
    this.#cache.set(name, t);
    return t;
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
  return { files: [p] };
}

function buildFile(p: string, resolved: Resolved, handles: NativeFile[]): WeightFile {
  const shards: Shard[] = [];
  const entries = new Map<string, Entry>();
  let metadata: Record<string, string> = {};
  try {
    handles.forEach((handle, si) => {
      const info = handle.info();
      const file = resolved.files[si];
      shards.push({ path: file, handle, mapped: info.mapped });
      if (si === 0 && info.metadata) metadata = Object.fromEntries(info.metadata);
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
        const begin = table.offsets[2 * index];
        const end = table.offsets[2 * index + 1];
        entries.set(name, { shard: si, index, dtype: DTYPES[table.dtypes[index]].name, shape, begin, end, fileOffset: 8 + info.headerSize + begin });
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
  return new WeightFile(p, shards, metadata, entries);
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
        handles.push(await native.openFile(path.resolve(f), io, maxTensors, maxRank));
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
    for (const f of resolved.files) handles.push(native.openFileSync(path.resolve(f), io, maxTensors, maxRank));
  } catch (err) {
    for (const h of handles) h.close();
    throw err;
  }
  return buildFile(p, resolved, handles);
}
