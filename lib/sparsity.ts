// SPDX-License-Identifier: MIT
/**
 * Pruning masks: magnitude, Wanda and random scores; unstructured selection per row or per tensor, and N:M
 * patterns; bit-packed masks and their application (FORMATS.md c1).
 * @module
 */
import { dtypeInfo } from './dtype';
import { invalidArgType, outOfRange, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, withAbort } from './native';
import { uninitialized } from './quantized';
import { ownersOf, Tensor, tensor, withPinned } from './tensor';
import { checkOptions, checkSignal } from './validate';

/** Rows x columns of the 2-D view masks work on: the first dimension against the rest (1-D: one row). */
export function maskLayout(shape: readonly number[]): { rows: number; cols: number } {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (shape.length < 2) return { rows: 1, cols: numel };
  return { rows: shape[0], cols: shape[0] ? numel / shape[0] : 0 };
}

/**
 * A pruning mask over a tensor of `shape`: bit-packed LSB-first per row of the 2-D view (rows = the first
 * dimension), `ceil(cols / 8)` bytes a row, as `numpy.packbits(mask, axis=-1, bitorder='little')` packs it;
 * a set bit keeps the element. Padding bits are zero.
 */
export class Mask {
  /** The shape of the tensor the mask applies to. */
  readonly shape: readonly number[];
  /** Rows and columns of the 2-D view. */
  readonly rows: number;
  readonly cols: number;
  /** The packed bits: `rows * ceil(cols / 8)` bytes. */
  readonly bits: Uint8Array;
  #counts?: Uint32Array;

  constructor(shape: readonly number[], bits: Uint8Array) {
    if (!(bits instanceof Uint8Array)) throw invalidArgType('The "bits" argument must be a Uint8Array');
    const { rows, cols } = maskLayout(shape);
    if (bits.length !== rows * Math.ceil(cols / 8))
      throw new WeightsmithError('ERR_SHAPE', `a mask of shape [${shape.join(', ')}] takes ${rows * Math.ceil(cols / 8)} bytes, not ${bits.length}`);
    this.shape = Object.freeze([...shape]);
    this.rows = rows;
    this.cols = cols;
    this.bits = bits;
  }

  /** Elements of the tensor. */
  get numel(): number {
    return this.rows * this.cols;
  }

  /** Kept elements per row. */
  rowCounts(): Uint32Array {
    if (!this.#counts) {
      this.#counts = new Uint32Array(this.rows);
      native.maskRowCounts(this.bits, this.rows, this.cols, this.#counts);
    }
    return this.#counts.slice();
  }

  /** Kept elements. */
  get kept(): number {
    return this.rowCounts().reduce((a, b) => a + b, 0);
  }

  /** The kept fraction (1 - sparsity). */
  get density(): number {
    return this.numel ? this.kept / this.numel : 1;
  }

  /** The pruned fraction. */
  get sparsity(): number {
    return 1 - this.density;
  }

  /** Whether element (row, col) of the 2-D view is kept. */
  get(row: number, col: number): boolean {
    if (!Number.isInteger(row) || !Number.isInteger(col) || row < 0 || col < 0 || row >= this.rows || col >= this.cols)
      throw outOfRange(`(${row}, ${col}) is outside the mask's ${this.rows} x ${this.cols}`);
    return ((this.bits[row * Math.ceil(this.cols / 8) + (col >> 3)] >> (col & 7)) & 1) === 1;
  }

  /** Elements kept by both masks (same shape). */
  and(other: Mask): Mask {
    if (!(other instanceof Mask)) throw invalidArgType('The "other" argument must be a Mask');
    if (other.rows !== this.rows || other.cols !== this.cols) throw new WeightsmithError('ERR_SHAPE', `mask shapes differ: [${this.shape.join(', ')}] and [${other.shape.join(', ')}]`);
    const out = new Uint8Array(this.bits.length);
    for (let i = 0; i < out.length; i++) out[i] = this.bits[i] & other.bits[i];
    return new Mask(this.shape, out);
  }

  /** The packed bits as a u8 tensor `[rows, ceil(cols / 8)]` (for saving). */
  toTensor(): Tensor {
    return tensor(this.bits, [this.rows, Math.ceil(this.cols / 8)], 'u8');
  }

  /** A mask from a packed u8 tensor `[rows, ceil(cols / 8)]` and the shape it applies to. */
  static fromTensor(t: Tensor, shape: readonly number[]): Mask {
    if (!(t instanceof Tensor) || t.dtype !== 'u8') throw invalidArgType('The "t" argument must be a u8 Tensor');
    return new Mask(shape, new Uint8Array(t.bytes()));
  }

  /** A mask keeping exactly the non-zero elements of `w` (any bit set: -0.0 counts as a value). */
  static fromNonZero(w: Tensor): Mask {
    if (!(w instanceof Tensor)) throw invalidArgType('The "w" argument must be a Tensor');
    const { rows, cols } = maskLayout(w.shape);
    const es = dtypeInfo(w.dtype)!.bits / 8;
    if (!Number.isInteger(es)) throw new WeightsmithError('ERR_DTYPE', `${w.dtype} has no whole-byte elements`);
    const b = w.bytes();
    const rb = Math.ceil(cols / 8);
    const bits = new Uint8Array(rows * rb);
    for (let r = 0, i = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++, i += es) {
        let nz = 0;
        for (let k = 0; k < es; k++) nz |= b[i + k];
        if (nz) bits[r * rb + (c >> 3)] |= 1 << (c & 7);
      }
    }
    return new Mask(w.shape, bits);
  }

