// SPDX-License-Identifier: MIT
/**
 * Quantized tensors: a spec, the logical shape, and the stored parts.
 * @module
 */
import { DType, dtypeInfo } from './dtype';
import { invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, withAbort } from './native';
import { checkConvertible, ownersOf, Tensor, tensor, withPinned, zeros } from './tensor';
import { checkOptions, checkSignal } from './validate';

/** ggml block types weightsmith reads from GGUF (ids of ggml's `ggml_type`). */
export const GGML_TYPES = Object.freeze({
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, q8_0: 8, q8_1: 9, q2_k: 10, q3_k: 11, q4_k: 12, q5_k: 13,
  q6_k: 14, q8_k: 15, iq2_xxs: 16, iq2_xs: 17, iq3_xxs: 18, iq1_s: 19, iq4_nl: 20, iq3_s: 21, iq2_s: 22, iq4_xs: 23,
  i8: 24, i16: 25, i32: 26, i64: 27, f64: 28, iq1_m: 29, bf16: 30, tq1_0: 34, tq2_0: 35, mxfp4: 39, nvfp4: 40,
  q1_0: 41, q2_0: 42,
} as const);

/** A ggml type name (`'q4_0'`, `'q6_k'`...). */
export type GgmlType = keyof typeof GGML_TYPES;

const GGML_BY_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([k, v]) => [v, k as GgmlType]));

/** The ggml type name of a type id, or undefined. @internal */
export function ggmlTypeName(id: number): GgmlType | undefined {
  return GGML_BY_ID.get(id);
}

/** How a {@link QuantizedTensor} was quantized. */
export interface GgmlSpec {
  /** ggml block quantization (GGUF). */
  scheme: 'ggml';
  /** The block type. */
  type: GgmlType;
}

/**
 * FP8 with compressed-tensors' symmetric math: per group, scale = absmax / fp8 max (448 for e4m3, 57344 for
 * e5m2) in the weight's dtype (0 becomes that dtype's epsilon); codes = fp8(clamp(x / scale)).
 * Parts: `weight` (fp8 codes, the tensor's shape) and `weight_scale` (the weight's dtype): `[1]` per tensor,
 * `[rows, 1]` per channel (rows = the first dimension), `[ceil(rows/128), ceil(cols/128)]` per 128x128 block.
 */
export interface Fp8Spec {
  scheme: 'fp8';
  /** Default `'e4m3'`. */
  format?: 'e4m3' | 'e5m2';
  /** Default `'tensor'`. */
  granularity?: 'tensor' | 'channel' | 'block';
}

/**
 * Integer round-to-nearest with compressed-tensors' math (see FORMATS.md b4), stored pack-quantized:
 * parts `weight_packed` (i32 `[rows, ceil(cols*bits/32)]`, codes + 2^(bits-1) as an LSB-first bitstream per
 * row), `weight_scale` (the weight's dtype, `[rows, groups]`, `[rows, 1]` per channel, `[1]` per tensor),
 * `weight_shape` (i64 `[rows, cols]`) and, when asymmetric, `weight_zero_point` (i32; packed along rows for
 * group/channel scales, `[1]` per tensor).
 */
export interface IntSpec {
  scheme: 'int';
  /** 1..8. */
  bits: number;
  /** Default true. */
  symmetric?: boolean;
  /** Columns per scale group (default 128), `'channel'` (one per row) or `'tensor'`. */
  groupSize?: number | 'channel' | 'tensor';
  /** Allow a last, shorter group when groupSize does not divide the row (else ERR_SHAPE). */
  pad?: boolean;
}

/**
 * bitsandbytes 4-bit blockwise quantization, NF4 (NormalFloat) or FP4, with the arithmetic of bitsandbytes'
 * torch backend (FORMATS.md b5): per block of `blockSize` elements of the flattened tensor, absmax (f32) and the
 * 4-bit code of clamp(x * (1 / absmax), -1, 1) among the midpoints of the code table (ties to the lower value).
 * Parts: `weight` (u8 `[ceil(n/2), 1]`, the first element in the high nibble), `absmax` (f32 `[blocks]`) and
 * `quant_map` (f32[16]). With `doubleQuant` (QLoRA's double quantization) `absmax` holds u8 codes of
 * absmax - mean(absmax) in blocks of 256 with the signed 8-bit dynamic map, and three parts more:
 * `nested_absmax` (f32), `nested_quant_map` (f32[256]) and `nested_offset` (f32[1], the mean).
 */
export interface Bnb4Options {
  /** 32, 64 (default), 128 ... 4096. */
  blockSize?: number;
  /** Quantize the absmax values too (default false). */
  doubleQuant?: boolean;
  /** The input's dtype (set by quantize; recorded as the quant state's `dtype` in the bitsandbytes layout). */
  dtype?: DType;
}

/** bitsandbytes NF4 (4-bit NormalFloat); see {@link Bnb4Options}. */
export interface Nf4Spec extends Bnb4Options {
  scheme: 'nf4';
}

