// SPDX-License-Identifier: MIT
/**
 * Dense factorizations on the native pool, the building blocks of GPTQ / SparseGPT-style solvers: `syrk`
 * (`a @ aᵀ`), `cholesky`, `choleskyInverse` and `triangularSolve`. Each works in f32 or f64 by input dtype (f16 and
 * bf16 are converted to f32), returns a Promise (run on the pool, cancellable with `signal`) and has a `...Sync`
 * twin. Results are bit-identical for any thread count and SIMD tier.
 * @module
 */
import { invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { native, withAbort } from './native';
import { uninitialized } from './quantized';
import { Tensor, withPinned } from './tensor';
import { checkOptions, checkSignal } from './validate';

type FloatArray = Float32Array | Float64Array;

/** Options of {@link syrk}. */
export interface SyrkOptions {
  /** Compute `aᵀ @ a` (a `[k, n]`) instead of `a @ aᵀ` (a `[n, k]`). */
  trans?: boolean;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/** Options of {@link cholesky} and {@link choleskyInverse}. */
export interface CholeskyOptions {
  /** `cholesky`: return `U = Lᵀ` (`a = Uᵀ U`). `choleskyInverse`: the factor given is upper (`a = Uᵀ U`). */
  upper?: boolean;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/** Options of {@link triangularSolve}. */
export interface TriangularSolveOptions {
  /** Use the upper triangle of `a` (default: the lower one). The other triangle is never read. */
  upper?: boolean;
  /** Solve `op(a) x = b` (true, default) or `x op(a) = b` (false). */
  left?: boolean;
  /** `op(a) = aᵀ` (default: `a`). */
  transpose?: boolean;
  /** Take the diagonal of `a` as ones (it is not read). */
  unitDiagonal?: boolean;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

interface Operand {
  data: FloatArray;
  owner: Tensor;
}

function checkTensor(t: unknown, fn: string, name: string): Tensor {
  if (!(t instanceof Tensor)) throw invalidArgType(`The "${name}" argument of ${fn} must be a Tensor`);
  if (!['f32', 'f16', 'bf16', 'f64'].includes(t.dtype)) throw new WeightsmithError('ERR_DTYPE', `${fn} takes f32, f16, bf16 or f64 tensors, not ${t.dtype}`);
  if (t.shape.length !== 2) throw new WeightsmithError('ERR_SHAPE', `${fn} takes 2-D tensors, not [${t.shape.join(', ')}]`);
  return t;
}

function operand(t: Tensor, f64: boolean): Operand {
  const f = t.dtype === (f64 ? 'f64' : 'f32') ? t : t.to(f64 ? 'f64' : 'f32');
  return { data: f.data as FloatArray, owner: f };
}

function checkSquare(t: Tensor, fn: string): number {
  if (t.shape[0] !== t.shape[1]) throw new WeightsmithError('ERR_SHAPE', `${fn} takes a square matrix, not [${t.shape.join(', ')}]`);
  return t.shape[0];
}

function bools<T extends object>(o: Partial<T>, keys: readonly (keyof T & string)[]): void {
  for (const key of keys)
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidArgType(`The "options.${key}" argument must be a boolean`);
}

/** Runs an async op: validation errors reject (with the caller's stack), as for matmul. */
function runAsync<T>(self: (...args: never[]) => unknown, body: () => Promise<T>): Promise<T> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, self);
  return withCallerStack(body(), caller);
}

// ---- syrk ----

interface SyrkPlan { a: Operand; n: number; k: number; trans: boolean; f64: boolean; signal?: AbortSignal }

function planSyrk(a: unknown, options: unknown, withSignal: boolean): SyrkPlan {
  const t = checkTensor(a, 'syrk', 'a');
  const o = checkOptions<SyrkOptions>(options, 'options', ['trans', ...(withSignal ? ['signal'] : [])]);
  bools(o, ['trans']);
  const trans = Boolean(o.trans), f64 = t.dtype === 'f64';
  const [n, k] = trans ? [t.shape[1], t.shape[0]] : [t.shape[0], t.shape[1]];
  return { a: operand(t, f64), n, k, trans, f64, signal: withSignal ? checkSignal(o.signal) : undefined };
}

/**
 * The symmetric product `a @ aᵀ` (`a` is `[n, k]`), or `aᵀ @ a` with `trans` (`a` is `[k, n]`): an `[n, n]` tensor,
 * f64 for an f64 input, else f32. Only the lower triangle is computed (with the same fused multiply-add chains as
 * {@link matmul}, so it equals `matmul(a, a, { transB: true })` bit for bit) and mirrored. Non-finite input:
 * `ERR_NON_FINITE`.
 */
export function syrk(a: Tensor, options?: SyrkOptions): Promise<Tensor> {
  return runAsync(syrk, async () => {
    const p = planSyrk(a, options, true);
    throwIfAborted(p.signal);
    const out = uninitialized([p.n, p.n], p.f64 ? 'f64' : 'f32');
    await withPinned([p.a.owner, out], () => withAbort(p.signal, (token) =>
      native.syrk(p.a.data, p.n, p.k, p.trans, out.data as FloatArray, [], token)));
    return out;
  });
}

/** Synchronous twin of {@link syrk}. */
export function syrkSync(a: Tensor, options?: Omit<SyrkOptions, 'signal'>): Tensor {
  const p = planSyrk(a, options, false);
  const out = uninitialized([p.n, p.n], p.f64 ? 'f64' : 'f32');
  native.syrkSync(p.a.data, p.n, p.k, p.trans, out.data as FloatArray);
  return out;
}

// ---- cholesky, choleskyInverse ----

interface CholPlan { a: Operand; n: number; upper: boolean; f64: boolean; signal?: AbortSignal }

function planChol(fn: string, a: unknown, options: unknown, withSignal: boolean): CholPlan {
  const t = checkTensor(a, fn, fn === 'cholesky' ? 'a' : 'l');
  const o = checkOptions<CholeskyOptions>(options, 'options', ['upper', ...(withSignal ? ['signal'] : [])]);
  bools(o, ['upper']);
  const n = checkSquare(t, fn), f64 = t.dtype === 'f64';
  return { a: operand(t, f64), n, upper: Boolean(o.upper), f64, signal: withSignal ? checkSignal(o.signal) : undefined };
}

/**
 * The Cholesky factor of a symmetric positive-definite matrix: `L` (lower triangular, `a = L Lᵀ`, zeros above the
 * diagonal), or `U = Lᵀ` with `upper` (`a = Uᵀ U`). f64 for an f64 input, else f32. Only the lower triangle of `a`
 * is read (the upper one is assumed to mirror it), as in LAPACK `potrf` with uplo 'L' and `torch.linalg.cholesky`.
 *
 * Recursive blocked algorithm (leaf factor, triangular solve of the panel, lower-triangle GEMM update of the
 * trailing matrix, on the packed AVX-512 / AVX2 kernels of {@link matmul}).
 *
 * Errors: `ERR_NO_CONVERGENCE` when `a` is not positive definite, naming the order of the first leading minor that
 * is not (the error's `order` field); the output is never NaN. `ERR_NON_FINITE` for a NaN or infinite input (the
 * `index` field), `ERR_SHAPE` for a non-square one. The damped retry GPTQ implementations use (add a multiple of
 * the mean diagonal and factor again) is left to the caller.
 */
export function cholesky(a: Tensor, options?: CholeskyOptions): Promise<Tensor> {
  return runAsync(cholesky, async () => {
    const p = planChol('cholesky', a, options, true);
    throwIfAborted(p.signal);
    const out = uninitialized([p.n, p.n], p.f64 ? 'f64' : 'f32');
    await withPinned([p.a.owner, out], () => withAbort(p.signal, (token) =>
      native.cholesky(p.a.data, p.n, p.upper, out.data as FloatArray, [], token)));
    return out;
  });
}

/** Synchronous twin of {@link cholesky}. */
export function choleskySync(a: Tensor, options?: Omit<CholeskyOptions, 'signal'>): Tensor {
  const p = planChol('cholesky', a, options, false);
  const out = uninitialized([p.n, p.n], p.f64 ? 'f64' : 'f32');
  native.choleskySync(p.a.data, p.n, p.upper, out.data as FloatArray);
  return out;
}

/**
 * The inverse of `L Lᵀ` from its Cholesky factor `l` (`torch.cholesky_inverse` semantics): the full symmetric
 * `[n, n]` matrix `(L Lᵀ)⁻¹`, or `(Uᵀ U)⁻¹` with `upper`. Only the lower (or, with `upper`, the upper) triangle of
 * `l` is read. Computed as `X = L⁻¹` (blocked triangular solve) then `Xᵀ X`. f64 for an f64 input, else f32.
 * Errors: `ERR_NO_CONVERGENCE` for a zero on the diagonal (singular factor), `ERR_NON_FINITE`, `ERR_SHAPE`.
 */
export function choleskyInverse(l: Tensor, options?: CholeskyOptions): Promise<Tensor> {
  return runAsync(choleskyInverse, async () => {
    const p = planChol('choleskyInverse', l, options, true);
    throwIfAborted(p.signal);
    const out = uninitialized([p.n, p.n], p.f64 ? 'f64' : 'f32');
    await withPinned([p.a.owner, out], () => withAbort(p.signal, (token) =>
      native.choleskyInverse(p.a.data, p.n, p.upper, out.data as FloatArray, [], token)));
    return out;
  });
}

/** Synchronous twin of {@link choleskyInverse}. */
export function choleskyInverseSync(l: Tensor, options?: Omit<CholeskyOptions, 'signal'>): Tensor {
  const p = planChol('choleskyInverse', l, options, false);
  const out = uninitialized([p.n, p.n], p.f64 ? 'f64' : 'f32');
  native.choleskyInverseSync(p.a.data, p.n, p.upper, out.data as FloatArray);
  return out;
}

// ---- triangularSolve ----

interface TrsmPlan {
  a: Operand; b: Operand; m: number; n: number; f64: boolean;
  left: boolean; upper: boolean; trans: boolean; unit: boolean; signal?: AbortSignal;
}

function planTrsm(a: unknown, b: unknown, options: unknown, withSignal: boolean): TrsmPlan {
  const ta = checkTensor(a, 'triangularSolve', 'a'), tb = checkTensor(b, 'triangularSolve', 'b');
  const o = checkOptions<TriangularSolveOptions>(options, 'options',
    ['upper', 'left', 'transpose', 'unitDiagonal', ...(withSignal ? ['signal'] : [])]);
  bools(o, ['upper', 'left', 'transpose', 'unitDiagonal']);
  const left = o.left === undefined ? true : o.left;
  const order = checkSquare(ta, 'triangularSolve');
  const [m, n] = tb.shape;
  if (order !== (left ? m : n))
    throw new WeightsmithError('ERR_SHAPE', `triangularSolve: a [${ta.shape.join(', ')}] does not fit b [${tb.shape.join(', ')}] ` +
      `(${left ? 'op(a) x = b needs a [m, m] for b [m, n]' : 'x op(a) = b needs a [n, n] for b [m, n]'})`);
  const f64 = ta.dtype === 'f64' && tb.dtype === 'f64';
  return {
    a: operand(ta, f64), b: operand(tb, f64), m, n, f64, left, upper: Boolean(o.upper), trans: Boolean(o.transpose),
    unit: Boolean(o.unitDiagonal), signal: withSignal ? checkSignal(o.signal) : undefined,
  };
}

/**
 * Solves a triangular system (TRSM): `op(a) x = b` (`left`, the default; `a` `[m, m]`, `b` `[m, n]`) or
 * `x op(a) = b` (`left: false`; `a` `[n, n]`), with `op(a) = a` or `aᵀ` (`transpose`), `a` the lower (default) or
 * upper (`upper`) triangle of the given matrix (the other one is not read), its diagonal taken as ones with
 * `unitDiagonal`. Returns `x` (`[m, n]`), f64 when both inputs are f64, else f32. Blocked: leaf solves and GEMM
 * updates on the packed kernels of {@link matmul}.
 *
 * Errors: a zero on the diagonal (a singular matrix, when not `unitDiagonal`) is `ERR_NO_CONVERGENCE` naming the
 * index (the system has no unique solution; the code shared with the other factorizations' numerical failures);
 * `ERR_NON_FINITE` for a NaN or infinite value in the referenced triangle or in `b`; `ERR_SHAPE` for shapes that do
 * not fit.
 */
export function triangularSolve(a: Tensor, b: Tensor, options?: TriangularSolveOptions): Promise<Tensor> {
  return runAsync(triangularSolve, async () => {
    const p = planTrsm(a, b, options, true);
    throwIfAborted(p.signal);
    const out = uninitialized([p.m, p.n], p.f64 ? 'f64' : 'f32');
    await withPinned([p.a.owner, p.b.owner, out], () => withAbort(p.signal, (token) =>
      native.triangularSolve(p.a.data, p.b.data, p.m, p.n, p.left, p.upper, p.trans, p.unit, out.data as FloatArray, [], token)));
    return out;
  });
}

/** Synchronous twin of {@link triangularSolve}. */
export function triangularSolveSync(a: Tensor, b: Tensor, options?: Omit<TriangularSolveOptions, 'signal'>): Tensor {
  const p = planTrsm(a, b, options, false);
  const out = uninitialized([p.m, p.n], p.f64 ? 'f64' : 'f32');
  native.triangularSolveSync(p.a.data, p.b.data, p.m, p.n, p.left, p.upper, p.trans, p.unit, out.data as FloatArray);
  return out;
}
