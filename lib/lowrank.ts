// SPDX-License-Identifier: MIT
/**
 * Low-rank methods on top of the SVD kernels: `randomizedSvd` (Halko–Martinsson–Tropp), `lowRank`, `extractLora`
 * (mergekit's convention) and `cur` (column/row selection by leverage scores or DEIM, optionally on a Wanda-style
 * importance-weighted matrix as CURing does).
 *
 * Every function has a Promise version (each step runs on the native pool; the event loop stays free) and a
 * `...Sync` twin. Both run the same steps: the algorithms are written once as generators of matrix operations
 * (`matmul`, `qr`, `svd`) that a synchronous or an asynchronous driver executes.
 * @module
 */
import { compare } from './compare';
import { invalidArgType, outOfRange, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { matmul, matmulSync } from './linalg';
import { native } from './native';
import { qr, qrSync, svd, svdSync, type SvdResult } from './svd';
import { Tensor } from './tensor';
import { checkInteger, checkOneOf, checkOptions, checkSignal } from './validate';

/** Options of {@link randomizedSvd}. */
export interface RandomizedSvdOptions {
  /** Extra sample vectors beyond `rank` (default 10); the sketch has `min(rank + oversample, m, n)` columns. */
  oversample?: number;
  /** Power (subspace) iterations, each re-orthonormalized by QR (default 2). */
  powerIters?: number;
  /** Seed of the Gaussian test matrix ({@link gaussianMatrix}), an integer in [0, 2^53) (default 0). */
  seed?: number;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/** Options of {@link lowRank} and {@link extractLora}: exactly one of `rank` and `energy`. */
export interface LowRankOptions {
  /** Keep this many singular triplets (capped at `min(m, n)`). */
  rank?: number;
  /**
   * Keep the fewest triplets whose squared singular values reach this fraction of the total (in (0, 1]); needs
   * the exact SVD (`method: 'svd'`).
   */
  energy?: number;
  /** `'svd'` (default): the exact thin SVD. `'randomized'`: {@link randomizedSvd} with `rank` (faster for small ranks). */
  method?: 'svd' | 'randomized';
  /** Sketch options of the randomized method. */
  oversample?: number;
  /** Sketch options of the randomized method. */
  powerIters?: number;
  /** Sketch options of the randomized method. */
  seed?: number;
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/** Result of {@link lowRank}: `a ≈ up @ down`, with `sqrt(S)` on both sides. */
export interface LowRankResult {
  /** `U[:, :r] · diag(sqrt(S_r))`, `[m, r]`, f32. */
  up: Tensor;
  /** `diag(sqrt(S_r)) · Vt[:r, :]`, `[r, n]`, f32. */
  down: Tensor;
  /** The rank kept. */
  rank: number;
  /** The singular values the method computed (all of them for `'svd'`, the sketch's for `'randomized'`), f32. */
  S: Tensor;
  /** `||a - up @ down||_F / ||a||_F`, measured on the product (0 for a zero matrix). */
  relError: number;
}

/** Options of {@link extractLora}. */
export interface ExtractLoraOptions extends LowRankOptions {
  /** Singular values at or below this are not counted towards the rank (mergekit's `sv_epsilon`, default 0). */
  svEpsilon?: number;
  /** `sqrt(S)` on both factors (default, mergekit's `distribute_scale`); `false` puts `S` into `loraA`. */
  distributeScale?: boolean;
}

/** Result of {@link extractLora}: `tuned - base ≈ loraB @ loraA`. */
export interface ExtractLoraResult {
  /** `[r, in]`, f32. */
  loraA: Tensor;
  /** `[out, r]`, f32. */
  loraB: Tensor;
  /** The rank kept (0 when the two weights are equal or all singular values are at most `svEpsilon`). */
  rank: number;
  /** The singular values of the difference the method computed, f32. */
  S: Tensor;
  /** `||Δ - loraB @ loraA||_F / ||Δ||_F`, measured on the product (0 when Δ is zero). */
  relError: number;
}

/** Options of {@link cur}. */
export interface CurOptions {
  /** Number of columns and rows to select (1 ≤ rank ≤ min(m, n)). */
  rank: number;
  /**
   * A non-negative importance per column (input feature), e.g. Wanda's input norms: the selection then runs on
   * `|a| ⊙ importance` (CURing's metric) instead of `a`. `C`, `U` and `R` are always built from `a` itself.
   */
  importance?: Tensor;
  /**
   * `'deim'` (default, the discrete empirical interpolation method on the top-`rank` singular vectors, as CURing
   * uses) or `'leverage'` (the `rank` largest leverage scores, `||U_r[i, :]||²` and `||V_r[j, :]||²`). Ties keep the
   * lower index.
   */
  selection?: 'deim' | 'leverage';
  /** Cancels the operation. */
  signal?: AbortSignal;
}

/** Result of {@link cur}: `a ≈ C @ U @ R`. */
export interface CurResult {
  /** `a[:, cols]`, `[m, rank]`, f32. */
  C: Tensor;
  /** `pinv(C) @ a @ pinv(R)`, `[rank, rank]`, f32. */
  U: Tensor;
  /** `a[rows, :]`, `[rank, n]`, f32. */
  R: Tensor;
  /** The selected column indices, in selection order. */
  cols: number[];
  /** The selected row indices, in selection order. */
  rows: number[];
  /** `||a - C U R||_F / ||a||_F` (0 for a zero matrix). */
  relError: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The operations the algorithms yield, and the two drivers.

type Op =
  | { op: 'matmul'; a: Tensor; b: Tensor; transA: boolean; transB: boolean }
  | { op: 'qr'; a: Tensor }
  | { op: 'svd'; a: Tensor; rank?: number };
type Steps<T> = Generator<Op, T, unknown>;

const mm = (a: Tensor, b: Tensor, transA = false, transB = false): Op => ({ op: 'matmul', a, b, transA, transB });

function runSync<T>(steps: Steps<T>): T {
  let r = steps.next();
  while (!r.done) {
    const o = r.value;
    r = steps.next(o.op === 'matmul' ? matmulSync(o.a, o.b, { transA: o.transA, transB: o.transB })
      : o.op === 'qr' ? qrSync(o.a) : svdSync(o.a, o.rank === undefined ? {} : { rank: o.rank }));
  }
  return r.value;
}

async function runAsync<T>(steps: Steps<T>, signal: AbortSignal | undefined): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    throwIfAborted(signal);
    const o = r.value;
    r = steps.next(o.op === 'matmul' ? await matmul(o.a, o.b, { transA: o.transA, transB: o.transB, signal })
      : o.op === 'qr' ? await qr(o.a, { signal }) : await svd(o.a, o.rank === undefined ? { signal } : { rank: o.rank, signal }));
  }
  return r.value;
}

function drive<T>(fn: (...args: never[]) => unknown, steps: () => Steps<T>, signal: AbortSignal | undefined): Promise<T> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, fn);
  return withCallerStack((async () => {
    throwIfAborted(signal);
    return runAsync(steps(), signal);
  })(), caller);
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers on f32 matrices.

function matrix(t: unknown, name: string): Tensor {
  if (!(t instanceof Tensor)) throw invalidArgType(`The "${name}" argument must be a Tensor`);
  if (t.shape.length !== 2) throw new WeightsmithError('ERR_SHAPE', `${name} must be a 2-D tensor, not [${t.shape.join(', ')}]`);
  if (!['f32', 'f16', 'bf16', 'f64'].includes(t.dtype)) throw new WeightsmithError('ERR_DTYPE', `${name} must be f32, f16, bf16 or f64, not ${t.dtype}`);
  return t.dtype === 'f32' ? t : t.to('f32');
}

function f32(t: Tensor): Float32Array {
  return t.data as Float32Array;
}

/** The first `r` columns of [rows, cols] `t`, each column scaled by `scale[j]`. */
function leadingColumns(t: Tensor, r: number, scale: Float64Array | undefined): Tensor {
  const [rows, cols] = t.shape;
  const src = f32(t);
  const out = new Float32Array(rows * r);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < r; j++) out[i * r + j] = scale ? Math.fround(src[i * cols + j] * scale[j]) : src[i * cols + j];
  return new Tensor('f32', [rows, r], out);
}