/** bitsandbytes FP4 (1 sign, 2 exponent, 1 mantissa bit, scaled to [-1, 1]); see {@link Bnb4Options}. */
export interface Fp4Spec extends Bnb4Options {
  scheme: 'fp4';
}

/** A bitsandbytes 4-bit spec. */
export type Bnb4Spec = Nf4Spec | Fp4Spec;

/** A quantization spec: ggml block types, FP8, integer RTN, or bitsandbytes NF4/FP4. */
export type QuantSpec = GgmlSpec | Fp8Spec | IntSpec | Bnb4Spec;

/**
 * A quantized tensor: `shape` is the logical (dequantized) shape in PyTorch order; `parts` holds the stored
 * tensors. ggml types have one part, `blocks`: the raw block bytes (u8), rows of `shape[last] / blockSize`
 * blocks, exactly as in the GGUF file.
 */
export class QuantizedTensor {
  /** The quantization spec. */
  readonly spec: QuantSpec;
  /** Logical shape, outermost first. */
  readonly shape: readonly number[];
  /** Stored parts. */
  readonly parts: Readonly<Record<string, Tensor>>;

  constructor(spec: QuantSpec, shape: readonly number[], parts: Record<string, Tensor>) {
    this.spec = Object.freeze({ ...spec });
    this.shape = Object.freeze([...shape]);
    this.parts = Object.freeze({ ...parts });
  }

  /** Number of logical elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes of all parts together. */
  get byteLength(): number {
    return Object.values(this.parts).reduce((a, t) => a + t.byteLength, 0);
  }

  /** A short description, e.g. `QuantizedTensor<ggml q4_0>[512, 64]`. */
  toString(): string {
    const sp = this.spec;
    const kind = sp.scheme === 'ggml' ? sp.type
      : sp.scheme === 'fp8' ? `${sp.format ?? 'e4m3'} ${sp.granularity ?? 'tensor'}`
      : sp.scheme === 'nf4' || sp.scheme === 'fp4' ? `block ${sp.blockSize ?? 64}${sp.doubleQuant ? ' double-quant' : ''}`
      : `${sp.bits}-bit ${sp.symmetric === false ? 'asym' : 'sym'} ${sp.groupSize ?? 128}`;
    return `QuantizedTensor<${this.spec.scheme} ${kind}>[${this.shape.join(', ')}]`;
  }
}

/** ggml types {@link dequantize} supports. */
export const DEQUANTIZABLE_GGML_TYPES: readonly GgmlType[] = Object.freeze(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k']);

function checkQuantized(q: unknown, dtype: unknown): asserts q is QuantizedTensor {
  if (!(q instanceof QuantizedTensor)) throw invalidArgType('The "q" argument must be a QuantizedTensor');
  if (q.spec.scheme === 'ggml' && !DEQUANTIZABLE_GGML_TYPES.includes(q.spec.type))
    throw new WeightsmithError('ERR_DTYPE', `dequantization of ${q.spec.scheme} ${q.spec.type} is not supported (supported: ${DEQUANTIZABLE_GGML_TYPES.join(', ')})`);
  checkConvertible(zeros([0], 'f32'), dtype);
}

/** Options of {@link dequantize}. */
export interface DequantizeOptions {
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/**
 * Dequantizes to `dtype` (default f32). ggml types decode exactly as ggml's `dequantize_row_*` (bit-identical
 * f32), then convert with the usual rounding rules. Runs on the native thread pool.
 */
export function dequantize(q: QuantizedTensor, dtype: DType = 'f32', options?: DequantizeOptions): Promise<Tensor> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, dequantize);
  return withCallerStack((async () => {
    const opts = checkOptions<DequantizeOptions>(options, 'options', ['signal']);
    const signal = checkSignal(opts.signal);
    checkQuantized(q, dtype);
    throwIfAborted(signal);
    if (q.spec.scheme === 'fp8') return dequantizeFp8(q, dtype);
    if (q.spec.scheme === 'int') return dequantizeInt(q, dtype);
    if (q.spec.scheme === 'nf4' || q.spec.scheme === 'fp4') return dequantizeBnb4(q, dtype, signal);
    const spec = q.spec;
    const blocks = q.parts.blocks;
    const out = zeros(q.shape, 'f32');
    const owners = ownersOf(blocks);
    await withPinned(owners.length ? [out] : [blocks, out], () => withAbort(signal, (token) =>
      native.dequantizeGgml(blocks.bytes(), GGML_TYPES[spec.type], out.data as Float32Array, q.numel, owners, token)));
    return dtype === 'f32' ? out : out.to(dtype);
  })(), caller);
}

