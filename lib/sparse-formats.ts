// SPDX-License-Identifier: MIT
/**
 * Compressed storage of pruned weights (FORMATS.md b4 legacy sparse formats, b6 2:4 metadata):
 * compressed-tensors' `sparse-bitmask` and `sparse-24-bitmask` (read and write, as still found on the Hub), and
 * NVIDIA's 2:4 layout (`nv24`: kept values plus 2-bit indices, without the CUTLASS reordering).
 *
 * An element counts as non-zero when any of its bits is set, so -0.0 is kept as a value and
 * `decompress(compress(w))` reproduces `w` bit for bit (compressed-tensors tests `w != 0`, which drops -0.0).
 * @module
 */
import { dtypeInfo, DType, TypedArray } from './dtype';
import { invalidArgType, WeightsmithError } from './errors';
import type { WeightFile } from './file';
import { maskLayout } from './sparsity';
import { native } from './native';
import { Tensor, tensor, zeros } from './tensor';
import { checkOptions } from './validate';

/** Sparse storage formats. */
export type SparseFormat = 'sparse-bitmask' | 'sparse-24-bitmask' | 'nv24';

/**
 * A compressed sparse tensor. Parts by format:
 * - `sparse-bitmask`: `shape` (i64 `[2]`), `compressed` (the non-zero values in row-major order, 1-D),
 *   `bitmask` (u8 `[rows, ceil(cols/8)]`, LSB-first), `row_offsets` (i64 `[rows]`, exclusive prefix sum of the
 *   per-row counts);
 * - `sparse-24-bitmask`: `shape` (i64 `[2, 1]`), `compressed` (`[rows, cols/2]`: two values of every group of
 *   four, in order), `bitmask` (as above, the two stored positions of every group);
 * - `nv24`: `values` (`[rows, cols/2]`), `meta` (i16 `[rows, ceil(cols/16)]`: per group of four a nibble
 *   `idx0 | idx1 << 2`, idx0 < idx1, four nibbles per word LSB-first), `shape` (i64 `[2]`).
 */
export class SparseTensor {
  readonly format: SparseFormat;
  /** The dense shape `[rows, cols]`. */
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly parts: Readonly<Record<string, Tensor>>;

  constructor(format: SparseFormat, shape: readonly number[], dtype: DType, parts: Record<string, Tensor>) {
    this.format = format;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.parts = Object.freeze({ ...parts });
  }

  /** Bytes of all parts. */
  get byteLength(): number {
    return Object.values(this.parts).reduce((a, t) => a + t.byteLength, 0);
  }
}

const FORMATS: readonly SparseFormat[] = ['sparse-bitmask', 'sparse-24-bitmask', 'nv24'];

function elementBytes(dtype: DType): number {
  const bits = dtypeInfo(dtype)!.bits;
  if (![8, 16, 32, 64].includes(bits)) throw new WeightsmithError('ERR_DTYPE', `sparse storage takes whole-byte elements, not ${dtype}`);
  return bits / 8;
}

/** A tensor over the bytes of n elements of dtype. */
function fromBytes(bytes: Uint8Array, dtype: DType, shape: number[]): Tensor {
  const info = dtypeInfo(dtype)!;
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(new info.array(bytes.buffer, bytes.byteOffset, n * Math.max(info.lanes, 1)) as TypedArray, shape, dtype);
}

const i64 = (values: number[], shape: number[]) => tensor(BigInt64Array.from(values.map(BigInt)), shape, 'i64');

/**
 * Compresses a pruned 2-D (or flattened to 2-D: first dimension against the rest) tensor. `sparse-24-bitmask`
 * and `nv24` need every group of four consecutive elements of a row to hold at most two non-zeros (else
 * ERR_SHAPE naming the row and group) and rows a multiple of 4.
 */
