// SPDX-License-Identifier: MIT
/**
 * Loads the addon (a prebuild when one matches, else the local build) and hands it the error factory.
 * @internal
 */
import * as path from 'node:path';
import { abortError, makeNativeError } from './errors';

/**
 * The tensor table of one safetensors file, packed: tensor i is `names[i]`, dtype `DTYPES[dtypes[i]]`,
 * shape `dims` from the running sum of `ranks`, data `[offsets[2i], offsets[2i+1])` (relative to the data
 * buffer), in data offset order.
 */
export interface NativeTable {
  names: string[];
  /** Index into DTYPES, or DTYPES.length for ggml block-quantized data. */
  dtypes: Uint8Array;
  /** ggml type id (GGUF files), else 255. */
  ggmlTypes: Uint8Array;
  ranks: Uint32Array;
  dims: Float64Array;
  /** [absolute file offset, byte length] per tensor. */
  offsets: Float64Array;
}

/** A GGUF array value as the addon passes it. */
export interface NativeGgufArray {
  elementType: number;
  values?: string[];
  bytes?: ArrayBuffer;
  count?: number;
}

/** A native open file handle. */
export interface NativeFile {
  info(): {
    format: 'safetensors' | 'gguf';
    headerSize: number;
    fileSize: number;
    mapped: boolean;
    /** safetensors: [key, value]; GGUF: [key, gguf type id, value]. */
    metadata: ([string, string] | [string, number, unknown])[] | null;
    version?: number;
    alignment?: number;
    tensors: NativeTable;
  };
  view(index: number): [ArrayBuffer, boolean];
  readInto(index: number, byteOffset: number, target: ArrayBufferView): number;
  check(): void;
  close(): void;
  readonly closed: boolean;
}

/** A native abort flag. */
export interface NativeAbortToken {
  abort(): void;
}

type Buf = ArrayBufferView | ArrayBuffer;
type FloatBuf = Float32Array | Float64Array;

/** SIMD tiers of the CPU kernels. */
export type SimdTier = 'baseline' | 'avx2' | 'avx512';