/** Synchronous twin of {@link dequantize}. */
export function dequantizeSync(q: QuantizedTensor, dtype: DType = 'f32'): Tensor {
  checkQuantized(q, dtype);
  if (q.spec.scheme === 'fp8') return dequantizeFp8(q, dtype);
  if (q.spec.scheme === 'int') return dequantizeInt(q, dtype);
  if (q.spec.scheme === 'nf4' || q.spec.scheme === 'fp4') return dequantizeBnb4Sync(q, dtype);
  const out = zeros(q.shape, 'f32');
  native.dequantizeGgmlSync(q.parts.blocks.bytes(), GGML_TYPES[q.spec.type], out.data as Float32Array, q.numel);
  return dtype === 'f32' ? out : out.to(dtype);
}

/** ggml types {@link quantize} supports (byte-identical to ggml's reference quantizers). */
export const QUANTIZABLE_GGML_TYPES: readonly GgmlType[] = Object.freeze(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k']);

/** Block sizes (elements) and block bytes of the ggml types weightsmith handles. */
export const GGML_BLOCKS: Readonly<Partial<Record<GgmlType, { size: number; bytes: number }>>> = Object.freeze({
  q4_0: { size: 32, bytes: 18 }, q4_1: { size: 32, bytes: 20 }, q5_0: { size: 32, bytes: 22 }, q5_1: { size: 32, bytes: 24 },
  q8_0: { size: 32, bytes: 34 }, q4_k: { size: 256, bytes: 144 }, q5_k: { size: 256, bytes: 176 }, q6_k: { size: 256, bytes: 210 },
});

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** Cancels the operation. */
  signal?: AbortSignal;
  /** Non-finite input: `'error'` (default, ERR_NON_FINITE naming the first index), `'zero'`, or `'propagate'`. */
  nonFinite?: 'error' | 'zero' | 'propagate';
}

interface Prepared {
  x: Float32Array;
  type: GgmlType;
  out: Tensor;
  checkFinite: boolean;
  owners: ReturnType<typeof ownersOf>;
  source: Tensor;
}

function checkNonFinite(v: unknown): 'error' | 'zero' | 'propagate' {
  const nonFinite = v ?? 'error';
  if (nonFinite !== 'error' && nonFinite !== 'zero' && nonFinite !== 'propagate')
    throw invalidArgType(`The "options.nonFinite" argument must be 'error', 'zero' or 'propagate'`);
  return nonFinite;
}

function prepareQuantize(t: unknown, spec: unknown, options: unknown, keys: string[]): Prepared & { signal?: AbortSignal } {
  if (!(t instanceof Tensor)) throw invalidArgType('The "t" argument must be a Tensor');
  if (typeof spec !== 'object' || spec === null) throw invalidArgType('The "spec" argument must be an object');
  const sp = checkOptions<GgmlSpec>(spec, 'spec', ['scheme', 'type']);
  if (sp.scheme !== 'ggml') throw new WeightsmithError('ERR_CONFIG', `quantization scheme '${String(sp.scheme)}' is not supported (supported: 'ggml', 'fp8', 'int', 'nf4', 'fp4')`);
  const type = sp.type as GgmlType;
  if (!QUANTIZABLE_GGML_TYPES.includes(type))
    throw new WeightsmithError('ERR_CONFIG', `ggml type '${String(sp.type)}' cannot be quantized to (supported: ${QUANTIZABLE_GGML_TYPES.join(', ')})`);
  const opts = checkOptions<QuantizeOptions>(options, 'options', keys);
  const nonFinite = checkNonFinite(opts.nonFinite);
  const signal = keys.includes('signal') ? checkSignal(opts.signal) : undefined;
  const block = GGML_BLOCKS[type]!;
  const row = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
  if (row % block.size !== 0)
    throw new WeightsmithError('ERR_SHAPE', `rows of ${row} elements are not a multiple of the ${type} block size ${block.size}`);
  let source = t;
  if (t.dtype !== 'f32') source = t.to('f32');
  let x = source.data as Float32Array;
  if (nonFinite === 'zero') {
    x = Float32Array.from(x, (v) => (Number.isFinite(v) ? v : 0));
  }
  const out = zeros([(t.numel / block.size) * block.bytes], 'u8');
  return { x, type, out, checkFinite: nonFinite === 'error', owners: source === t ? ownersOf(t) : [], source, signal };
}

/**
 * Quantizes to a ggml block type (`{ scheme: 'ggml', type: 'q8_0' }`), byte-identical to ggml's reference
 * quantizer (`quantize_row_*_ref`, no importance matrix). Rows must be a multiple of the block size
 * (`ERR_SHAPE`); non-finite input is `ERR_NON_FINITE` unless `nonFinite` says otherwise. Runs on the pool.
 */