export function compress(w: Tensor, options: { format: SparseFormat }): SparseTensor {
  if (!(w instanceof Tensor)) throw invalidArgType('The "w" argument must be a Tensor');
  const o = checkOptions<{ format: SparseFormat }>(options, 'options', ['format']);
  if (!FORMATS.includes(o.format as SparseFormat)) throw invalidArgType(`The "options.format" argument must be one of ${FORMATS.join(', ')}`);
  const format = o.format as SparseFormat;
  const es = elementBytes(w.dtype);
  const { rows, cols } = maskLayout(w.shape);
  const b = w.bytes();
  const rb = Math.ceil(cols / 8);
  if (format === 'sparse-bitmask') {
    const counts = native.sparseCountRows(b, es, rows, cols);
    const offsets = new Float64Array(rows + 1);
    for (let r = 0; r < rows; r++) offsets[r + 1] = offsets[r] + counts[r];
    const total = offsets[rows];
    const values = new Uint8Array(total * es);
    const bitmask = new Uint8Array(rows * rb);
    native.sparseCompress(format, b, es, rows, cols, offsets, values, bitmask, null);
    return new SparseTensor(format, [rows, cols], w.dtype, {
      shape: i64([rows, cols], [2]),
      compressed: fromBytes(values, w.dtype, [total]),
      bitmask: tensor(bitmask, [rows, rb], 'u8'),
      row_offsets: i64(Array.from(offsets.subarray(0, rows)), [rows]),
    });
  }
  if (cols % 4 !== 0) throw new WeightsmithError('ERR_SHAPE', `${format} needs rows that are a multiple of 4, not ${cols}`);
  const values = new Uint8Array(rows * (cols / 2) * es);
  const v = fromBytes(values, w.dtype, [rows, cols / 2]);
  if (format === 'nv24') {
    const mw = Math.ceil(cols / 16);
    const meta = new Int16Array(rows * mw);
    native.sparseCompress(format, b, es, rows, cols, null, values, null, meta);
    return new SparseTensor(format, [rows, cols], w.dtype, { values: v, meta: tensor(meta, [rows, mw], 'i16'), shape: i64([rows, cols], [2]) });
  }
  const bitmask = new Uint8Array(rows * rb);
  native.sparseCompress(format, b, es, rows, cols, null, values, bitmask, null);
  return new SparseTensor(format, [rows, cols], w.dtype, { shape: i64([rows, cols], [2, 1]), compressed: v, bitmask: tensor(bitmask, [rows, rb], 'u8') });
}

function part(s: SparseTensor, name: string): Tensor {
  const t = s.parts[name];
  if (!(t instanceof Tensor)) throw new WeightsmithError('ERR_CONFIG', `a ${s.format} tensor needs a '${name}' part`);
  return t;
}

/** The dense tensor `[rows, cols]` a SparseTensor stores. */
export function decompress(s: SparseTensor): Tensor {
  if (!(s instanceof SparseTensor)) throw invalidArgType('The "s" argument must be a SparseTensor');
  const [rows, cols] = s.shape;
  const es = elementBytes(s.dtype);
  const out = zeros([rows, cols], s.dtype);
  if (s.format === 'nv24') {
    const values = part(s, 'values');
    const meta = part(s, 'meta');
    if (meta.numel !== rows * Math.ceil(cols / 16) || (meta.dtype !== 'i16' && meta.dtype !== 'u16')) throw new WeightsmithError('ERR_SHAPE', 'nv24 meta must be 16-bit words [rows, ceil(cols/16)]');
    native.sparseDecompress(s.format, values.bytes(), values.byteLength / es, null, meta.bytes(), es, rows, cols, out.bytes());
    return out;
  }
  const bitmask = part(s, 'bitmask');
  const values = part(s, 'compressed');
  if (bitmask.byteLength !== rows * Math.ceil(cols / 8)) throw new WeightsmithError('ERR_SHAPE', `the bitmask holds ${bitmask.byteLength} bytes, not ${rows * Math.ceil(cols / 8)}`);
  if (values.dtype !== s.dtype) throw new WeightsmithError('ERR_DTYPE', `the compressed values are ${values.dtype}, not ${s.dtype}`);
  native.sparseDecompress(s.format, values.bytes(), values.byteLength / es, bitmask.bytes(), null, es, rows, cols, out.bytes());
  return out;
}

/** The state-dict keys of a compressed weight of module `m` (compressed-tensors drops the `.weight` suffix). */
export function sparseEntries(module: string, s: SparseTensor): Record<string, Tensor> {
  if (!(s instanceof SparseTensor)) throw invalidArgType('The "s" argument must be a SparseTensor');
  return Object.fromEntries(Object.entries(s.parts).map(([k, t]) => [`${module}.${k}`, t]));
}

/** Reads a compressed weight of module `m` from a state dict (the format is told by its keys). */
export function readSparse(file: WeightFile, module: string): SparseTensor {
  const has = (k: string) => file.has(`${module}.${k}`);
  const get = (k: string) => file.getTensor(`${module}.${k}`);
  if (!has('shape')) throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `'${module}.shape' not found: not a compressed sparse weight`, { tensor: module });
  const shapeT = get('shape');
  if (!['i64', 'i32'].includes(shapeT.dtype) || shapeT.numel !== 2) throw new WeightsmithError('ERR_SHAPE', `'${module}.shape' must hold two integers`);
  const shape = Array.from(shapeT.data as ArrayLike<number | bigint>, Number);
  if (has('meta') && has('values')) {
    const values = get('values');
    return new SparseTensor('nv24', shape, values.dtype, { values, meta: get('meta'), shape: shapeT });
  }
  const compressed = get('compressed');
  const format: SparseFormat = has('row_offsets') ? 'sparse-bitmask' : 'sparse-24-bitmask';
  const parts: Record<string, Tensor> = { shape: shapeT, compressed, bitmask: get('bitmask') };
  if (format === 'sparse-bitmask') parts.row_offsets = get('row_offsets');
  return new SparseTensor(format, shape, compressed.dtype, parts);
}