/** The first `r` rows of [rows, cols] `t`, row i scaled by `scale[i]`. */
function leadingRows(t: Tensor, r: number, scale: Float64Array | undefined): Tensor {
  const cols = t.shape[1];
  const src = f32(t);
  const out = new Float32Array(r * cols);
  for (let i = 0; i < r; i++) {
    const s = scale ? scale[i] : 1;
    for (let j = 0; j < cols; j++) out[i * cols + j] = scale ? Math.fround(src[i * cols + j] * s) : src[i * cols + j];
  }
  return new Tensor('f32', [r, cols], out);
}

function zerosF32(shape: number[]): Tensor {
  return new Tensor('f32', shape, new Float32Array(shape.reduce((x, y) => x * y, 1)));
}

/** The smallest r with Σ_{i<r} σ_i² ≥ energy · Σ σ_i² (0 for a zero spectrum). */
function rankForEnergy(s: Float32Array, energy: number): number {
  let total = 0;
  for (const v of s) total += v * v;
  if (total === 0) return 0;
  let acc = 0;
  for (let r = 0; r < s.length; r++) {
    acc += s[r] * s[r];
    if (acc >= energy * total * (1 - 1e-12)) return r + 1;
  }
  return s.length;
}

// ---------------------------------------------------------------------------------------------------------------
// Randomized SVD.