export function quantize(t: Tensor, spec: QuantSpec, options?: QuantizeOptions): Promise<QuantizedTensor> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, quantize);
  return withCallerStack((async () => {
    if (isBnb4(spec) && t instanceof Tensor) {
      const opts = checkOptions<QuantizeOptions>(options, 'options', ['signal', 'nonFinite']);
      const signal = checkSignal(opts.signal);
      const p = prepareBnb4(t, spec as unknown as Record<string, unknown>, checkNonFinite(opts.nonFinite));
      throwIfAborted(signal);
      const owners = ownersOf(p.x);
      await withPinned([p.x], () => withAbort(signal, (token) => native.bnb4Quantize(p.spec.scheme, p.x.bytes(), p.x.dtype, p.n,
        p.blockSize, p.packed, p.absmax, p.checkFinite, owners, token)));
      return finishBnb4(t, p);
    }
    if ((spec as { scheme?: unknown })?.scheme === 'int' && t instanceof Tensor) {
      const opts = checkOptions<QuantizeOptions>(options, 'options', ['signal', 'nonFinite']);
      const signal = checkSignal(opts.signal);
      const p = prepareInt(t, spec as unknown as Record<string, unknown>, checkNonFinite(opts.nonFinite));
      throwIfAborted(signal);
      const owners = ownersOf(p.x);
      await withPinned([p.x], () => withAbort(signal, (token) => native.quantizeInt(p.x.bytes(), p.x.dtype, p.packed, p.scales.bytes(), p.zps,
        p.rows, p.cols, p.spec.bits, p.spec.symmetric !== false, p.group, p.whole, p.checkFinite, owners, token)));
      return finishInt(t, p);
    }
    if ((spec as { scheme?: unknown })?.scheme === 'fp8' && t instanceof Tensor) {
      const opts = checkOptions<QuantizeOptions>(options, 'options', ['signal', 'nonFinite']);
      const signal = checkSignal(opts.signal);
      const f = prepareFp8(t, spec as unknown as Record<string, unknown>, checkNonFinite(opts.nonFinite));
      throwIfAborted(signal);
      const owners = ownersOf(f.x);
      await withPinned([f.x, f.out], () => withAbort(signal, (token) => native.quantizeFp8(f.x.bytes(), f.x.dtype, f.out.data as Uint8Array,
        f.scales.bytes(), f.rows, f.cols, f.br, f.bc, f.fp8, owners, token, f.checkFinite)));
      return finishFp8(t, f);
    }
    const p = prepareQuantize(t, spec, options, ['signal', 'nonFinite']);
    throwIfAborted(p.signal);
    const n = p.x.length;
    await withPinned(p.owners.length ? [p.out] : [p.source, p.out], () => withAbort(p.signal, (token) =>
      native.quantizeGgml(p.x, GGML_TYPES[p.type], p.out.data as Uint8Array, n, p.checkFinite, p.owners, token)));
    return new QuantizedTensor({ scheme: 'ggml', type: p.type }, t.shape, { blocks: p.out });
  })(), caller);
}

/** Synchronous twin of {@link quantize}. */
export function quantizeSync(t: Tensor, spec: QuantSpec, options?: Omit<QuantizeOptions, 'signal'>): QuantizedTensor {
  if (isBnb4(spec) && t instanceof Tensor) {
    const opts = checkOptions<QuantizeOptions>(options, 'options', ['nonFinite']);
    const p = prepareBnb4(t, spec as unknown as Record<string, unknown>, checkNonFinite(opts.nonFinite));
    native.bnb4QuantizeSync(p.spec.scheme, p.x.bytes(), p.x.dtype, p.n, p.blockSize, p.packed, p.absmax, p.checkFinite);
    return finishBnb4(t, p);
  }
  if ((spec as { scheme?: unknown })?.scheme === 'int' && t instanceof Tensor) {
    const opts = checkOptions<QuantizeOptions>(options, 'options', ['nonFinite']);
    const p = prepareInt(t, spec as unknown as Record<string, unknown>, checkNonFinite(opts.nonFinite));
    native.quantizeIntSync(p.x.bytes(), p.x.dtype, p.packed, p.scales.bytes(), p.zps, p.rows, p.cols, p.spec.bits, p.spec.symmetric !== false,
      p.group, p.whole, p.checkFinite);
    return finishInt(t, p);
  }
  if ((spec as { scheme?: unknown })?.scheme === 'fp8' && t instanceof Tensor) {
    const opts = checkOptions<QuantizeOptions>(options, 'options', ['nonFinite']);
    const f = prepareFp8(t, spec as unknown as Record<string, unknown>, checkNonFinite(opts.nonFinite));
    native.quantizeFp8Sync(f.x.bytes(), f.x.dtype, f.out.data as Uint8Array, f.scales.bytes(), f.rows, f.cols, f.br, f.bc, f.fp8, [], null, f.checkFinite);
    return finishFp8(t, f);
  }
  const p = prepareQuantize(t, spec, options, ['nonFinite']);
  native.quantizeGgmlSync(p.x, GGML_TYPES[p.type], p.out.data as Uint8Array, p.x.length, p.checkFinite);
  return new QuantizedTensor({ scheme: 'ggml', type: p.type }, t.shape, { blocks: p.out });
}

const FP8_BLOCK = 128;