/** The addon's exports. */
export interface NativeAddon {
  init(makeError: typeof makeNativeError): void;
  AbortToken: new () => NativeAbortToken;
  openFileSync(path: string, io?: string, maxTensors?: number, maxRank?: number): NativeFile;
  openFile(path: string, io?: string, maxTensors?: number, maxRank?: number): Promise<NativeFile>;
  detach(buffer: ArrayBuffer): void;
  convertSync(src: Buf, srcDtype: string, dst: Buf, dstDtype: string, n: number, backend?: 'ref' | 'auto', singleThread?: boolean): void;
  convert(src: Buf, srcDtype: string, dst: Buf, dstDtype: string, n: number, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  getThreads(): number;
  setThreads(n: number): void;
  cpuInfo(): { avx2: boolean; fma: boolean; f16c: boolean; avx512f: boolean; avx512bw: boolean; simd: SimdTier; simdSupported: SimdTier };
  setSimd(level: SimdTier): void;
  dtypeTable(): { name: string; stName: string; bits: number; stRank: number; arith: boolean }[];
  selfTestF32(target: 'f16' | 'bf16' | 'f8_e4m3' | 'f8_e5m2', start: number, end: number, stride?: number): [number, number];
  selfTestGeneric(stride: number): number;
  memcpyParallel(dst: Buf, src: Buf): void;
  quantizeGgmlSync(x: Float32Array, type: number, out: Uint8Array, n: number, checkFinite: boolean, backend?: 'ref' | 'auto'): void;
  quantizeGgml(x: Float32Array, type: number, out: Uint8Array, n: number, checkFinite: boolean, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  quantizeFp8Sync(x: Buf, weightDtype: string, out: Uint8Array, scales: Buf, rows: number, cols: number, blockRows: number,
    blockCols: number, fp8Dtype: string, owners: NativeFile[], token: NativeAbortToken | null, checkFinite: boolean, backend?: 'ref' | 'auto'): void;
  quantizeFp8(x: Buf, weightDtype: string, out: Uint8Array, scales: Buf, rows: number, cols: number, blockRows: number,
    blockCols: number, fp8Dtype: string, owners: NativeFile[], token: NativeAbortToken | null, checkFinite: boolean): Promise<void>;
  dequantizeFp8Sync(codes: Buf, scales: Buf, weightDtype: string, fp8Dtype: string, rows: number, cols: number, blockRows: number,
    blockCols: number, out: Float32Array): void;
  quantizeIntSync(x: Buf, weightDtype: string, packed: Int32Array | Uint32Array, scales: Buf, zps: Int32Array | Uint32Array | null, rows: number,
    cols: number, bits: number, symmetric: boolean, group: number, wholeTensor: boolean, checkFinite: boolean, backend?: 'ref' | 'auto'): void;
  quantizeInt(x: Buf, weightDtype: string, packed: Int32Array | Uint32Array, scales: Buf, zps: Int32Array | Uint32Array | null, rows: number,
    cols: number, bits: number, symmetric: boolean, group: number, wholeTensor: boolean, checkFinite: boolean, owners: NativeFile[],
    token: NativeAbortToken | null): Promise<void>;
  dequantizeIntSync(packed: Int32Array | Uint32Array, scales: Buf, zps: Int32Array | Uint32Array | null, rows: number, cols: number, bits: number,
    symmetric: boolean, group: number, wholeTensor: boolean, weightDtype: string, out: Buf, outDtype: string): void;
  packIntRows(codes: Int8Array, rows: number, cols: number, bits: number, words: Uint32Array | Int32Array): void;
  unpackIntRows(words: Uint32Array | Int32Array, rows: number, cols: number, bits: number, codes: Int8Array): void;
  bnb4QuantizeSync(type: 'nf4' | 'fp4', x: Buf, dtype: string, n: number, blocksize: number, packed: Uint8Array, absmax: Float32Array,
    checkFinite: boolean, backend?: 'ref' | 'auto'): void;
  bnb4Quantize(type: 'nf4' | 'fp4', x: Buf, dtype: string, n: number, blocksize: number, packed: Uint8Array, absmax: Float32Array,
    checkFinite: boolean, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  bnb4DequantizeSync(type: 'nf4' | 'fp4', packed: Buf, absmax: Float32Array, n: number, blocksize: number, out: Float32Array, backend?: 'ref' | 'auto'): void;
  bnb4Dequantize(type: 'nf4' | 'fp4', packed: Buf, absmax: Float32Array, n: number, blocksize: number, out: Float32Array,
    owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  bnb4Table(type: 'nf4' | 'fp4'): Float32Array;
  bnbDynamicMap(): Float32Array;
  sparsityMaskSync(w: Buf, dtype: string, rows: number, cols: number, options: Record<string, unknown>, bits: Uint8Array, backend?: 'ref' | 'auto'): void;
  sparsityMask(w: Buf, dtype: string, rows: number, cols: number, options: Record<string, unknown>, bits: Uint8Array,
    owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  sparsityApplySync(w: Buf, elemSize: number, rows: number, cols: number, bits: Uint8Array, out: Buf): void;
  sparsityApply(w: Buf, elemSize: number, rows: number, cols: number, bits: Uint8Array, out: Buf, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  matmulSync(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean, out: Float32Array, backend?: 'ref' | 'auto'): void;
  gaussianFillSync(seed: number, out: Float32Array): void;
  matmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean, out: Float32Array,
    owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  qrSync(a: Float32Array, m: number, n: number, q: Float32Array, r: Float32Array, backend?: 'ref' | 'auto'): void;
  qr(a: Float32Array, m: number, n: number, q: Float32Array, r: Float32Array, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  svdSync(a: Float32Array, batch: number, m: number, n: number, rank: number, u: Float32Array, s: Float32Array, vt: Float32Array,
    backend?: 'ref' | 'auto'): void;
  svd(a: Float32Array, batch: number, m: number, n: number, rank: number, u: Float32Array, s: Float32Array, vt: Float32Array,
    owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  dmatmulSync(a: Float64Array, b: Float64Array, m: number, n: number, k: number, transA: boolean, transB: boolean, out: Float64Array, backend?: 'ref' | 'auto'): void;
  dmatmul(a: Float64Array, b: Float64Array, m: number, n: number, k: number, transA: boolean, transB: boolean, out: Float64Array,
    owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  syrkSync(a: FloatBuf, n: number, k: number, trans: boolean, out: FloatBuf, backend?: 'ref' | 'auto'): void;
  syrk(a: FloatBuf, n: number, k: number, trans: boolean, out: FloatBuf, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  choleskySync(a: FloatBuf, n: number, upper: boolean, out: FloatBuf, backend?: 'ref' | 'auto'): void;
  cholesky(a: FloatBuf, n: number, upper: boolean, out: FloatBuf, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  choleskyInverseSync(l: FloatBuf, n: number, upper: boolean, out: FloatBuf, backend?: 'ref' | 'auto'): void;
  choleskyInverse(l: FloatBuf, n: number, upper: boolean, out: FloatBuf, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  triangularSolveSync(a: FloatBuf, b: FloatBuf, m: number, n: number, left: boolean, upper: boolean, trans: boolean, unit: boolean,
    out: FloatBuf, backend?: 'ref' | 'auto'): void;
  triangularSolve(a: FloatBuf, b: FloatBuf, m: number, n: number, left: boolean, upper: boolean, trans: boolean, unit: boolean,
    out: FloatBuf, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  svdSetMaxSweeps(n: number): number;
  svdSetScaleGuard(e: number): number;
  sparseCountRows(w: Buf, elemSize: number, rows: number, cols: number): Float64Array;
  sparseCompress(format: string, w: Buf, elemSize: number, rows: number, cols: number, rowOffsets: Float64Array | null, values: Buf,
    bitmask: Uint8Array | null, meta: Buf | null): void;
  sparseDecompress(format: string, values: Buf, nValues: number, bitmask: Uint8Array | null, meta: Buf | null, elemSize: number, rows: number,
    cols: number, out: Buf): void;
  maskRowCounts(bits: Uint8Array, rows: number, cols: number, counts: Uint32Array): void;
  bnb4DoubleQuantize(absmax: Float32Array, code: Float32Array, q: Uint8Array, nested: Float32Array): number;
  blockwise8Quantize(x: Float32Array, blocksize: number, code: Float32Array, q: Uint8Array, absmax: Float32Array): void;
  blockwise8Dequantize(q: Uint8Array, absmax: Float32Array, blocksize: number, code: Float32Array, out: Float32Array): void;
  compareF32(a: Float32Array, b: Float32Array): { sse: number; maxAbs: number; aa: number; bb: number; ab: number; n: number };
  dequantizeGgmlSync(blocks: Buf, type: number, out: Float32Array, n: number, backend?: 'ref' | 'auto'): void;
  dequantizeGgml(blocks: Buf, type: number, out: Float32Array, n: number, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  calibAddSync(x: Buf, dtype: string, tokens: number, inFeatures: number, seen: number, sums: Float64Array, hessian: Float32Array | null,
    checkFinite: boolean, backend?: 'ref' | 'auto'): void;
  calibAdd(x: Buf, dtype: string, tokens: number, inFeatures: number, seen: number, sums: Float64Array, hessian: Float32Array | null,
    checkFinite: boolean, owners: NativeFile[], token: NativeAbortToken | null): Promise<void>;
  calibGramSync(x: Buf, dtype: string, tokens: number, inFeatures: number, g: Float32Array, backend?: 'ref' | 'auto'): void;
}

// dist/cjs/native.js and lib/native.ts both sit two levels below the package root.
/** The package root (where package.json and binding.gyp live). */
export const packageRoot = path.resolve(__dirname, '..', path.basename(path.dirname(__dirname)) === 'dist' ? '..' : '.');

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => NativeAddon;

/** The loaded addon. */
export const native: NativeAddon = load(packageRoot);
native.init(makeNativeError);

/**
 * Runs a side-effect-free native operation with an abort token wired to `signal`. An abort that happens
 * before the promise settles always rejects with AbortError, even if the native work had already finished
 * (its result is discarded), so the outcome never depends on thread timing.
 */
export async function withAbort<T>(signal: AbortSignal | undefined, fn: (token: NativeAbortToken | null) => Promise<T>): Promise<T> {
  if (!signal) return fn(null);
  const token = new native.AbortToken();
  const onAbort = () => token.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await fn(token);
    if (signal.aborted) throw abortError(signal);
    return result;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
