// SPDX-License-Identifier: MIT
/**
 * QR and singular value decompositions of f32 matrices on the native pool (`native/kernels/qr.cpp`, `svd.cpp`).
 * Inputs may be f32, f16, bf16 or f64 (converted to f32 first); results are f32. Results do not depend on the
 * thread count.
 * @module
 */
import { invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, withAbort } from './native';
import { uninitialized } from './quantized';
import { Tensor, withPinned } from './tensor';
import { checkInteger, checkOptions, checkSignal } from './validate';

/** Result of {@link qr}. */
export interface QrResult {
  /** `[m, k]`, orthonormal columns (k = min(m, n)). */
  Q: Tensor;
  /** `[k, n]`, upper triangular with a non-negative diagonal. */
  R: Tensor;
}

/** Result of {@link svd} (and, with a leading batch axis, of {@link svdBatched}). */
export interface SvdResult {
  /** `[m, k]` left singular vectors (orthonormal columns). */
  U: Tensor;
  /** `[k]` singular values, descending, non-negative. */
  S: Tensor;
  /** `[k, n]` right singular vectors (orthonormal rows). */
  Vt: Tensor;
}

/** Options of {@link svd}. */
export interface SvdOptions {
  /** Keep only the top `rank` singular triplets, 1 <= rank <= min(m, n) (default: all of them). */
  rank?: number;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/** Options of {@link svdBatched}. */
export interface SvdBatchedOptions {
  /** Cancels the operation. */
  signal?: AbortSignal;
}

const DTYPES = ['f32', 'f16', 'bf16', 'f64'];

function input(fn: string, a: unknown, dims: number): { data: Float32Array; owner: Tensor; shape: number[] } {
  if (!(a instanceof Tensor)) throw invalidArgType(`${fn} takes a Tensor`);
  if (a.shape.length !== dims) throw new WeightsmithError('ERR_SHAPE', `${fn} takes a ${dims}-D tensor, not [${a.shape.join(', ')}]`);
  if (!DTYPES.includes(a.dtype)) throw new WeightsmithError('ERR_DTYPE', `${fn} takes f32, f16, bf16 or f64 tensors, not ${a.dtype}`);
  const f = a.dtype === 'f32' ? a : a.to('f32');
  return { data: f.data as Float32Array, owner: f, shape: [...a.shape] };
}

interface QrPlan {
  a: Float32Array;
  m: number;
  n: number;
  owner: Tensor;
  Q: Tensor;
  R: Tensor;
}

function planQr(a: unknown): QrPlan {
  const x = input('qr', a, 2);
  const [m, n] = x.shape, k = Math.min(m, n);
  return { a: x.data, m, n, owner: x.owner, Q: uninitialized([m, k], 'f32'), R: uninitialized([k, n], 'f32') };
}

/**
 * Thin Householder QR of a 2-D `[m, n]` tensor: `a = Q R` with `Q [m, k]` (orthonormal columns), `R [k, n]` upper
 * triangular, k = min(m, n). The sign convention makes `R`'s diagonal non-negative (so the factorization is unique
 * when `a` has full rank). Blocked (compact WY panels, trailing updates and `Q` through the f32 GEMM).
 * Throws `ERR_NON_FINITE` for NaN or infinite entries.
 */
export function qr(a: Tensor, options?: { signal?: AbortSignal }): Promise<QrResult> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, qr);
  return withCallerStack((async () => {
    const signal = checkSignal(checkOptions<{ signal?: AbortSignal }>(options, 'options', ['signal']).signal);
    const p = planQr(a);
    throwIfAborted(signal);
    if (Math.min(p.m, p.n) > 0)
      await withPinned([p.owner, p.Q, p.R], () => withAbort(signal, (token) =>
        native.qr(p.a, p.m, p.n, p.Q.data as Float32Array, p.R.data as Float32Array, [], token)));
    return { Q: p.Q, R: p.R };
  })(), caller);
}

/** Synchronous twin of {@link qr}. */
export function qrSync(a: Tensor): QrResult {
  const p = planQr(a);
  if (Math.min(p.m, p.n) > 0) native.qrSync(p.a, p.m, p.n, p.Q.data as Float32Array, p.R.data as Float32Array);
  return { Q: p.Q, R: p.R };
}