/** Rows x cols of the 2-D view FP8 scales are laid over: the first dimension against the rest. */
function fp8Layout(shape: readonly number[]): { rows: number; cols: number } {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (shape.length < 2) return { rows: 1, cols: numel };
  return { rows: shape[0], cols: shape[0] ? numel / shape[0] : 0 };
}

function fp8Groups(spec: Fp8Spec, rows: number, cols: number): { br: number; bc: number; scaleShape: number[] } {
  const g = spec.granularity ?? 'tensor';
  if (g === 'channel') return { br: 1, bc: 0, scaleShape: [rows, 1] };
  if (g === 'block') return { br: FP8_BLOCK, bc: FP8_BLOCK, scaleShape: [Math.ceil(rows / FP8_BLOCK), Math.ceil(cols / FP8_BLOCK)] };
  return { br: 0, bc: 0, scaleShape: [1] };
}

interface Fp8Prepared {
  x: Tensor;
  spec: Fp8Spec;
  fp8: DType;
  rows: number;
  cols: number;
  br: number;
  bc: number;
  out: Tensor;
  /** The scales, written by the native quantizer in the weight dtype. */
  scales: Tensor;
  checkFinite: boolean;
}

function prepareFp8(t: Tensor, sp: Record<string, unknown>, nonFinite: string): Fp8Prepared {
  const spec = checkOptions<Fp8Spec>(sp, 'spec', ['scheme', 'format', 'granularity']) as Fp8Spec;
  const format = spec.format ?? 'e4m3';
  if (format !== 'e4m3' && format !== 'e5m2') throw new WeightsmithError('ERR_CONFIG', `fp8 format must be 'e4m3' or 'e5m2', not '${String(format)}'`);
  const granularity = spec.granularity ?? 'tensor';
  if (!['tensor', 'channel', 'block'].includes(granularity))
    throw new WeightsmithError('ERR_CONFIG', `fp8 granularity must be 'tensor', 'channel' or 'block', not '${String(granularity)}'`);
  if (granularity !== 'tensor' && t.shape.length < 2)
    throw new WeightsmithError('ERR_SHAPE', `fp8 '${granularity}' scales need a tensor of 2 or more dimensions`);
  let x = t;
  if (!['f32', 'f16', 'bf16'].includes(t.dtype)) {
    if (!dtypeInfo(t.dtype)?.float) throw new WeightsmithError('ERR_DTYPE', `cannot quantize ${t.dtype} to fp8`);
    x = t.to('f32');
  }
  if (nonFinite === 'zero') {
    const f = x.to('f32');
    x = tensor(Float32Array.from(f.data as Float32Array, (v) => (Number.isFinite(v) ? v : 0)), f.shape).to(x.dtype);
  }
  const { rows, cols } = fp8Layout(t.shape);
  const { br, bc, scaleShape } = fp8Groups({ scheme: 'fp8', format, granularity }, rows, cols);
  const fp8: DType = format === 'e4m3' ? 'f8_e4m3' : 'f8_e5m2';
  return {
    x, spec: { scheme: 'fp8', format, granularity }, fp8, rows, cols, br, bc, out: uninitialized(t.shape, fp8),
    // An empty weight leaves the scales unwritten: zeros then.
    scales: (rows * cols ? uninitialized : zeros)(scaleShape, x.dtype), checkFinite: nonFinite === 'error',
  };
}

function finishFp8(t: Tensor, p: Fp8Prepared): QuantizedTensor {
  return new QuantizedTensor(p.spec, t.shape, { weight: p.out, weight_scale: p.scales });
}

const SCALE_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/**
 * A tensor whose bytes the caller overwrites completely before anyone reads them (the outputs of the native
 * quantizers and dequantizers): its own ArrayBuffer, not zero-filled, which saves a pass over fresh pages. @internal
 */
export function uninitialized(shape: readonly number[], dtype: DType): Tensor {
  const info = dtypeInfo(dtype)!;
  const numel = shape.reduce((a, b) => a * b, 1);
  const length = info.bits >= 8 ? numel : Math.ceil((numel * info.bits) / 8);
  const bytes = length * info.array.BYTES_PER_ELEMENT;
  if (bytes < 4096) return zeros(shape, dtype);
  const buf = Buffer.allocUnsafeSlow(bytes);  // never from the shared pool: a whole ArrayBuffer of its own
  return tensor(new info.array(buf.buffer, buf.byteOffset, length), shape, dtype);
}

function dequantizeFp8(q: QuantizedTensor, dtype: DType): Tensor {
  const spec = q.spec as Fp8Spec;
  const { rows, cols } = fp8Layout(q.shape);
  const { br, bc } = fp8Groups(spec, rows, cols);
  const w = q.parts.weight;
  let scales = q.parts.weight_scale;
  if (!SCALE_DTYPES.includes(scales.dtype)) scales = scales.to('f32');
  const codes = w.dtype === 'f8_e4m3' || w.dtype === 'f8_e5m2' ? w : w.to('f8_e4m3');
  // code * scale: exact in f32 (at most 4 + 11 significant bits) and rounded once to the scale dtype, as
  // compressed-tensors' dequantization computes in it (native, on the pool).
  const f = uninitialized(q.shape, 'f32');
  native.dequantizeFp8Sync(codes.bytes(), scales.bytes(), scales.dtype, codes.dtype, rows, cols, br, bc, f.data as Float32Array);
  return dtype === 'f32' ? f : f.to(dtype);
}

