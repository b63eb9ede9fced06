// SPDX-License-Identifier: MIT
/**
 * Tensor: a dtype, a shape and a TypedArray of row-major little-endian elements.
 * @module
 */
import { byteLengthOf, DType, dtypeInfo, DTypeInfo, isDType, TypedArray } from './dtype';
import { invalidArgType, outOfRange, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, NativeFile, withAbort } from './native';
import { checkOptions, checkShape, checkSignal } from './validate';

/** Owner of a tensor's memory when it is a view of a mapped file (kept alive by async kernels). @internal */
export const OWNER = Symbol('weightsmith.owner');

// Buffers an async operation is reading or writing right now, with callbacks to run once none is.
// WeightFile.close() defers detaching such a buffer: detaching frees a copied view's memory under a running
// kernel (and drops a mapped view's reference to the mapping).
const inFlight = new Map<ArrayBufferLike, { count: number; idle: (() => void)[] }>();

/** Marks buffers as used by an async operation until the returned release function is called. @internal */
export function pinBuffers(buffers: ArrayBufferLike[]): () => void {
  for (const b of buffers) {
    const e = inFlight.get(b);
    if (e) e.count++;
    else inFlight.set(b, { count: 1, idle: [] });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const b of buffers) {
      const e = inFlight.get(b)!;
      if (--e.count === 0) {
        inFlight.delete(b);
        for (const fn of e.idle) fn();
      }
    }
  };
}

/** Runs fn now, or once no async operation uses the buffer. @internal */
export function whenIdle(buffer: ArrayBufferLike, fn: () => void): void {
  const e = inFlight.get(buffer);
  if (e) e.idle.push(fn);
  else fn();
}

/** Runs an async operation with the tensors' buffers pinned. @internal */
export async function withPinned<T>(tensors: Tensor[], fn: () => Promise<T>): Promise<T> {
  const release = pinBuffers(tensors.map((t) => t.data.buffer));
  try {
    return await fn();
  } finally {
    release();
  }
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n)) throw outOfRange(`The shape [${shape.join(', ')}] has more than 2^53 - 1 elements`);
  return n;
}

/** The number of TypedArray elements holding `numel` tensor elements of a dtype. */
function arrayLength(info: DTypeInfo, numel: number): number {
  return info.lanes === 0 ? Math.ceil((numel * info.bits) / 8) : numel * info.lanes;
}

/**
 * A tensor. `data` holds the elements row-major: `Float32Array` for f32, `Uint16Array` bit patterns for
 * f16/bf16, `Uint8Array` for fp8, bool and sub-byte types, `BigInt64Array` for i64 and so on. Tensors
 * returned by {@link WeightFile.get} are zero-copy views of the file (copy-on-write: writing to `data` never
 * changes the file) and are detached (length 0) once the file is closed.
 */
export class Tensor {
  /** Element type. */
  readonly dtype: DType;
  /** Dimensions, outermost first (PyTorch order). `[]` is a scalar. */
  readonly shape: readonly number[];
  /** The elements. */
  readonly data: TypedArray;
  /** @internal */
  [OWNER]?: NativeFile;

  /**
   * Wraps existing data (no copy). `data` must be the dtype's TypedArray class with exactly the number of
   * elements the shape needs. Prefer {@link tensor} for validation of user input.
   */
  constructor(dtype: DType, shape: readonly number[], data: TypedArray, owner?: NativeFile) {
    const d = checkDType(dtype, 'dtype');
    const s = checkShape(shape);
    const info = dtypeInfo(d)!;
    if (!(data instanceof info.array))
      throw invalidArgType(`dtype ${d} needs its data in a ${info.array.name}. Received ${(data as object)?.constructor?.name ?? typeof data}`);
    const len = arrayLength(info, numelOf(s));
    // A detached view (its file closed) keeps its shape; methods then throw ERR_HANDLE_CLOSED.
    const detached = data.buffer.byteLength === 0;
    if (data.length !== len && !detached)
      throw new WeightsmithError('ERR_SHAPE', `data has ${data.length} elements but shape [${s.join(', ')}] of ${d} needs ${len}`);
    this.dtype = d;
    this.shape = Object.freeze(s);
    this.data = data;
    if (owner) this[OWNER] = owner;
  }

  /** Number of elements (product of the shape). */
  get numel(): number {
    return numelOf(this.shape);
  }

  /** Bytes the elements take. */
  get byteLength(): number {
    return byteLengthOf(this.dtype, this.numel);
  }