  toString(): string {
    return `Mask[${this.shape.join(', ')}] density ${this.density.toFixed(4)}`;
  }
}

/** Options of {@link mask}. */
export interface MaskOptions {
  /** The score: `|W|`, Wanda's `|W_ij| * ||X_j||` (needs `inputNorms`), or seeded uniform random. */
  method: 'magnitude' | 'wanda' | 'random';
  /** The fraction to prune, in [0, 1), for unstructured masks (the count is floor(group * sparsity)). */
  sparsity?: number;
  /** `'unstructured'` (default) or `'N:M'` (e.g. `'2:4'`): keep N of every M consecutive elements of a row. */
  pattern?: string;
  /** Unstructured comparison group: `'row'` (default, Wanda's) or `'tensor'`. */
  scope?: 'row' | 'tensor';
  /** Wanda: one norm per input column (a Float32Array or a 1-D tensor). */
  inputNorms?: Float32Array | Tensor;
  /** Random scores: the seed (an integer, default 0). */
  seed?: number;
  /** An existing mask to extend: its pruned elements stay pruned and count towards the target. */
  base?: Mask;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

interface MaskPlan {
  w: Tensor;
  rows: number;
  cols: number;
  options: Record<string, unknown>;
  norms?: Float32Array;
  base?: Mask;
}

function parsePattern(p: unknown): { n: number; m: number } | undefined {
  if (p === undefined || p === 'unstructured') return undefined;
  if (typeof p !== 'string') throw invalidArgType(`The "options.pattern" argument must be 'unstructured' or 'N:M'`);
  const m = /^(\d+):(\d+)$/.exec(p);
  if (!m) throw invalidArgType(`The "options.pattern" argument must be 'unstructured' or 'N:M' (like '2:4'), not '${p}'`);
  const n = Number(m[1]);
  const mm = Number(m[2]);
  if (!(n >= 1 && n < mm)) throw outOfRange(`N:M needs 1 <= N < M, not ${p}`);
  return { n, m: mm };
}

function planMask(w: unknown, options: unknown, withSignal: boolean): MaskPlan & { signal?: AbortSignal } {
  if (!(w instanceof Tensor)) throw invalidArgType('The "w" argument must be a Tensor');
  const o = checkOptions<MaskOptions>(options, 'options', ['method', 'sparsity', 'pattern', 'scope', 'inputNorms', 'seed', 'base', ...(withSignal ? ['signal'] : [])]);
  const method = o.method;
  if (method !== 'magnitude' && method !== 'wanda' && method !== 'random') throw invalidArgType(`The "options.method" argument must be 'magnitude', 'wanda' or 'random'`);
  const signal = withSignal ? checkSignal(o.signal) : undefined;
  let x = w;
  if (!['f32', 'f16', 'bf16'].includes(w.dtype)) {
    if (!dtypeInfo(w.dtype)?.float) throw new WeightsmithError('ERR_DTYPE', `cannot score ${w.dtype} weights`);
    x = w.to('f32');
  }
  const { rows, cols } = maskLayout(w.shape);
  const nm = parsePattern(o.pattern);
  const scope = o.scope ?? 'row';
  if (scope !== 'row' && scope !== 'tensor') throw invalidArgType(`The "options.scope" argument must be 'row' or 'tensor'`);
  const opts: Record<string, unknown> = { score: method, perRow: scope === 'row' };
  if (nm) {
    if (o.sparsity !== undefined) throw invalidArgType('pass either options.sparsity (unstructured) or options.pattern N:M, not both');
    if (o.scope !== undefined) throw invalidArgType('options.scope applies to unstructured masks');
    if (cols % nm.m !== 0) throw new WeightsmithError('ERR_SHAPE', `rows of ${cols} are not a multiple of M = ${nm.m}`);
    opts.n = nm.n;
    opts.m = nm.m;
  } else {
    const s = o.sparsity;
    if (typeof s !== 'number') throw invalidArgType('The "options.sparsity" argument must be a number (or pass options.pattern N:M)');
    if (!(s >= 0 && s < 1)) throw outOfRange(`sparsity must be in [0, 1), not ${s}`);
    opts.prune = Math.floor((scope === 'row' ? cols : rows * cols) * s);
  }
  let norms: Float32Array | undefined;
  if (method === 'wanda') {
    const v = o.inputNorms;
    if (v === undefined) throw new WeightsmithError('ERR_CONFIG', 'Wanda scores need options.inputNorms (one norm per input column, e.g. from a Calibrator)');
    if (v instanceof Tensor) norms = (v.dtype === 'f32' ? v : v.to('f32')).data as Float32Array;
    else if (v instanceof Float32Array) norms = v;
    else throw invalidArgType('The "options.inputNorms" argument must be a Float32Array or a Tensor');
    if (norms.length !== cols) throw new WeightsmithError('ERR_SHAPE', `inputNorms has ${norms.length} values; the weight has ${cols} input columns`);
    const negative = norms.findIndex((v) => v < 0);
    if (negative >= 0) throw outOfRange(`inputNorms must be non-negative; inputNorms[${negative}] is ${norms[negative]}`);
    opts.norms = norms;
  } else if (o.inputNorms !== undefined) {
    throw invalidArgType('options.inputNorms applies to method wanda');
  }
  if (o.seed !== undefined) {
    if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw invalidArgType('The "options.seed" argument must be a non-negative integer');
    opts.seed = o.seed;
  }
  if (o.base !== undefined) {
    if (!(o.base instanceof Mask)) throw invalidArgType('The "options.base" argument must be a Mask');
    if (o.base.rows !== rows || o.base.cols !== cols) throw new WeightsmithError('ERR_SHAPE', `the base mask is ${o.base.rows} x ${o.base.cols}; the weight is ${rows} x ${cols}`);
    opts.base = o.base.bits;
  }
  return { w: x, rows, cols, options: opts, norms, base: o.base, signal };
}

/**
 * Builds a pruning mask. Scores: `magnitude` |W|, `wanda` |W_ij| * inputNorms[j], `random` (seeded). Selection
 * in the order "higher score first, then lower index" (ties keep the lower index): unstructured with exactly
 * floor(group * sparsity) pruned per row (`scope: 'row'`) or in the whole tensor (`scope: 'tensor'`), or N:M
 * keeping exactly N of every M consecutive elements of a row. Identical for any thread count. Non-finite weights
 * or scores are refused (ERR_NON_FINITE with the first index).
 */
export function mask(w: Tensor, options: MaskOptions): Promise<Mask> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, mask);
  return withCallerStack((async () => {
    const p = planMask(w, options, true);
    throwIfAborted(p.signal);
    const bits = new Uint8Array(p.rows * Math.ceil(p.cols / 8));
    const owners = ownersOf(p.w);
    await withPinned([p.w], () => withAbort(p.signal, (token) =>
      native.sparsityMask(p.w.bytes(), p.w.dtype, p.rows, p.cols, p.options, bits, owners, token)));
    return new Mask(w.shape, bits);
  })(), caller);
}