interface IntPrepared {
  x: Tensor;
  spec: IntSpec;
  rows: number;
  cols: number;
  group: number;
  whole: boolean;
  groups: number;
  /** Outputs the native quantizer writes in place: packed rows, scales in the weight dtype, packed zero points. */
  packed: Int32Array;
  scales: Tensor;
  zps: Int32Array | null;
  checkFinite: boolean;
}

function prepareInt(t: Tensor, sp: Record<string, unknown>, nonFinite: string): IntPrepared {
  const spec = checkOptions<IntSpec>(sp, 'spec', ['scheme', 'bits', 'symmetric', 'groupSize', 'pad']) as IntSpec;
  const bits = spec.bits;
  if (typeof bits !== 'number') throw invalidArgType('The "spec.bits" argument must be a number');
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new WeightsmithError('ERR_CONFIG', `int bits must be an integer from 1 to 8, not ${bits}`);
  if (spec.symmetric !== undefined && typeof spec.symmetric !== 'boolean') throw invalidArgType('The "spec.symmetric" argument must be a boolean');
  const gs = spec.groupSize ?? 128;
  if (gs !== 'channel' && gs !== 'tensor' && !(typeof gs === 'number' && Number.isInteger(gs) && gs >= 1))
    throw invalidArgType(`The "spec.groupSize" argument must be a positive integer, 'channel' or 'tensor'`);
  let x = t;
  if (!['f32', 'f16', 'bf16'].includes(t.dtype)) {
    if (!dtypeInfo(t.dtype)?.float) throw new WeightsmithError('ERR_DTYPE', `cannot quantize ${t.dtype} to int`);
    x = t.to('f32');
  }
  if (nonFinite === 'zero') {
    const f = x.to('f32');
    x = tensor(Float32Array.from(f.data as Float32Array, (v) => (Number.isFinite(v) ? v : 0)), f.shape).to(x.dtype);
  }
  const { rows, cols } = fp8Layout(t.shape);
  const whole = gs === 'tensor';
  const group = typeof gs === 'number' ? gs : 0;
  if (group && cols % group !== 0 && !spec.pad)
    throw new WeightsmithError('ERR_SHAPE', `rows of ${cols} are not a multiple of the group size ${group} (pass pad: true for a shorter last group)`);
  const ng = whole ? 1 : (group ? Math.ceil(cols / group) : 1);
  const groups = whole ? 1 : rows * ng;
  const symmetric = spec.symmetric ?? true;
  const zw = Math.ceil((rows * bits) / 32);
  return {
    x, spec: { scheme: 'int', bits, symmetric, groupSize: gs, ...(spec.pad ? { pad: true } : {}) },
    rows, cols, group, whole, groups,
    packed: uninitialized([rows * Math.ceil((cols * bits) / 32)], 'i32').data as Int32Array,
    // An empty weight leaves scales and zero points unwritten: zeros then.
    scales: (rows * cols ? uninitialized : zeros)(whole ? [1] : [rows, ng], x.dtype),
    zps: symmetric ? null : ((rows * cols ? uninitialized : zeros)([whole ? 1 : zw * ng], 'i32').data as Int32Array),
    checkFinite: nonFinite === 'error',
  };
}

function finishInt(t: Tensor, p: IntPrepared): QuantizedTensor {
  const wpr = Math.ceil((p.cols * p.spec.bits) / 32);
  const parts: Record<string, Tensor> = {
    weight_packed: tensor(p.packed, [p.rows, wpr]),
    weight_scale: p.scales,
    weight_shape: tensor(new BigInt64Array([BigInt(p.rows), BigInt(p.cols)]), [2]),
  };
  if (p.zps) {
    // Whole tensor: the signed zero point; otherwise packed along rows, one column per group.
    parts.weight_zero_point = p.whole ? tensor(p.zps, [1]) : tensor(p.zps, [Math.ceil((p.rows * p.spec.bits) / 32), p.groups / Math.max(p.rows, 1)]);
  }
  return new QuantizedTensor(p.spec, t.shape, parts);
}