/**
 * The Gaussian test matrix [rows, cols] for a seed (an integer in [0, 2^53)), filled row-major on the native pool.
 * Output j of the SplitMix64 stream seeded with `seed` is `mix(seed + (j + 1)·0x9E3779B97F4A7C15)`; element pair
 * p takes outputs 2p and 2p + 1 as `u1 = 1 - (o >> 11)·2^-53` and `u2 = (o >> 11)·2^-53` and gives
 * `sqrt(-2 ln u1)·cos(2π u2)` and `sqrt(-2 ln u1)·sin(2π u2)` (Box–Muller), rounded to f32. Counter-based, so the
 * values do not depend on the thread count.
 */
export function gaussianMatrix(rows: number, cols: number, seed: number): Tensor {
  checkInteger(seed, 'seed', 0);
  const out = new Float32Array(checkInteger(rows, 'rows') * checkInteger(cols, 'cols'));
  native.gaussianFillSync(seed, out);
  return new Tensor('f32', [rows, cols], out);
}

interface RandomizedPlan { a: Tensor; rank: number; oversample: number; powerIters: number; seed: number; signal?: AbortSignal }

function planRandomized(a: unknown, rank: unknown, options: unknown, withSignal: boolean): RandomizedPlan {
  const af = matrix(a, 'a');
  const o = checkOptions<RandomizedSvdOptions>(options, 'options', ['oversample', 'powerIters', 'seed', ...(withSignal ? ['signal'] : [])]);
  const k = Math.min(af.shape[0], af.shape[1]);
  if (k === 0) throw new WeightsmithError('ERR_SHAPE', `randomizedSvd needs a non-empty matrix, not [${af.shape.join(', ')}]`);
  return {
    a: af,
    rank: checkInteger(rank, 'rank', 1, k),
    oversample: o.oversample === undefined ? 10 : checkInteger(o.oversample, 'options.oversample'),
    powerIters: o.powerIters === undefined ? 2 : checkInteger(o.powerIters, 'options.powerIters', 0, 1000),
    seed: o.seed === undefined ? 0 : checkInteger(o.seed, 'options.seed'),
    signal: withSignal ? checkSignal(o.signal) : undefined,
  };
}

function* randomizedSteps(p: RandomizedPlan): Steps<SvdResult> {
  const [m, n] = p.a.shape;
  const l = Math.min(p.rank + p.oversample, m, n);
  const omega = gaussianMatrix(n, l, p.seed);
  let q = ((yield { op: 'qr', a: (yield mm(p.a, omega)) as Tensor }) as { Q: Tensor }).Q;  // [m, l]
  for (let it = 0; it < p.powerIters; it++) {
    const z = ((yield { op: 'qr', a: (yield mm(p.a, q, true)) as Tensor }) as { Q: Tensor }).Q;  // [n, l]
    q = ((yield { op: 'qr', a: (yield mm(p.a, z)) as Tensor }) as { Q: Tensor }).Q;
  }
  const b = (yield mm(q, p.a, true)) as Tensor;  // [l, n]
  const small = (yield { op: 'svd', a: b, rank: p.rank }) as SvdResult;
  const u = (yield mm(q, small.U)) as Tensor;  // [m, rank]
  return { U: u, S: small.S, Vt: small.Vt };
}

