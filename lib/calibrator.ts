// SPDX-License-Identifier: MIT
/**
 * Calibration statistics of a linear layer's inputs: Wanda's per-column input norms and the SparseGPT / GPTQ
 * Hessian, accumulated batch by batch, saved to and loaded from safetensors.
 * @module
 */
import { dtypeInfo } from './dtype';
import { abortError, invalidArgType, throwIfAborted, WeightsmithError, withCallerStack } from './errors';
import { openSync, WeightFile, open } from './file';
import { native } from './native';
import { ownersOf, Tensor, tensor, withPinned } from './tensor';
import { checkInteger, checkOptions, checkSignal, checkString } from './validate';
import { save, saveSync } from './writer';

/** Options of the {@link Calibrator} constructor. */
export interface CalibratorOptions {
  /** Accumulate the Hessian too (an `[in, in]` f32 matrix, `4 * in^2` bytes). Default false: norms only. */
  hessian?: boolean;
}

/** Options of {@link Calibrator.add}. */
export interface CalibratorAddOptions {
  /** Cancels the batch (see {@link Calibrator.add} for when an abort takes effect). */
  signal?: AbortSignal;
  /**
   * A NaN or infinite input: `'error'` (default: `ERR_NON_FINITE` with the first row-major `index`, and the
   * statistics unchanged), `'zero'` (counted as 0), or `'propagate'` (the statistics become non-finite).
   */
  nonFinite?: 'error' | 'zero' | 'propagate';
}

/** Options of {@link Calibrator.save} and {@link Calibrator.load}. */
export interface CalibratorFileOptions {
  /** The module name: keys are `<module>.input_norms` etc.; without it, `input_norms` etc. */
  module?: string;
  /** Cancels the save or load. */
  signal?: AbortSignal;
}

type StatName = 'input_norms' | 'input_sumsq' | 'hessian' | 'tokens';
const METADATA = { format: 'weightsmith-calibration', hessian: '(2 / tokens) * sum x x^T', input_norms: 'sqrt(sum x^2 / tokens)' };

function checkNonFinite(v: unknown): 'error' | 'zero' | 'propagate' {
  const nonFinite = v ?? 'error';
  if (nonFinite !== 'error' && nonFinite !== 'zero' && nonFinite !== 'propagate')
    throw invalidArgType(`The "options.nonFinite" argument must be 'error', 'zero' or 'propagate'`);
  return nonFinite;
}

function checkModule(v: unknown): string {
  if (v === undefined) return '';
  checkString(v, 'options.module');
  return v;
}

interface Prepared {
  x: Tensor;
  tokens: number;
  checkFinite: boolean;
}

const keyOf = (module: string, name: StatName) => (module ? `${module}.${name}` : name);

/**
 * Accumulates the statistics of a linear layer's inputs `x` (`[tokens, inFeatures]`, or any shape whose last
 * dimension is `inFeatures`; f32, f16 or bf16), over any number of batches:
 * - the column sums of squares, in f64 (each column summed in token order within blocks of 256 tokens, the
 *   block sums then added to the running total), giving {@link inputNorms}: `sqrt(sum x_j^2 / count)`, Wanda's `||X_j||_2` divided by
 *   `sqrt(count)` (a constant factor that does not change any per-row ranking);
 * - optionally the Hessian `H = (2 / count) sum x x^T` (f32), updated per batch of b tokens after n as
 *   `H <- H * n/(n+b) + (x^T x) * 2/(n+b)`. The references (SparseGPT, GPTQ, llm-compressor) count sequences
 *   rather than tokens; their H is ours times the tokens per sequence, a constant factor that changes neither
 *   GPTQ / SparseGPT (dampening is relative to the mean diagonal) nor any ranking.
 *
 * x^T x is a blocked, multi-threaded f32 kernel (AVX-512 or AVX2 FMA micro-kernels when available); every result
 * is bit-identical for any thread count. `count` is in tokens. Batches added with {@link add} run one at a time
 * in call order; while one is in flight the synchronous methods throw `ERR_CONFIG` (await it first).
 */
