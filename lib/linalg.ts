// SPDX-License-Identifier: MIT
/**
 * Dense linear algebra on the native pool: `matmul` (f32 GEMM, f64 when both inputs are f64). The factorizations
 * (`cholesky`, `choleskyInverse`, `triangularSolve`, `syrk`) are in factor.ts.
 * @module
 */
import { invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, withAbort } from './native';
import { uninitialized } from './quantized';
import { checkAttached, Tensor, withPinned } from './tensor';
import { checkOptions, checkSignal } from './validate';

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use the transpose of `a` (stored `[k, m]`). */
  transA?: boolean;
  /** Use the transpose of `b` (stored `[n, k]`). */
  transB?: boolean;
  /**
   * Write the product into this tensor (f32, or f64 for an f64 product, shape `[m, n]`) and return it, instead of
   * allocating a fresh output: for products in a loop, where the new pages of each output cost as much as a small
   * product. It must not share memory with `a` or `b`.
   */
  out?: Tensor;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

interface Plan {
  a: Float32Array | Float64Array;
  b: Float32Array | Float64Array;
  f64: boolean;
  m: number;
  n: number;
  k: number;
  ta: boolean;
  tb: boolean;
  owners: Tensor[];
  out?: Tensor;
}

function overlaps(x: ArrayBufferView, y: ArrayBufferView): boolean {
  return x.buffer === y.buffer && x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}

/** Checks `options.out` against the product's shape and dtype and the operands' memory. */
function checkOut(out: unknown, p: Plan): Tensor | undefined {
  if (out === undefined) return undefined;
  if (!(out instanceof Tensor)) throw invalidArgType('The "options.out" argument must be a Tensor');
  checkAttached(out);
  const dtype = p.f64 ? 'f64' : 'f32';
  if (out.dtype !== dtype) throw new WeightsmithError('ERR_DTYPE', `matmul: options.out must be ${dtype} for this product, not ${out.dtype}`);
  if (out.shape.length !== 2 || out.shape[0] !== p.m || out.shape[1] !== p.n)
    throw new WeightsmithError('ERR_SHAPE', `matmul: options.out must be [${p.m}, ${p.n}], not [${out.shape.join(', ')}]`);
  if (overlaps(out.data, p.a) || overlaps(out.data, p.b)) throw invalidArgType('matmul: options.out shares memory with an operand');
  return out;
}

function f32Of(t: Tensor): { data: Float32Array; owner: Tensor } {
  const f = t.dtype === 'f32' ? t : t.to('f32');
  return { data: f.data as Float32Array, owner: f };
}

function plan(a: unknown, b: unknown, options: unknown, withSignal: boolean): Plan & { signal?: AbortSignal } {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw invalidArgType('matmul takes two Tensors');
  const o = checkOptions<MatmulOptions>(options, 'options', ['transA', 'transB', 'out', ...(withSignal ? ['signal'] : [])]);
  for (const key of ['transA', 'transB'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidArgType(`The "options.${key}" argument must be a boolean`);
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new WeightsmithError('ERR_SHAPE', `matmul takes 2-D tensors, not [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  for (const t of [a, b]) if (!['f32', 'f16', 'bf16', 'f64'].includes(t.dtype)) throw new WeightsmithError('ERR_DTYPE', `matmul takes f32, f16, bf16 or f64 tensors, not ${t.dtype}`);
  const ta = Boolean(o.transA), tb = Boolean(o.transB);
  const [m, k] = ta ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [k2, n] = tb ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== k2) throw new WeightsmithError('ERR_SHAPE', `matmul: inner dimensions differ (${k} and ${k2})`);
  const signal = withSignal ? checkSignal(o.signal) : undefined;
  let p: Plan;
  if (a.dtype === 'f64' && b.dtype === 'f64') {
    p = { a: a.data as Float64Array, b: b.data as Float64Array, f64: true, m, n, k, ta, tb, owners: [a, b] };
  } else {
    const fa = f32Of(a), fb = f32Of(b);
    p = { a: fa.data, b: fb.data, f64: false, m, n, k, ta, tb, owners: [fa.owner, fb.owner] };
  }
  p.out = checkOut(o.out, p);
  return { ...p, signal };
}

/**
 * `op(a) @ op(b)` (`op` = transpose with `transA` / `transB`). When both inputs are f64 the product is computed
 * and returned in f64; otherwise in f32 (f16, bf16 and a lone f64 input are converted to f32 first). Every element
 * is the fused multiply-add chain over k in order in that precision, so results are identical for any thread count
 * and SIMD tier (packed panels and an AVX-512 / AVX2 register-tiled kernel; a portable one elsewhere).
 */
export function matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Promise<Tensor> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, matmul);
  return withCallerStack((async () => {
    const p = plan(a, b, options, true);
    throwIfAborted(p.signal);
    const out = p.out ?? uninitialized([p.m, p.n], p.f64 ? 'f64' : 'f32');
    await withPinned([...p.owners, out], () => withAbort(p.signal, (token) => p.f64
      ? native.dmatmul(p.a as Float64Array, p.b as Float64Array, p.m, p.n, p.k, p.ta, p.tb, out.data as Float64Array, [], token)
      : native.matmul(p.a as Float32Array, p.b as Float32Array, p.m, p.n, p.k, p.ta, p.tb, out.data as Float32Array, [], token)));
    return out;
  })(), caller);
}

/** Synchronous twin of {@link matmul}. */
export function matmulSync(a: Tensor, b: Tensor, options?: Omit<MatmulOptions, 'signal'>): Tensor {
  const p = plan(a, b, options, false);
  const out = p.out ?? uninitialized([p.m, p.n], p.f64 ? 'f64' : 'f32');
  if (p.f64) native.dmatmulSync(p.a as Float64Array, p.b as Float64Array, p.m, p.n, p.k, p.ta, p.tb, out.data as Float64Array);
  else native.matmulSync(p.a as Float32Array, p.b as Float32Array, p.m, p.n, p.k, p.ta, p.tb, out.data as Float32Array);
  return out;
}