function dequantizeInt(q: QuantizedTensor, dtype: DType): Tensor {
  const spec = q.spec as IntSpec;
  const { rows, cols } = fp8Layout(q.shape);
  const gs = spec.groupSize ?? 128;
  const group = typeof gs === 'number' ? gs : 0;
  const whole = gs === 'tensor';
  const wd = q.parts.weight_scale.dtype;
  // Scales of another dtype are read as f32 and the result rounded to their dtype afterwards, as before.
  const scales = SCALE_DTYPES.includes(wd) ? q.parts.weight_scale : q.parts.weight_scale.to('f32');
  const zpPart = q.parts.weight_zero_point;
  const zps = zpPart ? ((zpPart.dtype === 'i32' ? zpPart : zpPart.to('i32')).data as Int32Array) : null;
  const packed = q.parts.weight_packed;
  const words = (packed.dtype === 'i32' ? packed : packed.to('i32')).data as Int32Array;
  // (q - zp) * scale: an exact small integer times a scale, rounded once to the scale dtype (native, threaded).
  const direct = dtype === scales.dtype;
  const out = uninitialized(q.shape, direct ? scales.dtype : 'f32');
  native.dequantizeIntSync(words, scales.bytes(), zps, rows, cols, spec.bits, !zps, group, whole, scales.dtype, out.bytes(), out.dtype);
  let f = out;
  if (!SCALE_DTYPES.includes(wd)) f = f.to(wd);
  return f.dtype === dtype ? f : f.to(dtype);
}

const BNB4_BLOCK_SIZES = [32, 64, 128, 256, 512, 1024, 2048, 4096];
/** The block size of double quantization (bitsandbytes quantizes absmax in blocks of 256). */
const NESTED_BLOCK = 256;

function isBnb4(spec: unknown): boolean {
  const scheme = (spec as { scheme?: unknown } | null)?.scheme;
  return scheme === 'nf4' || scheme === 'fp4';
}

/** bitsandbytes' 4-bit code table of a type, index -> value (FP4 in bit-pattern order). */
export function bnb4Table(type: 'nf4' | 'fp4'): Float32Array {
  if (type !== 'nf4' && type !== 'fp4') throw invalidArgType(`The "type" argument must be 'nf4' or 'fp4'`);
  return native.bnb4Table(type);
}

let dynamicMap: Float32Array | undefined;

/**
 * bitsandbytes' signed 8-bit dynamic map (`create_dynamic_map(signed=True)`), the code table of double
 * quantization: 256 sorted values, computed with torch's scalar linspace formula in f32. (torch's vectorized
 * linspace may round a few entries differently on some builds; a file always carries its own map, which
 * dequantization uses.)
 */
export function bnbDynamicMap(): Float32Array {
  dynamicMap ??= native.bnbDynamicMap();
  return dynamicMap.slice();
}

interface Bnb4Prepared {
  x: Tensor;
  spec: Bnb4Spec & { blockSize: number };
  n: number;
  blockSize: number;
  packed: Uint8Array;
  absmax: Float32Array;
  checkFinite: boolean;
}

function prepareBnb4(t: Tensor, sp: Record<string, unknown>, nonFinite: string): Bnb4Prepared {
  const spec = checkOptions<Bnb4Spec>(sp, 'spec', ['scheme', 'blockSize', 'doubleQuant', 'dtype']) as Bnb4Spec;
  const blockSize = spec.blockSize ?? 64;
  if (!BNB4_BLOCK_SIZES.includes(blockSize)) throw new WeightsmithError('ERR_CONFIG', `${spec.scheme} blockSize must be one of ${BNB4_BLOCK_SIZES.join(', ')}, not ${String(blockSize)}`);
  if (spec.doubleQuant !== undefined && typeof spec.doubleQuant !== 'boolean') throw invalidArgType('The "spec.doubleQuant" argument must be a boolean');
  let x = t;
  if (!['f32', 'f16', 'bf16'].includes(t.dtype)) {
    if (!dtypeInfo(t.dtype)?.float) throw new WeightsmithError('ERR_DTYPE', `cannot quantize ${t.dtype} to ${spec.scheme}`);
    x = t.to('f32');
  }
  if (nonFinite === 'zero') {
    const f = x.to('f32');
    x = tensor(Float32Array.from(f.data as Float32Array, (v) => (Number.isFinite(v) ? v : 0)), f.shape).to(x.dtype);
  }
  const n = t.numel;
  return {
    // Written completely by the kernels (padding nibble included): not zero-filled.
    x, n, blockSize, packed: uninitialized([Math.ceil(n / 2)], 'u8').data as Uint8Array,
    absmax: uninitialized([Math.ceil(n / blockSize)], 'f32').data as Float32Array,
    spec: { scheme: spec.scheme, blockSize, ...(spec.doubleQuant ? { doubleQuant: true } : {}), dtype: t.dtype },
    checkFinite: nonFinite === 'error',
  };
}

function finishBnb4(t: Tensor, p: Bnb4Prepared): QuantizedTensor {
  const parts: Record<string, Tensor> = {
    weight: tensor(p.packed, [p.packed.length, 1]),
    absmax: tensor(p.absmax, [p.absmax.length]),
    quant_map: tensor(native.bnb4Table(p.spec.scheme), [16]),
  };
  if (p.spec.doubleQuant) Object.assign(parts, doubleQuantize(p.absmax));
  return new QuantizedTensor(p.spec, t.shape, parts);
}