export class Calibrator {
  /** Input features (the last dimension of every batch). */
  readonly inFeatures: number;
  /** Whether the Hessian is accumulated. */
  readonly hasHessian: boolean;
  #count = 0;
  readonly #sums: Float64Array;
  readonly #hessian: Float32Array | null;
  #queue: Promise<void> = Promise.resolve();
  #pending = 0;

  constructor(inFeatures: number, options?: CalibratorOptions) {
    this.inFeatures = checkInteger(inFeatures, 'inFeatures', 1, 2 ** 31 - 1);
    const opts = checkOptions<CalibratorOptions>(options, 'options', ['hessian']);
    if (opts.hessian !== undefined && typeof opts.hessian !== 'boolean')
      throw invalidArgType('The "options.hessian" argument must be of type boolean');
    this.hasHessian = opts.hessian === true;
    this.#sums = new Float64Array(this.inFeatures);
    this.#hessian = this.hasHessian ? allocF32(this.inFeatures * this.inFeatures) : null;
  }

  /** Tokens seen (rows of all batches added). */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds a batch, on the native thread pool. Batches queue behind earlier ones. On any error, the
   * statistics are unchanged. An abort takes effect while the batch's norms are being summed; once the
   * Hessian update has started (the bulk of the work) the batch completes and the promise resolves, so the
   * statistics are never half-updated.
   */
  add(x: Tensor, options?: CalibratorAddOptions): Promise<void> {
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, this.add);
    let p: Prepared;
    let signal: AbortSignal | undefined;
    try {
      const opts = checkOptions<CalibratorAddOptions>(options, 'options', ['signal', 'nonFinite']);
      signal = checkSignal(opts.signal);
      p = this.#prepare(x, checkNonFinite(opts.nonFinite));
    } catch (err) {
      return withCallerStack(Promise.reject(err), caller);
    }
    this.#pending++;
    const run = this.#queue.then(async () => {
      throwIfAborted(signal);
      const token = signal ? new native.AbortToken() : null;
      const onAbort = () => token!.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const owners = ownersOf(p.x);
        await withPinned([p.x], () => native.calibAdd(p.x.bytes(), p.x.dtype, p.tokens, this.inFeatures, this.#count, this.#sums,
          this.#hessian, p.checkFinite, owners, token));
        this.#count += p.tokens;
      } catch (err) {
        if ((err as { code?: string }).code === 'ABORT_ERR') throw abortError(signal);
        throw err;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    });
    const settle = () => { this.#pending--; };
    this.#queue = run.then(settle, settle);
    return withCallerStack(run, caller);
  }