/**
 * Randomized truncated SVD (Halko, Martinsson and Tropp 2011, algorithm 4.4 with re-orthonormalized power
 * iterations): `Y = A Ω` with a seeded Gaussian Ω of `rank + oversample` columns ({@link gaussianMatrix}),
 * `Q = qr(Y)`, then per power iteration `Q = qr(A qr(Aᵀ Q))`, `B = Qᵀ A`, the exact SVD of the small `B`, and
 * `U = Q U_B`. Returns the top `rank` triplets in f32. Deterministic for a seed: the same bytes for any thread count.
 */
export function randomizedSvd(a: Tensor, rank: number, options?: RandomizedSvdOptions): Promise<SvdResult> {
  const p = planRandomized(a, rank, options, true);
  return drive(randomizedSvd, () => randomizedSteps(p), p.signal);
}

/** Synchronous twin of {@link randomizedSvd}. */
export function randomizedSvdSync(a: Tensor, rank: number, options?: Omit<RandomizedSvdOptions, 'signal'>): SvdResult {
  return runSync(randomizedSteps(planRandomized(a, rank, options, false)));
}

// ---------------------------------------------------------------------------------------------------------------
// lowRank and extractLora.

interface LowRankPlan {
  a: Tensor;
  rank?: number;
  energy?: number;
  method: 'svd' | 'randomized';
  sketch: { oversample: number; powerIters: number; seed: number };
  svEpsilon: number;
  distribute: boolean;
  signal?: AbortSignal;
}

function planLowRank(what: string, a: Tensor, options: unknown, extra: string[], withSignal: boolean): LowRankPlan {
  const o = checkOptions<ExtractLoraOptions>(options, 'options',
    ['rank', 'energy', 'method', 'oversample', 'powerIters', 'seed', ...extra, ...(withSignal ? ['signal'] : [])]);
  const k = Math.min(a.shape[0], a.shape[1]);
  if ((o.rank === undefined) === (o.energy === undefined)) throw invalidArgType(`${what} takes exactly one of options.rank and options.energy`);
  const rank = o.rank === undefined ? undefined : checkInteger(o.rank, 'options.rank', 1);  // capped at min(m, n)
  let energy: number | undefined;
  if (o.energy !== undefined) {
    if (typeof o.energy !== 'number') throw invalidArgType('The "options.energy" argument must be of type number');
    if (!(o.energy > 0 && o.energy <= 1)) throw outOfRange(`The value of "options.energy" must be in (0, 1]. Received ${o.energy}`);
    energy = o.energy;
  }
  const method = o.method === undefined ? 'svd' : checkOneOf(o.method, 'options.method', ['svd', 'randomized'] as const);
  if (method === 'randomized' && energy !== undefined) throw invalidArgType(`${what}: options.energy needs the full spectrum (method 'svd')`);
  if (method === 'svd' && (o.oversample !== undefined || o.powerIters !== undefined || o.seed !== undefined))
    throw invalidArgType(`${what}: oversample, powerIters and seed apply to method 'randomized'`);
  let svEpsilon = 0;
  if (o.svEpsilon !== undefined) {
    if (typeof o.svEpsilon !== 'number' || !(o.svEpsilon >= 0) || !Number.isFinite(o.svEpsilon)) throw outOfRange('options.svEpsilon must be a finite number >= 0');
    svEpsilon = o.svEpsilon;
  }
  if (o.distributeScale !== undefined && typeof o.distributeScale !== 'boolean') throw invalidArgType('The "options.distributeScale" argument must be a boolean');
  return {
    a, rank, energy, method, svEpsilon, distribute: o.distributeScale !== false,
    sketch: {
      oversample: o.oversample === undefined ? 10 : checkInteger(o.oversample, 'options.oversample'),
      powerIters: o.powerIters === undefined ? 2 : checkInteger(o.powerIters, 'options.powerIters', 0, 1000),
      seed: o.seed === undefined ? 0 : checkInteger(o.seed, 'options.seed'),
    },
    signal: withSignal ? checkSignal(o.signal) : undefined,
  };
}