  /** The raw little-endian bytes (no copy). */
  bytes(): Uint8Array {
    checkAttached(this);
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.byteLength);
  }

  /**
   * Converts to another dtype (a new tensor; the same tensor data copied when the dtype is unchanged).
   * Round to nearest even; NaN stays NaN (quiet); f16/bf16 overflow to +-Inf; fp8 saturates; float to integer
   * rounds half to even, saturates and maps NaN to 0. Pass-through dtypes convert only to themselves.
   * Runs on the native thread pool on the calling thread; see {@link convert} for the async form.
   */
  to(dtype: DType): Tensor {
    checkConvertible(this, dtype);
    checkAttached(this);
    const out = zeros(this.shape, dtype);
    native.convertSync(this.data, this.dtype, out.data, dtype, this.numel);
    return out;
  }

  /** The same data with another shape of the same element count (no copy). */
  reshape(shape: readonly number[]): Tensor {
    const s = checkShape(shape);
    if (numelOf(s) !== this.numel)
      throw new WeightsmithError('ERR_SHAPE', `cannot reshape [${this.shape.join(', ')}] (${this.numel} elements) to [${s.join(', ')}]`);
    return new Tensor(this.dtype, s, this.data, this[OWNER]);
  }

  /** A short description, e.g. `Tensor<f32>[512, 64]`. */
  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join(', ')}]`;
  }
}

function checkDType(dtype: unknown, name: string): DType {
  if (typeof dtype !== 'string') throw invalidArgType(`The "${name}" argument must be a dtype name string`);
  if (!isDType(dtype)) throw new WeightsmithError('ERR_DTYPE', `unknown dtype '${dtype}'`);
  return dtype;
}

/** @internal */
export function checkConvertible(t: Tensor, dtype: unknown): asserts dtype is DType {
  if (!(t instanceof Tensor)) throw invalidArgType('The "tensor" argument must be a Tensor');
  const d = checkDType(dtype, 'dtype');
  if (d !== t.dtype && (!dtypeInfo(d)!.arith || !dtypeInfo(t.dtype)!.arith))
    throw new WeightsmithError('ERR_DTYPE', `cannot convert ${t.dtype} to ${d}: pass-through dtypes convert only to themselves`);
}

/**
 * Throws ERR_HANDLE_CLOSED for a view of a closed file, and ERR_FILE_CHANGED when the mapped file behind a
 * view changed on disk (reading it could fault). @internal
 */
export function checkAttached(t: Tensor): void {
  if (t.numel > 0 && t.data.byteLength === 0)
    throw new WeightsmithError('ERR_HANDLE_CLOSED', 'the tensor is a view of a closed weight file');
  const owner = t[OWNER];
  if (owner) {
    // A view whose detach is deferred (an async write still reads it) belongs to a closed file all the same.
    if (owner.closed) throw new WeightsmithError('ERR_HANDLE_CLOSED', 'the tensor is a view of a closed weight file');
    owner.check();
  }
}

/**
 * Creates a tensor from data and a shape. `data` may be the dtype's TypedArray (used as is, no copy) or a
 * plain array of numbers (copied; for f16/bf16/fp8 the numbers are converted from f32 values).
 * Default dtype: inferred from the TypedArray (Float32Array: f32, Float64Array: f64, ...), or f32 for arrays.
 */
export function tensor(data: TypedArray | readonly number[] | readonly (number | bigint)[], shape?: readonly number[], dtype?: DType): Tensor {
  let d: DType;
  if (dtype !== undefined) {
    d = checkDType(dtype, 'dtype');
  } else if (Array.isArray(data)) {
    d = 'f32';
  } else {
    const byCtor: [unknown, DType][] = [[Float32Array, 'f32'], [Float64Array, 'f64'], [Int8Array, 'i8'], [Uint8Array, 'u8'],
      [Int16Array, 'i16'], [Uint16Array, 'u16'], [Int32Array, 'i32'], [Uint32Array, 'u32'], [BigInt64Array, 'i64'], [BigUint64Array, 'u64']];
    const hit = byCtor.find(([c]) => data instanceof (c as new () => TypedArray));
    if (!hit) throw invalidArgType('The "data" argument must be a TypedArray or an array of numbers');
    d = hit[1];
  }
  const info = dtypeInfo(d)!;
  const s = checkShape(shape === undefined ? [Array.isArray(data) ? data.length : (data as TypedArray).length / Math.max(info.lanes, 1)] : shape);
  const numel = numelOf(s);
  const len = arrayLength(info, numel);
  if (Array.isArray(data)) {
    if (data.length !== numel) throw new WeightsmithError('ERR_SHAPE', `data has ${data.length} values but shape [${s.join(', ')}] needs ${numel}`);
    if (!info.arith) throw invalidArgType(`dtype ${d} is stored as raw bytes: pass its data as a ${info.array.name}`);
    const arr = allocate(info, len);
    if (arr instanceof BigInt64Array || arr instanceof BigUint64Array) {
      const [lo, hi] = arr instanceof BigInt64Array ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      (data as readonly unknown[]).forEach((v, i) => {
        if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v)))
          throw invalidArgType(`data[${i}] must be a bigint or a safe integer for ${d}. Received ${typeof v === 'number' ? v : typeof v}`);
        const b = BigInt(v);
        if (b < lo || b > hi) throw outOfRange(`data[${i}] = ${b} is outside the range of ${d}`);
        arr[i] = b;
      });
      return new Tensor(d, s, arr);
    }
    // Numbers go through f64 and the native conversion: one rounding to nearest even; integers saturate.
    const f64 = new Float64Array(numel);
    (data as readonly unknown[]).forEach((v, i) => {
      if (typeof v !== 'number') throw invalidArgType(`data[${i}] must be a number. Received type ${typeof v}`);
      f64[i] = v;
    });
    native.convertSync(f64, 'f64', arr, d, numel);
    return new Tensor(d, s, arr);
  }
  if (!(data instanceof info.array))
    throw invalidArgType(`dtype ${d} needs its data in a ${info.array.name}. Received ${(data as object).constructor?.name}`);
  if ((data as TypedArray).length !== len)
    throw new WeightsmithError('ERR_SHAPE', `data has ${(data as TypedArray).length} elements but shape [${s.join(', ')}] of ${d} needs ${len}`);
  return new Tensor(d, s, data as TypedArray);
}

/** A tensor of zeros (all-zero bytes) with the given shape and dtype (default f32). */
export function zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
  const d = checkDType(dtype, 'dtype');
  const s = checkShape(shape);
  const info = dtypeInfo(d)!;
  return new Tensor(d, s, allocate(info, arrayLength(info, numelOf(s))));
}

function allocate(info: DTypeInfo, length: number): TypedArray {
  try {
    return new info.array(length);
  } catch (err) {
    if (err instanceof RangeError)
      throw new WeightsmithError('ERR_OUT_OF_MEMORY', `cannot allocate ${length} ${info.name} elements (${length * info.array.BYTES_PER_ELEMENT} bytes): ${err.message}`);
    throw err;
  }
}

/** Options of {@link convert}. */
export interface ConvertOptions {
  /** Cancels the conversion (rejects with AbortError). */
  signal?: AbortSignal;
}

/**
 * Converts a tensor to another dtype off the main thread, on the native thread pool. Same rules as
 * {@link Tensor.to}; the result is bit-identical for any thread count.
 */
export function convert(t: Tensor, dtype: DType, options?: ConvertOptions): Promise<Tensor> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, convert);
  return withCallerStack((async () => {
    const opts = checkOptions<ConvertOptions>(options, 'options', ['signal']);
    const signal = checkSignal(opts.signal);
    checkConvertible(t, dtype);
    throwIfAborted(signal);
    checkAttached(t);
    const out = zeros(t.shape, dtype);
    const owners = t[OWNER] ? [t[OWNER]] : [];
    // A mapped view's mapping is pinned natively (owners), so close() may detach it at once; a copied view's
    // memory is only safe while the buffer stays attached.
    await withPinned(owners.length ? [out] : [t, out], () => withAbort(signal, (token) => native.convert(t.data, t.dtype, out.data, dtype, t.numel, owners, token)));
    return out;
  })(), caller);
}

/** Synchronous twin of {@link convert} (the same as `t.to(dtype)`). */
export function convertSync(t: Tensor, dtype: DType): Tensor {
  checkConvertible(t, dtype);
  return t.to(dtype);
}

/** The native files whose mappings a tensor's data lives in (to pin them during async work). @internal */
export function ownersOf(t: Tensor): NativeFile[] {
  return t[OWNER] ? [t[OWNER]] : [];
}

/**
 * Converts n elements between raw byte buffers on the thread pool (for streaming code paths).
 * @internal
 */
export async function convertBytes(src: Uint8Array, srcDtype: DType, dst: Uint8Array, dstDtype: DType, n: number,
  signal?: AbortSignal, owners: NativeFile[] = []): Promise<void> {
  throwIfAborted(signal);
  const release = pinBuffers([src.buffer, dst.buffer]);
  try {
    await withAbort(signal, (token) => native.convert(src, srcDtype, dst, dstDtype, n, owners, token));
  } finally {
    release();
  }
}