  /** Synchronous twin of {@link add}. */
  addSync(x: Tensor, options?: Omit<CalibratorAddOptions, 'signal'>): void {
    const opts = checkOptions<CalibratorAddOptions>(options, 'options', ['nonFinite']);
    const p = this.#prepare(x, checkNonFinite(opts.nonFinite));
    this.#checkIdle('addSync');
    native.calibAddSync(p.x.bytes(), p.x.dtype, p.tokens, this.inFeatures, this.#count, this.#sums, this.#hessian, p.checkFinite);
    this.#count += p.tokens;
  }

  /**
   * Per input column, `sqrt(sum x_j^2 / count)` as an f32 `[inFeatures]` tensor (computed in f64, rounded
   * once): the root mean square of the column, Wanda's `||X_j||_2 / sqrt(count)`. Zeros before any batch.
   */
  inputNorms(): Tensor {
    this.#checkIdle('inputNorms');
    return this.#norms();
  }

  #norms(): Tensor {
    const out = new Float32Array(this.inFeatures);
    if (this.#count > 0) for (let j = 0; j < out.length; j++) out[j] = Math.sqrt(this.#sums[j] / this.#count);
    return tensor(out, [this.inFeatures]);
  }

  /**
   * The Hessian `(2 / count) sum x x^T`, a copy as an f32 `[inFeatures, inFeatures]` tensor (symmetric, zeros
   * before any batch). `ERR_CONFIG` when the calibrator was made without `{ hessian: true }`.
   */
  hessian(): Tensor {
    if (!this.#hessian) throw new WeightsmithError('ERR_CONFIG', 'this Calibrator does not accumulate the Hessian (create it with { hessian: true })');
    this.#checkIdle('hessian');
    return tensor(this.#hessian.slice(), [this.inFeatures, this.inFeatures]);
  }

  /**
   * Saves the statistics as safetensors, atomically: `<module>.input_norms` (f32 `[in]`), `<module>.input_sumsq`
   * (f64 `[in]`, the exact running sums, so a loaded calibrator continues bit for bit), `<module>.hessian`
   * (f32 `[in, in]`, when accumulated) and `<module>.tokens` (i64 `[1]`). Waits for queued batches.
   */
  save(path: string, options?: CalibratorFileOptions): Promise<void> {
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, this.save);
    return withCallerStack((async () => {
      checkString(path, 'path');
      const opts = checkOptions<CalibratorFileOptions>(options, 'options', ['module', 'signal']);
      const module = checkModule(opts.module);
      const signal = checkSignal(opts.signal);
      await this.#queue;
      await save(path, this.#entries(module, true), { metadata: METADATA, signal });
    })(), caller);
  }

  /** Synchronous twin of {@link save}. */
  saveSync(path: string, options?: Omit<CalibratorFileOptions, 'signal'>): void {
    checkString(path, 'path');
    const opts = checkOptions<CalibratorFileOptions>(options, 'options', ['module']);
    const module = checkModule(opts.module);
    this.#checkIdle('saveSync');
    saveSync(path, this.#entries(module, false), { metadata: METADATA });
  }

  /**
   * Loads a calibrator saved by {@link save} (or any file with the same keys): the Hessian is accumulated when
   * the file has one. Without `input_sumsq` the sums are rebuilt from the norms (`norm^2 * tokens`, f64).
   * Missing keys are `ERR_TENSOR_NOT_FOUND`; inconsistent shapes `ERR_SHAPE`; non-float statistics `ERR_DTYPE`.
   */
  static load(path: string, options?: CalibratorFileOptions): Promise<Calibrator> {
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, Calibrator.load);
    return withCallerStack((async () => {
      checkString(path, 'path');
      const opts = checkOptions<CalibratorFileOptions>(options, 'options', ['module', 'signal']);
      const module = checkModule(opts.module);
      const signal = checkSignal(opts.signal);
      const f = await open(path, { signal });
      try {
        return Calibrator.#fromFile(f, module);
      } finally {
        f.close();
      }
    })(), caller);
  }

  /** Synchronous twin of {@link load}. */
  static loadSync(path: string, options?: Omit<CalibratorFileOptions, 'signal'>): Calibrator {
    checkString(path, 'path');
    const opts = checkOptions<CalibratorFileOptions>(options, 'options', ['module']);
    const module = checkModule(opts.module);
    const f = openSync(path);
    try {
      return Calibrator.#fromFile(f, module);
    } finally {
      f.close();
    }
  }

  /**
   * Saves several calibrators in one safetensors file, each under its module name (the record's keys, e.g.
   * `model.layers.0.self_attn.q_proj`), atomically. Waits for their queued batches.
   */
  static saveAll(path: string, calibrators: Record<string, Calibrator>, options?: { signal?: AbortSignal }): Promise<void> {
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, Calibrator.saveAll);
    return withCallerStack((async () => {
      checkString(path, 'path');
      const opts = checkOptions<{ signal?: AbortSignal }>(options, 'options', ['signal']);
      const signal = checkSignal(opts.signal);
      const all = checkRecord(calibrators);
      await Promise.all(all.map(([, c]) => c.#queue));
      await save(path, Object.assign({}, ...all.map(([m, c]) => c.#entries(m, true))), { metadata: METADATA, signal });
    })(), caller);
  }

  /** Synchronous twin of {@link saveAll}. */
  static saveAllSync(path: string, calibrators: Record<string, Calibrator>): void {
    checkString(path, 'path');
    const all = checkRecord(calibrators);
    for (const [, c] of all) c.#checkIdle('saveAllSync');
    saveSync(path, Object.assign({}, ...all.map(([m, c]) => c.#entries(m, false))), { metadata: METADATA });
  }

  /**
   * Loads every calibrator of a file: one per `<module>.input_norms` key (`''` for an unprefixed
   * `input_norms`), with that module's `.tokens`, `.input_sumsq` and `.hessian`. Other keys are ignored.
   */
  static loadAll(path: string, options?: { signal?: AbortSignal }): Promise<Record<string, Calibrator>> {
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, Calibrator.loadAll);
    return withCallerStack((async () => {
      checkString(path, 'path');
      const opts = checkOptions<{ signal?: AbortSignal }>(options, 'options', ['signal']);
      const f = await open(path, { signal: checkSignal(opts.signal) });
      try {
        return Calibrator.#allFromFile(f);
      } finally {
        f.close();
      }
    })(), caller);
  }

  /** Synchronous twin of {@link loadAll}. */
  static loadAllSync(path: string): Record<string, Calibrator> {
    checkString(path, 'path');
    const f = openSync(path);
    try {
      return Calibrator.#allFromFile(f);
    } finally {
      f.close();
    }
  }

  /** A short description, e.g. `Calibrator<4096, hessian, 2048 tokens>`. */
  toString(): string {
    return `Calibrator<${this.inFeatures}${this.hasHessian ? ', hessian' : ''}, ${this.#count} tokens>`;
  }

  #checkIdle(what: string): void {
    if (this.#pending > 0)
      throw new WeightsmithError('ERR_CONFIG', `${what}() cannot run while an asynchronous add() of this Calibrator is in progress; await it first`);
  }

  #prepare(x: unknown, nonFinite: 'error' | 'zero' | 'propagate'): Prepared {
    if (!(x instanceof Tensor)) throw invalidArgType('The "x" argument must be a Tensor');
    if (x.dtype !== 'f32' && x.dtype !== 'f16' && x.dtype !== 'bf16')
      throw new WeightsmithError('ERR_DTYPE', `calibration inputs must be f32, f16 or bf16, not ${x.dtype}`);
    const last = x.shape.length ? x.shape[x.shape.length - 1] : -1;
    if (last !== this.inFeatures)
      throw new WeightsmithError('ERR_SHAPE', `x of shape [${x.shape.join(', ')}] does not end in inFeatures = ${this.inFeatures}`);
    const tokens = x.numel / this.inFeatures;
    let t = x;
    if (nonFinite === 'zero') {
      const f = x.dtype === 'f32' ? (x.data as Float32Array) : (x.to('f32').data as Float32Array);
      t = tensor(Float32Array.from(f, (v) => (Number.isFinite(v) ? v : 0)), x.shape);
    }
    return { x: t, tokens, checkFinite: nonFinite === 'error' };
  }

  /** The tensors of a file; `copy`: a snapshot (an async save must not see later batches). */
  #entries(module: string, copy: boolean): Record<string, Tensor> {
    const out: Record<string, Tensor> = {
      [keyOf(module, 'input_norms')]: this.#norms(),
      [keyOf(module, 'input_sumsq')]: tensor(this.#sums.slice(), [this.inFeatures]),
      [keyOf(module, 'tokens')]: tensor(BigInt64Array.of(BigInt(this.#count)), [1]),
    };
    if (this.#hessian) out[keyOf(module, 'hessian')] = tensor(copy ? this.#hessian.slice() : this.#hessian, [this.inFeatures, this.inFeatures]);
    return out;
  }

  /** A calibrator from the statistics of `module` in an open file. */
  static #fromFile(f: WeightFile, module: string): Calibrator {
    const { inFeatures, count, sums, hessian } = readStats(f, module);
    const c = new Calibrator(inFeatures, { hessian: hessian !== null });
    c.#count = count;
    c.#sums.set(sums);
    if (hessian) c.#hessian!.set(hessian);
    return c;
  }

  /** Every module's calibrator in an open file. */
  static #allFromFile(f: WeightFile): Record<string, Calibrator> {
    const modules = new Set<string>();
    for (const name of f.names()) {
      if (name === 'input_norms') modules.add('');
      else if (name.endsWith('.input_norms')) modules.add(name.slice(0, -'.input_norms'.length));
    }
    const out: Record<string, Calibrator> = {};
    for (const m of [...modules].sort()) out[m] = Calibrator.#fromFile(f, m);
    return out;
  }
}

function allocF32(n: number): Float32Array {
  try {
    return new Float32Array(n);
  } catch (err) {
    if (err instanceof RangeError) throw new WeightsmithError('ERR_OUT_OF_MEMORY', `cannot allocate a Hessian of ${n} f32 values`);
    throw err;
  }
}

function checkRecord(v: unknown): [string, Calibrator][] {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidArgType('The "calibrators" argument must be an object of module name -> Calibrator');
  const all = Object.entries(v as Record<string, unknown>);
  for (const [m, c] of all)
    if (!(c instanceof Calibrator)) throw invalidArgType(`The "calibrators['${m}']" argument must be a Calibrator`);
  return all as [string, Calibrator][];
}

function floatTensor(f: WeightFile, key: string): Tensor {
  const t = f.get(key);
  if (!(t instanceof Tensor) || !dtypeInfo(t.dtype)?.float || !dtypeInfo(t.dtype)?.arith)
    throw new WeightsmithError('ERR_DTYPE', `calibration statistic '${key}' must be a float tensor`, { path: f.path, tensor: key });
  return t;
}

function need(f: WeightFile, key: string): void {
  if (!f.has(key)) throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `no tensor '${key}' in ${f.path}`, { path: f.path, tensor: key });
}

function readStats(f: WeightFile, module: string): { inFeatures: number; count: number; sums: Float64Array; hessian: Float32Array | null } {
  const kNorms = keyOf(module, 'input_norms'), kTokens = keyOf(module, 'tokens');
  const kSumsq = keyOf(module, 'input_sumsq'), kHess = keyOf(module, 'hessian');
  need(f, kNorms);
  need(f, kTokens);
  const norms = floatTensor(f, kNorms);
  if (norms.shape.length !== 1 || norms.shape[0] < 1)
    throw new WeightsmithError('ERR_SHAPE', `'${kNorms}' must be a non-empty vector, not [${norms.shape.join(', ')}]`, { path: f.path, tensor: kNorms });
  const inFeatures = norms.shape[0];
  const tok = f.get(kTokens);
  if (!(tok instanceof Tensor) || !['i64', 'u64', 'i32', 'u32'].includes(tok.dtype))
    throw new WeightsmithError('ERR_DTYPE', `'${kTokens}' must be an integer tensor`, { path: f.path, tensor: kTokens });
  if (tok.numel !== 1) throw new WeightsmithError('ERR_SHAPE', `'${kTokens}' must hold one value`, { path: f.path, tensor: kTokens });
  const count = Number(tok.data[0]);
  if (!Number.isSafeInteger(count) || count < 0)
    throw new WeightsmithError('ERR_SHAPE', `'${kTokens}' = ${String(tok.data[0])} is not a token count`, { path: f.path, tensor: kTokens });
  let sums: Float64Array;
  if (f.has(kSumsq)) {
    const s = floatTensor(f, kSumsq);
    if (s.shape.length !== 1 || s.shape[0] !== inFeatures)
      throw new WeightsmithError('ERR_SHAPE', `'${kSumsq}' has shape [${s.shape.join(', ')}], not [${inFeatures}]`, { path: f.path, tensor: kSumsq });
    sums = s.to('f64').data as Float64Array;
  } else {
    const n = norms.to('f64').data as Float64Array;
    sums = Float64Array.from(n, (v) => v * v * count);
  }
  let hessian: Float32Array | null = null;
  if (f.has(kHess)) {
    const h = floatTensor(f, kHess);
    if (h.shape.length !== 2 || h.shape[0] !== inFeatures || h.shape[1] !== inFeatures)
      throw new WeightsmithError('ERR_SHAPE', `'${kHess}' has shape [${h.shape.join(', ')}], not [${inFeatures}, ${inFeatures}]`, { path: f.path, tensor: kHess });
    hessian = h.to('f32').data as Float32Array;
  }
  return { inFeatures, count, sums, hessian };
}