interface Factors { left: Tensor; right: Tensor; rank: number; S: Tensor; relError: number }

/**
 * The shared core: the SVD of `p.a`, the rank, and `left = U_r · diag(l)`, `right = diag(r) · Vt_r` with
 * `l = r = sqrt(S)` (balanced) or `l = 1, r = S`.
 */
function* factorSteps(p: LowRankPlan, balanced: boolean): Steps<Factors> {
  const [m, n] = p.a.shape;
  const k = Math.min(m, n);
  if (k === 0) return { left: zerosF32([m, 0]), right: zerosF32([0, n]), rank: 0, S: zerosF32([0]), relError: 0 };
  const s = p.method === 'svd' ? ((yield { op: 'svd', a: p.a }) as SvdResult)
    : yield* randomizedSteps({ a: p.a, rank: Math.min(p.rank!, k), ...p.sketch });
  const sv = f32(s.S);
  let r = p.energy !== undefined ? rankForEnergy(sv, p.energy) : Math.min(p.rank!, sv.length);
  let counted = 0;
  while (counted < sv.length && sv[counted] > p.svEpsilon) counted++;
  r = Math.min(r, counted);
  const root = new Float64Array(r);
  for (let i = 0; i < r; i++) root[i] = Math.sqrt(sv[i]);
  const scaleS = new Float64Array(r);
  for (let i = 0; i < r; i++) scaleS[i] = sv[i];
  const left = leadingColumns(s.U, r, balanced ? root : undefined);
  const right = leadingRows(s.Vt, r, balanced ? root : scaleS);
  const prod = (yield mm(left, right)) as Tensor;  // zeros when r = 0
  return { left, right, rank: r, S: s.S, relError: compare(p.a, prod).relFrobenius };
}

/**
 * Best rank-r approximation `a ≈ up @ down` from the SVD (Eckart–Young), with the scale split as `sqrt(S)` on both
 * factors. `rank` fixes r; `energy` picks the smallest r keeping that fraction of `Σ σ²`. `relError` is measured on
 * the product. Factors are f32 (cast them with `Tensor.to` to store in another dtype).
 */
export function lowRank(a: Tensor, options: LowRankOptions): Promise<LowRankResult> {
  const p = planLowRank('lowRank', matrix(a, 'a'), options, [], true);
  return drive(lowRank, function* () {
    const f = yield* factorSteps(p, true);
    return { up: f.left, down: f.right, rank: f.rank, S: f.S, relError: f.relError };
  }, p.signal);
}

/** Synchronous twin of {@link lowRank}. */
export function lowRankSync(a: Tensor, options: Omit<LowRankOptions, 'signal'>): LowRankResult {
  const p = planLowRank('lowRank', matrix(a, 'a'), options, [], false);
  const f = runSync(factorSteps(p, true));
  return { up: f.left, down: f.right, rank: f.rank, S: f.S, relError: f.relError };
}

function difference(base: unknown, tuned: unknown): Tensor {
  const b = matrix(base, 'base');
  const t = matrix(tuned, 'tuned');
  if (b.shape[0] !== t.shape[0] || b.shape[1] !== t.shape[1])
    throw new WeightsmithError('ERR_SHAPE', `extractLora: base [${b.shape.join(', ')}] and tuned [${t.shape.join(', ')}] differ in shape`);
  const x = f32(t), y = f32(b);
  const d = new Float32Array(x.length);
  for (let i = 0; i < d.length; i++) d[i] = x[i] - y[i];
  return new Tensor('f32', [...t.shape], d);
}

/**
 * LoRA extraction as mergekit's `extract_lora` does it: `Δ = tuned - base` (f32), its SVD, a rank of
 * `min(rank, #σ > svEpsilon)` (or by `energy`), and PEFT-shaped factors `loraA = diag(sqrt(S_r)) · Vt_r` `[r, in]`,
 * `loraB = U_r · diag(sqrt(S_r))` `[out, r]` (with `distributeScale: false`: `loraA = diag(S_r) · Vt_r`,
 * `loraB = U_r`), so that `Δ ≈ loraB @ loraA`. Weights are `[out, in]` (embeddings: pass them transposed, as
 * PEFT's `lora_embedding_A/B` expect). Rank 0 (equal weights) gives empty factors.
 */