/**
 * bitsandbytes' double quantization of absmax values: offset = their mean (f32; summed in f64 here, where torch
 * sums in f32 in its own order, so the two may differ in the last bit), then absmax - offset (f32) through the
 * 8-bit blockwise quantizer in blocks of 256 with the dynamic map.
 */
function doubleQuantize(absmax: Float32Array): Record<string, Tensor> {
  dynamicMap ??= native.bnbDynamicMap();
  const q = new Uint8Array(absmax.length);
  const nested = new Float32Array(Math.ceil(absmax.length / NESTED_BLOCK));
  const offset = native.bnb4DoubleQuantize(absmax, dynamicMap, q, nested);
  return {
    absmax: tensor(q, [q.length], 'u8'),
    nested_absmax: tensor(nested, [nested.length]),
    nested_quant_map: tensor(dynamicMap.slice(), [256]),
    nested_offset: tensor(new Float32Array([offset]), [1]),
  };
}

/** The f32 absmax values of a 4-bit tensor: stored, or decoded from double quantization (code * scale + offset). */
function bnb4Absmax(q: QuantizedTensor): Float32Array {
  const spec = q.spec as Bnb4Spec;
  const a = q.parts.absmax;
  const blocks = Math.ceil(q.numel / (spec.blockSize ?? 64));
  if (!spec.doubleQuant) {
    if (a.dtype !== 'f32' || a.numel !== blocks) throw new WeightsmithError('ERR_SHAPE', `absmax must be ${blocks} f32 values, not ${a.numel} ${a.dtype}`);
    return a.data as Float32Array;
  }
  const { nested_absmax: na, nested_quant_map: nm, nested_offset: no } = q.parts;
  if (!na || !nm || !no) throw new WeightsmithError('ERR_CONFIG', 'a double-quantized tensor needs nested_absmax, nested_quant_map and nested_offset parts');
  if (a.dtype !== 'u8' || a.numel !== blocks) throw new WeightsmithError('ERR_SHAPE', `double-quantized absmax must be ${blocks} u8 codes, not ${a.numel} ${a.dtype}`);
  if (nm.dtype !== 'f32' || nm.numel !== 256) throw new WeightsmithError('ERR_SHAPE', 'nested_quant_map must be 256 f32 values');
  if (na.dtype !== 'f32' || na.numel !== Math.ceil(blocks / NESTED_BLOCK)) throw new WeightsmithError('ERR_SHAPE', `nested_absmax must be ${Math.ceil(blocks / NESTED_BLOCK)} f32 values`);
  const out = new Float32Array(blocks);
  native.blockwise8Dequantize(a.data as Uint8Array, na.data as Float32Array, NESTED_BLOCK, nm.data as Float32Array, out);
  const offset = (no.to('f32').data as Float32Array)[0];
  for (let i = 0; i < blocks; i++) out[i] += offset;  // an f32 add, as torch's absmax += offset
  return out;
}

function checkBnb4Parts(q: QuantizedTensor): { type: 'nf4' | 'fp4'; blockSize: number } {
  const spec = q.spec as Bnb4Spec;
  const blockSize = spec.blockSize ?? 64;
  if (!BNB4_BLOCK_SIZES.includes(blockSize)) throw new WeightsmithError('ERR_CONFIG', `${spec.scheme} blockSize must be one of ${BNB4_BLOCK_SIZES.join(', ')}, not ${String(blockSize)}`);
  const w = q.parts.weight;
  if (!w || w.byteLength < Math.ceil(q.numel / 2)) throw new WeightsmithError('ERR_SHAPE', `the packed weight must hold ${Math.ceil(q.numel / 2)} bytes`);
  return { type: spec.scheme, blockSize };
}

async function dequantizeBnb4(q: QuantizedTensor, dtype: DType, signal?: AbortSignal): Promise<Tensor> {
  const { type, blockSize } = checkBnb4Parts(q);
  const absmax = bnb4Absmax(q);
  const out = uninitialized(q.shape, 'f32');
  const w = q.parts.weight;
  const owners = ownersOf(w);
  await withPinned(owners.length ? [out] : [w, out], () => withAbort(signal, (token) =>
    native.bnb4Dequantize(type, w.bytes(), absmax, q.numel, blockSize, out.data as Float32Array, owners, token)));
  return dtype === 'f32' ? out : out.to(dtype);
}

function dequantizeBnb4Sync(q: QuantizedTensor, dtype: DType): Tensor {
  const { type, blockSize } = checkBnb4Parts(q);
  const absmax = bnb4Absmax(q);
  const out = uninitialized(q.shape, 'f32');
  native.bnb4DequantizeSync(type, q.parts.weight.bytes(), absmax, q.numel, blockSize, out.data as Float32Array);
  return dtype === 'f32' ? out : out.to(dtype);
}