interface SvdPlan {
  a: Float32Array;
  batch: number;
  m: number;
  n: number;
  rank: number;  // 0: batched
  owner: Tensor;
  U: Tensor;
  S: Tensor;
  Vt: Tensor;
  signal?: AbortSignal;
}

function planSvd(a: unknown, options: unknown, withSignal: boolean): SvdPlan {
  const o = checkOptions<SvdOptions>(options, 'options', ['rank', ...(withSignal ? ['signal'] : [])]);
  const x = input('svd', a, 2);
  const [m, n] = x.shape, k = Math.min(m, n);
  if (k === 0) throw new WeightsmithError('ERR_SHAPE', `svd takes a non-empty matrix, not [${m}, ${n}]`);
  const rank = o.rank === undefined ? k : checkInteger(o.rank, 'options.rank', 1, k);
  return {
    a: x.data, batch: 1, m, n, rank, owner: x.owner, signal: withSignal ? checkSignal(o.signal) : undefined,
    U: uninitialized([m, rank], 'f32'), S: uninitialized([rank], 'f32'), Vt: uninitialized([rank, n], 'f32'),
  };
}

function planBatched(a: unknown, options: unknown, withSignal: boolean): SvdPlan {
  const o = checkOptions<SvdBatchedOptions>(options, 'options', withSignal ? ['signal'] : []);
  const x = input('svdBatched', a, 3);
  const [b, m, n] = x.shape, k = Math.min(m, n);
  return {
    a: x.data, batch: b, m, n, rank: 0, owner: x.owner, signal: withSignal ? checkSignal(o.signal) : undefined,
    U: uninitialized([b, m, k], 'f32'), S: uninitialized([b, k], 'f32'), Vt: uninitialized([b, k, n], 'f32'),
  };
}

async function runSvd(p: SvdPlan): Promise<SvdResult> {
  throwIfAborted(p.signal);
  if (p.batch * Math.min(p.m, p.n) > 0)
    await withPinned([p.owner, p.U, p.S, p.Vt], () => withAbort(p.signal, (token) =>
      native.svd(p.a, p.batch, p.m, p.n, p.rank, p.U.data as Float32Array, p.S.data as Float32Array, p.Vt.data as Float32Array, [], token)));
  return { U: p.U, S: p.S, Vt: p.Vt };
}

function runSvdSync(p: SvdPlan): SvdResult {
  if (p.batch * Math.min(p.m, p.n) > 0)
    native.svdSync(p.a, p.batch, p.m, p.n, p.rank, p.U.data as Float32Array, p.S.data as Float32Array, p.Vt.data as Float32Array);
  return { U: p.U, S: p.S, Vt: p.Vt };
}

/**
 * Thin SVD of one `[m, n]` matrix: `a = U diag(S) Vt`, `U [m, k]`, `S [k]` descending and non-negative, `Vt [k, n]`,
 * k = min(m, n), or only the top `rank` triplets. `U` and `Vt` are orthonormal even for rank-deficient or zero
 * matrices (the basis is completed where singular values are zero). Method: Householder QR of `a` (of `aᵀ` when
 * wide), then parallel one-sided Jacobi on R's rows and `U = Q J`. Throws `ERR_NON_FINITE` for NaN or infinite
 * entries, `ERR_SHAPE` for an empty matrix and `ERR_NO_CONVERGENCE` if Jacobi hits its sweep cap.
 */
export function svd(a: Tensor, options?: SvdOptions): Promise<SvdResult> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, svd);
  return withCallerStack((async () => runSvd(planSvd(a, options, true)))(), caller);
}

/** Synchronous twin of {@link svd}. */
export function svdSync(a: Tensor, options?: Omit<SvdOptions, 'signal'>): SvdResult {
  return runSvdSync(planSvd(a, options, false));
}

/**
 * Thin SVDs of a batch of matrices `a [b, m, n]`: `U [b, m, k]`, `S [b, k]`, `Vt [b, k, n]` (as {@link svd} for each
 * matrix). One-sided Jacobi per matrix, the matrices in parallel: the method of choice for many small matrices.
 */
export function svdBatched(a: Tensor, options?: SvdBatchedOptions): Promise<SvdResult> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, svdBatched);
  return withCallerStack((async () => runSvd(planBatched(a, options, true)))(), caller);
}

/** Synchronous twin of {@link svdBatched}. */
export function svdBatchedSync(a: Tensor): SvdResult {
  return runSvdSync(planBatched(a, undefined, false));
}