/** Synchronous twin of {@link mask}. */
export function maskSync(w: Tensor, options: Omit<MaskOptions, 'signal'>): Mask {
  const p = planMask(w, options, false);
  const bits = new Uint8Array(p.rows * Math.ceil(p.cols / 8));
  native.sparsityMaskSync(p.w.bytes(), p.w.dtype, p.rows, p.cols, p.options, bits);
  return new Mask(w.shape, bits);
}

function checkApply(w: unknown, m: unknown): asserts w is Tensor {
  if (!(w instanceof Tensor)) throw invalidArgType('The "w" argument must be a Tensor');
  if (!(m instanceof Mask)) throw invalidArgType('The "mask" argument must be a Mask');
  const { rows, cols } = maskLayout(w.shape);
  if (rows !== m.rows || cols !== m.cols) throw new WeightsmithError('ERR_SHAPE', `the mask is ${m.rows} x ${m.cols}; the tensor is ${rows} x ${cols}`);
  const bits = dtypeInfo(w.dtype)!.bits;
  if (![8, 16, 32, 64].includes(bits)) throw new WeightsmithError('ERR_DTYPE', `applyMask takes whole-byte elements, not ${w.dtype}`);
}

/** `w` with the elements the mask prunes set to zero (all bits zero), in w's dtype and shape. */
export function applyMask(w: Tensor, m: Mask): Tensor {
  checkApply(w, m);
  const out = uninitialized(w.shape, w.dtype);  // every element is written (kept or zeroed)
  native.sparsityApplySync(w.bytes(), dtypeInfo(w.dtype)!.bits / 8, m.rows, m.cols, m.bits, out.bytes());
  return out;
}

/** Async twin of {@link applyMask} (runs on the pool, off the main thread). */
export function applyMaskAsync(w: Tensor, m: Mask, options?: { signal?: AbortSignal }): Promise<Tensor> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, applyMaskAsync);
  return withCallerStack((async () => {
    checkApply(w, m);
    const signal = checkSignal(checkOptions<{ signal?: AbortSignal }>(options, 'options', ['signal']).signal);
    const out = uninitialized(w.shape, w.dtype);
    const owners = ownersOf(w);
    await withPinned(owners.length ? [out] : [w, out], () => withAbort(signal, (token) =>
      native.sparsityApply(w.bytes(), dtypeInfo(w.dtype)!.bits / 8, m.rows, m.cols, m.bits, out.bytes(), owners, token)));
    return out;
  })(), caller);
}