export function extractLora(base: Tensor, tuned: Tensor, options: ExtractLoraOptions): Promise<ExtractLoraResult> {
  const p = planLowRank('extractLora', difference(base, tuned), options, ['svEpsilon', 'distributeScale'], true);
  return drive(extractLora, function* () {
    const f = yield* factorSteps(p, p.distribute);
    return { loraA: f.right, loraB: f.left, rank: f.rank, S: f.S, relError: f.relError };
  }, p.signal);
}

/** Synchronous twin of {@link extractLora}. */
export function extractLoraSync(base: Tensor, tuned: Tensor, options: Omit<ExtractLoraOptions, 'signal'>): ExtractLoraResult {
  const p = planLowRank('extractLora', difference(base, tuned), options, ['svEpsilon', 'distributeScale'], false);
  const f = runSync(factorSteps(p, p.distribute));
  return { loraA: f.right, loraB: f.left, rank: f.rank, S: f.S, relError: f.relError };
}

// ---------------------------------------------------------------------------------------------------------------
// CUR.

interface CurPlan { a: Tensor; rank: number; importance?: Float32Array; selection: 'deim' | 'leverage'; signal?: AbortSignal }

function planCur(a: unknown, options: unknown, withSignal: boolean): CurPlan {
  const af = matrix(a, 'a');
  if (options === undefined) throw invalidArgType('cur needs options.rank');
  const o = checkOptions<CurOptions>(options, 'options', ['rank', 'importance', 'selection', ...(withSignal ? ['signal'] : [])]);
  const [m, n] = af.shape;
  const rank = checkInteger(o.rank, 'options.rank', 1, Math.max(1, Math.min(m, n)));
  if (Math.min(m, n) === 0) throw new WeightsmithError('ERR_SHAPE', `cur needs a non-empty matrix, not [${m}, ${n}]`);
  let importance: Float32Array | undefined;
  if (o.importance !== undefined) {
    if (!(o.importance instanceof Tensor)) throw invalidArgType('The "options.importance" argument must be a Tensor');
    if (o.importance.numel !== n || o.importance.shape.length !== 1)
      throw new WeightsmithError('ERR_SHAPE', `cur: importance must be [${n}] (one value per column), not [${o.importance.shape.join(', ')}]`);
    importance = f32(matrix(o.importance.reshape([1, n]), 'options.importance'));
    for (const v of importance) {
      if (!Number.isFinite(v)) throw new WeightsmithError('ERR_NON_FINITE', 'cur: importance has a non-finite value');
      if (v < 0) throw outOfRange('cur: importance values must be non-negative');
    }
  }
  const selection = o.selection === undefined ? 'deim' : checkOneOf(o.selection, 'options.selection', ['deim', 'leverage'] as const);
  return { a: af, rank, importance, selection, signal: withSignal ? checkSignal(o.signal) : undefined };
}

/**
 * DEIM point selection on the r columns of `v` ([len, r] row-major, f64, destroyed): column j picks the entry of
 * largest magnitude of its interpolation residual, which is Gaussian elimination with partial pivoting applied
 * column by column (Sorensen and Embree 2016). Ties keep the lower index.
 */
function deim(v: Float64Array, len: number, r: number): number[] {
  const picked: number[] = [];
  const used = new Uint8Array(len);
  for (let j = 0; j < r; j++) {
    let best = -1;
    let bestAbs = -1;
    for (let i = 0; i < len; i++) {
      if (used[i]) continue;
      const x = Math.abs(v[i * r + j]);
      if (x > bestAbs) {
        bestAbs = x;
        best = i;
      }
    }
    picked.push(best);
    used[best] = 1;
    const pivot = v[best * r + j];
    if (pivot === 0) continue;  // a rank-deficient basis: the residual is zero, any unused point will do
    for (let c = j + 1; c < r; c++) {
      const f = v[best * r + c] / pivot;
      if (f === 0) continue;
      for (let i = 0; i < len; i++) v[i * r + c] -= f * v[i * r + j];
    }
  }
  return picked;
}

