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

/** A view of the elements as unsigned integers: one lane per element, two (32-bit) lanes for 8-byte elements. */
function lanesOf(b: Uint8Array, es: number, n: number): { u: Uint8Array | Uint16Array | Uint32Array; lanes: number } {
  if (es === 1) return { u: b, lanes: 1 };
  if (b.byteOffset % Math.min(es, 4) !== 0) b = b.slice();
  if (es === 2) return { u: new Uint16Array(b.buffer, b.byteOffset, n), lanes: 1 };
  return { u: new Uint32Array(b.buffer, b.byteOffset, (n * es) / 4), lanes: es / 4 };
}

function viewLike(u: Uint8Array | Uint16Array | Uint32Array, length: number): Uint8Array | Uint16Array | Uint32Array {
  return u instanceof Uint8Array ? new Uint8Array(length) : u instanceof Uint16Array ? new Uint16Array(length) : new Uint32Array(length);
}

const asBytes = (a: Uint8Array | Uint16Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A tensor over the bytes of n elements of dtype. */
function fromBytes(bytes: Uint8Array, dtype: DType, shape: number[]): Tensor {
  const info = dtypeInfo(dtype)!;
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(new info.array(bytes.buffer, bytes.byteOffset, n * Math.max(info.lanes, 1)) as TypedArray, shape, dtype);
}

const i64 = (values: number[], shape: number[]) => tensor(BigInt64Array.from(values.map(BigInt)), shape, 'i64');

/** The positions (idx0 < idx1) PyTorch's 2:4 conversion stores for a group whose non-zero bits are m0..m3. */
function nvIndices(m0: number, m1: number, m2: number, m3: number): [number, number] {
  // torch/sparse/_semi_structured_conversions.py: the nibble of every 4-bit mask, padding groups with fewer than
  // two non-zeros (0000 -> 2,3; 1000 -> 0,2).
  void m2;
  const e0 = m0 & m1;
  const e1 = ~m0 & m1 & 1;
  const e2 = ~m0 & ~m1 & 1;
  const bit0 = e1, bit1 = e2, bit2 = e0 | e2 | m3, bit3 = e1 | (~m1 & 1);
  return [bit0 | (bit1 << 1), bit2 | (bit3 << 1)];
}

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
  const { u, lanes } = lanesOf(w.bytes(), es, rows * cols);
  const nz = lanes === 1 ? (i: number) => u[i] !== 0 : (i: number) => (u[2 * i] | u[2 * i + 1]) !== 0;
  const rb = Math.ceil(cols / 8);
  if (format === 'sparse-bitmask') {
    const bitmask = new Uint8Array(rows * rb);
    const offsets: number[] = new Array(rows);
    let count = 0;
    for (let r = 0; r < rows; r++) {
      offsets[r] = count;
      for (let c = 0, i = r * cols; c < cols; c++, i++) {
        if (lanes === 1 ? u[i] !== 0 : (u[2 * i] | u[2 * i + 1]) !== 0) {
          bitmask[r * rb + (c >> 3)] |= 1 << (c & 7);
          count++;
        }
      }
    }
    const values = viewLike(u, count * lanes);
    for (let i = 0, k = 0, n = rows * cols; i < n; i++) {
      if (lanes === 1) {
        if (u[i] !== 0) values[k++] = u[i];
      } else if ((u[2 * i] | u[2 * i + 1]) !== 0) {
        values[k++] = u[2 * i];
        values[k++] = u[2 * i + 1];
      }
    }
    return new SparseTensor(format, [rows, cols], w.dtype, {
      shape: i64([rows, cols], [2]),
      compressed: fromBytes(asBytes(values), w.dtype, [count]),
      bitmask: tensor(bitmask, [rows, rb], 'u8'),
      row_offsets: i64(offsets, [rows]),
    });
  }
  if (cols % 4 !== 0) throw new WeightsmithError('ERR_SHAPE', `${format} needs rows that are a multiple of 4, not ${cols}`);
  const values = viewLike(u, rows * (cols / 2) * lanes);
  const bitmask = new Uint8Array(rows * rb);
  const mw = Math.ceil(cols / 16);
  const meta = new Int16Array(rows * mw);
  const nv = format === 'nv24';
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols; g += 4) {
      const base = r * cols + g;
      const m0 = nz(base) ? 1 : 0, m1 = nz(base + 1) ? 1 : 0, m2 = nz(base + 2) ? 1 : 0, m3 = nz(base + 3) ? 1 : 0;
      const count = m0 + m1 + m2 + m3;
      if (count > 2) throw new WeightsmithError('ERR_SHAPE', `row ${r}, columns ${g}..${g + 3} hold ${count} non-zeros: not 2:4 sparse`, { row: r, column: g });
      let p0: number, p1: number;
      if (nv) {
        [p0, p1] = nvIndices(m0, m1, m2, m3);
        meta[r * mw + (g >> 4)] |= (p0 | (p1 << 2)) << (((g >> 2) & 3) * 4);
      } else {
        // The non-zeros, completed with the first zero positions (ties keep the lower index), in column order.
        const mask = m0 | (m1 << 1) | (m2 << 2) | (m3 << 3);
        const pick = mask | FILL[mask];
        p0 = 31 - Math.clz32(pick & -pick);
        p1 = 31 - Math.clz32(pick);
        bitmask[r * rb + ((g + p0) >> 3)] |= 1 << ((g + p0) & 7);
        bitmask[r * rb + ((g + p1) >> 3)] |= 1 << ((g + p1) & 7);
      }
      const out = (r * (cols / 2) + g / 2) * lanes;
      for (let l = 0; l < lanes; l++) {
        values[out + l] = u[(base + p0) * lanes + l];
        values[out + lanes + l] = u[(base + p1) * lanes + l];
      }
    }
  }
  const v = fromBytes(asBytes(values), w.dtype, [rows, cols / 2]);
  if (nv) return new SparseTensor(format, [rows, cols], w.dtype, { values: v, meta: tensor(meta, [rows, mw], 'i16'), shape: i64([rows, cols], [2]) });
  return new SparseTensor(format, [rows, cols], w.dtype, { shape: i64([rows, cols], [2, 1]), compressed: v, bitmask: tensor(bitmask, [rows, rb], 'u8') });
}

