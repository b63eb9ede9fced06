// SPDX-License-Identifier: MIT
/**
 * The dtype table, mirroring native/include/weightsmith/dtype.h (a test compares the two).
 * @module
 */

/** Element types with arithmetic (conversion) support. */
export type ArithDType =
  | 'f64' | 'f32' | 'f16' | 'bf16' | 'f8_e4m3' | 'f8_e5m2'
  | 'i64' | 'i32' | 'i16' | 'i8' | 'u64' | 'u32' | 'u16' | 'u8' | 'bool';

/** Element types read and written as stored bytes only (no conversion, no arithmetic). */
export type PassThroughDType = 'f8_e8m0' | 'f8_e4m3fnuz' | 'f8_e5m2fnuz' | 'f6_e2m3' | 'f6_e3m2' | 'f4' | 'c64';

/** Every dtype weightsmith reads and writes. */
export type DType = ArithDType | PassThroughDType;

/** The TypedArray that holds a tensor's elements (f16/bf16 as Uint16Array bit patterns, fp8 and bool as Uint8Array). */
export type TypedArray =
  | Float64Array | Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

type TypedArrayCtor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

/** One row of the dtype table. */
export interface DTypeInfo {
  /** Our name, e.g. `'bf16'`. */
  readonly name: DType;
  /** The safetensors header name, e.g. `'BF16'`. */
  readonly stName: string;
  /** Storage bits per element (4 and 6 for sub-byte types). */
  readonly bits: number;
  /** Position in the safetensors Dtype enum; the reference writer orders tensors by it, descending. */
  readonly stRank: number;
  /** Whether conversions are supported. */
  readonly arith: boolean;
  /** The TypedArray class holding the data. */
  readonly array: TypedArrayCtor;
  /** Elements of `array` per tensor element (2 for c64 as interleaved f32 pairs), 0 for sub-byte packing. */
  readonly lanes: number;
  /** Floating-point type (convertible with rounding). */
  readonly float: boolean;
}

const row = (name: DType, stName: string, bits: number, stRank: number, arith: boolean, array: TypedArrayCtor,
  lanes: number, float: boolean): DTypeInfo => ({ name, stName, bits, stRank, arith, array, lanes, float });

/** The table, in the native enum's order. */
export const DTYPES: readonly DTypeInfo[] = Object.freeze([
  row('f64', 'F64', 64, 19, true, Float64Array, 1, true),
  row('f32', 'F32', 32, 17, true, Float32Array, 1, true),
  row('f16', 'F16', 16, 13, true, Uint16Array, 1, true),
  row('bf16', 'BF16', 16, 14, true, Uint16Array, 1, true),
  row('f8_e4m3', 'F8_E4M3', 8, 7, true, Uint8Array, 1, true),
  row('f8_e5m2', 'F8_E5M2', 8, 6, true, Uint8Array, 1, true),
  row('i64', 'I64', 64, 20, true, BigInt64Array, 1, false),
  row('i32', 'I32', 32, 15, true, Int32Array, 1, false),
  row('i16', 'I16', 16, 11, true, Int16Array, 1, false),
  row('i8', 'I8', 8, 5, true, Int8Array, 1, false),
  row('u64', 'U64', 64, 21, true, BigUint64Array, 1, false),
  row('u32', 'U32', 32, 16, true, Uint32Array, 1, false),
  row('u16', 'U16', 16, 12, true, Uint16Array, 1, false),
  row('u8', 'U8', 8, 4, true, Uint8Array, 1, false),
  row('bool', 'BOOL', 8, 0, true, Uint8Array, 1, false),
  row('f8_e8m0', 'F8_E8M0', 8, 8, false, Uint8Array, 1, false),
  row('f8_e4m3fnuz', 'F8_E4M3FNUZ', 8, 9, false, Uint8Array, 1, false),
  row('f8_e5m2fnuz', 'F8_E5M2FNUZ', 8, 10, false, Uint8Array, 1, false),
  row('f6_e2m3', 'F6_E2M3', 6, 2, false, Uint8Array, 0, false),
  row('f6_e3m2', 'F6_E3M2', 6, 3, false, Uint8Array, 0, false),
  row('f4', 'F4', 4, 1, false, Uint8Array, 0, false),
  row('c64', 'C64', 64, 18, false, Float32Array, 2, false),
]);

const BY_NAME = new Map<string, DTypeInfo>(DTYPES.map((d) => [d.name, d]));
const BY_ST_NAME = new Map<string, DTypeInfo>(DTYPES.map((d) => [d.stName, d]));

/** All dtype names. */
export const DTYPE_NAMES: readonly DType[] = Object.freeze(DTYPES.map((d) => d.name));

/** Table row for a dtype name, or undefined. */
export function dtypeInfo(name: string): DTypeInfo | undefined {
  return BY_NAME.get(name);
}

/** Table row for a safetensors dtype name ("F32"), or undefined. */
export function dtypeFromSafetensors(stName: string): DTypeInfo | undefined {
  return BY_ST_NAME.get(stName);
}

/** Whether `name` is a dtype weightsmith knows. */
export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && BY_NAME.has(name);
}

/** Bytes taken by `numel` elements of a dtype (rounded up for sub-byte types). */
export function byteLengthOf(dtype: DType, numel: number): number {
  const info = BY_NAME.get(dtype);
  if (!info) {
    const err = new TypeError(`unknown dtype '${String(dtype)}'`);
    Object.defineProperty(err, 'code', { value: 'ERR_INVALID_ARG_TYPE', enumerable: true });
    throw err;
  }
  if (!Number.isSafeInteger(numel) || numel < 0) {
    const err = new RangeError(`The "numel" argument must be a non-negative safe integer. Received ${numel}`);
    Object.defineProperty(err, 'code', { value: 'ERR_OUT_OF_RANGE', enumerable: true });
    throw err;
  }
  return Math.ceil((numel * info.bits) / 8);
}