/** The `r` largest leverage scores (row sums of squares of [len, r] `v`); ties keep the lower index. */
function leverage(v: Float64Array, len: number, r: number): number[] {
  const score = new Float64Array(len);
  for (let i = 0; i < len; i++) {
    let s = 0;
    for (let j = 0; j < r; j++) s += v[i * r + j] * v[i * r + j];
    score[i] = s;
  }
  const order = Array.from({ length: len }, (_, i) => i);
  order.sort((x, y) => score[y] - score[x] || x - y);
  return order.slice(0, r);
}

/** Columns of `a` [m, n] in `cols` as an [m, c] tensor; rows as [r, n]. */
function gatherColumns(a: Float32Array, m: number, n: number, cols: number[]): Tensor {
  const out = new Float32Array(m * cols.length);
  for (let i = 0; i < m; i++) for (let j = 0; j < cols.length; j++) out[i * cols.length + j] = a[i * n + cols[j]];
  return new Tensor('f32', [m, cols.length], out);
}

function gatherRows(a: Float32Array, n: number, rows: number[]): Tensor {
  const out = new Float32Array(rows.length * n);
  rows.forEach((r, i) => out.set(a.subarray(r * n, (r + 1) * n), i * n));
  return new Tensor('f32', [rows.length, n], out);
}

/** pinv(x) = V diag(1/σ) Uᵀ from x's SVD, dropping σ ≤ max(shape)·ε_f32·σ_max (numpy's and torch's default cutoff). */
function* pinvSteps(x: Tensor): Steps<Tensor> {
  const s = (yield { op: 'svd', a: x }) as SvdResult;
  const sv = f32(s.S);
  const cutoff = Math.max(...x.shape) * 1.1920928955078125e-7 * (sv[0] ?? 0);
  const inv = new Float64Array(sv.length);
  for (let i = 0; i < sv.length; i++) inv[i] = sv[i] > cutoff ? 1 / sv[i] : 0;
  const vs = leadingRows(s.Vt, sv.length, inv);  // diag(1/σ) Vt, [k, n]
  return (yield mm(vs, s.U, true, true)) as Tensor;  // (diag(1/σ) Vt)ᵀ Uᵀ = V diag(1/σ) Uᵀ, [n, m]
}

function* curSteps(p: CurPlan): Steps<CurResult> {
  const [m, n] = p.a.shape;
  const a = f32(p.a);
  let metric = p.a;
  if (p.importance) {
    const w = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[i * n + j] = Math.abs(a[i * n + j]) * p.importance[j];
    metric = new Tensor('f32', [m, n], w);
  }
  const s = (yield { op: 'svd', a: metric, rank: p.rank }) as SvdResult;
  const r = p.rank;
  const u = new Float64Array(f32(s.U));  // [m, r]
  const vt = f32(s.Vt);  // [r, n]
  const v = new Float64Array(n * r);
  for (let i = 0; i < r; i++) for (let j = 0; j < n; j++) v[j * r + i] = vt[i * n + j];
  const pick = p.selection === 'deim' ? deim : leverage;
  const rows = pick(u, m, r);
  const cols = pick(v, n, r);
  const C = gatherColumns(a, m, n, cols);
  const R = gatherRows(a, n, rows);
  const pc = yield* pinvSteps(C);  // [r, m]
  const pr = yield* pinvSteps(R);  // [n, r]
  const left = (yield mm(pc, p.a)) as Tensor;  // [r, n]
  const U = (yield mm(left, pr)) as Tensor;  // [r, r]
  const cu = (yield mm(C, U)) as Tensor;
  const approx = (yield mm(cu, R)) as Tensor;
  return { C, U, R, cols, rows, relError: compare(p.a, approx).relFrobenius };
}

/**
 * CUR decomposition `a ≈ C U R` with `C = a[:, cols]`, `R = a[rows, :]` and `U = pinv(C) a pinv(R)`. Columns and
 * rows are selected from the top-`rank` singular vectors of `a` (or of `|a| ⊙ importance` when an importance
 * vector is given, as CURing does with Wanda's input norms) by DEIM or by leverage scores.
 */
export function cur(a: Tensor, options: CurOptions): Promise<CurResult> {
  const p = planCur(a, options, true);
  return drive(cur, () => curSteps(p), p.signal);
}

/** Synchronous twin of {@link cur}. */
export function curSync(a: Tensor, options: Omit<CurOptions, 'signal'>): CurResult {
  return runSync(curSteps(planCur(a, options, false)));
}