// For a 4-bit non-zero mask with at most two bits: the zero positions to add so that two are stored (the
// lowest ones first).
const FILL = Uint8Array.from({ length: 16 }, (_v, mask) => {
  let add = 0;
  let count = (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1) + ((mask >> 3) & 1);
  for (let j = 0; j < 4 && count < 2; j++) {
    if (!((mask >> j) & 1)) {
      add |= 1 << j;
      count++;
    }
  }
  return add;
});

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
  const { u: o, lanes } = lanesOf(out.bytes(), es, rows * cols);
  const rb = Math.ceil(cols / 8);
  if (s.format === 'nv24') {
    const vt = part(s, 'values');
    const meta = part(s, 'meta');
    const mw = Math.ceil(cols / 16);
    if (meta.numel !== rows * mw || vt.byteLength !== rows * (cols / 2) * es) throw new WeightsmithError('ERR_SHAPE', 'nv24 parts do not match the shape');
    const { u: v } = lanesOf(vt.bytes(), es, rows * (cols / 2));
    const mb = meta.bytes();
    const md = mb.byteOffset % 2 ? new Uint16Array(mb.slice().buffer) : new Uint16Array(mb.buffer, mb.byteOffset, rows * mw);
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < cols; g += 4) {
        const nib = (md[r * mw + (g >> 4)] >> (((g >> 2) & 3) * 4)) & 15;
        const i0 = nib & 3, i1 = nib >> 2;
        if (i0 >= i1) throw new WeightsmithError('ERR_CONFIG', `nv24 metadata of row ${r}, columns ${g}..${g + 3} is not two increasing positions`);
        const src = (r * (cols / 2) + g / 2) * lanes;
        for (let l = 0; l < lanes; l++) {
          o[(r * cols + g + i0) * lanes + l] = v[src + l];
          o[(r * cols + g + i1) * lanes + l] = v[src + lanes + l];
        }
      }
    }
    return out;
  }
  const bitmask = part(s, 'bitmask').bytes();
  const ct = part(s, 'compressed');
  const nvals = ct.byteLength / es;
  const { u: v } = lanesOf(ct.bytes(), es, nvals);
  if (bitmask.length !== rows * rb) throw new WeightsmithError('ERR_SHAPE', `the bitmask holds ${bitmask.length} bytes, not ${rows * rb}`);
  let k = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if ((bitmask[r * rb + (c >> 3)] >> (c & 7)) & 1) {
        if (k >= nvals) throw new WeightsmithError('ERR_SHAPE', 'the bitmask marks more elements than the compressed values hold');
        for (let l = 0; l < lanes; l++) o[(r * cols + c) * lanes + l] = v[k * lanes + l];
        k++;
      }
    }
  }
  if (k !== nvals) throw new WeightsmithError('ERR_SHAPE', `the compressed values hold ${nvals} elements; the bitmask marks ${k}`);
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
