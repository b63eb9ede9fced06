// SPDX-License-Identifier: MIT
// Calibrator: the statistics against the committed numpy fixtures (f64), the blocked SIMD kernels against the
// scalar reference on odd sizes, bit-identical results for 1 and 2 threads, save / load round trips, and the
// error codes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Calibrator, getThreads, openSync, saveSync, setThreads, tensor, Tensor, WeightsmithError } from '../../lib/index';
import { native } from '../../lib/native';
import { repoRoot, tempDir } from '../helpers/paths';

interface Step { tokens: number; x_f32_le: string; count: number; sums_f64_le: string; norms_f64_le: string; hessian_f64_le: string }
interface FixtureSet { in: number; steps: Step[] }
const doc = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test/fixtures/calib-golden.json'), 'utf8')) as { exact: FixtureSet; general: FixtureSet };
const raw = (b64: string) => {
  const b = Buffer.from(b64, 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};
const f32s = (b64: string) => new Float32Array(raw(b64));
const f64s = (b64: string) => new Float64Array(raw(b64));
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const TIERS = ['baseline', 'avx2', 'avx512'] as const;
const tiers = TIERS.slice(0, TIERS.indexOf(native.cpuInfo().simdSupported) + 1);
const threads0 = getThreads();
let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('ws-calib-'); });
afterAll(() => {
  native.setSimd(native.cpuInfo().simdSupported);
  setThreads(threads0);
  tmp.cleanup();
});

/** Deterministic values about N(0, 1) (a sum of uniforms), some columns scaled up. */
function randomX(tokens: number, inF: number, seed: number): Float32Array {
  const out = new Float32Array(tokens * inF);
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  for (let i = 0; i < out.length; i++) out[i] = (u() + u() + u() - 1.5) * 2 * ((i % inF) % 11 === 3 ? 30 : 1);
  return out;
}

/** Max of |a - b| / sqrt(r_ii r_jj) over a symmetric [n, n] matrix (errors relative to the entry's scale). */
function scaledError(a: ArrayLike<number>, ref: ArrayLike<number>, n: number): number {
  let worst = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const scale = Math.sqrt(Math.abs(ref[i * n + i] * ref[j * n + j])) || 1e-30;
      worst = Math.max(worst, Math.abs(a[i * n + j] - ref[i * n + j]) / scale);
    }
  return worst;
}

function saved(c: Calibrator, module?: string): Record<string, Tensor> {
  const file = path.join(tmp.dir, `peek-${Math.random().toString(36).slice(2)}.safetensors`);
  c.saveSync(file, module === undefined ? undefined : { module });
  const f = openSync(file);
  const out: Record<string, Tensor> = {};
  for (const name of f.names()) out[name] = (f.get(name) as Tensor).to(f.info(name).dtype);
  f.close();
  fs.rmSync(file);
  return out;
}

describe('statistics equal the numpy fixtures', () => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    it(`exact set, ${dtype} input, every SIMD tier: sums and norms bit-exact, Hessian within f32 rounding`, () => {
      const set = doc.exact;
      for (const tier of tiers) {
        native.setSimd(tier);
        const c = new Calibrator(set.in, { hessian: true });
        for (const step of set.steps) {
          const x = tensor(f32s(step.x_f32_le), [step.tokens, set.in]);
          c.addSync(dtype === 'f32' ? x : x.to(dtype));
          expect(c.count).toBe(step.count);
          const norms = f64s(step.norms_f64_le);
          expect(Array.from(c.inputNorms().data as Float32Array)).toEqual(Array.from(norms, Math.fround));
          expect(scaledError(c.hessian().data as Float32Array, f64s(step.hessian_f64_le), set.in)).toBeLessThan(2e-6);
        }
        const last = set.steps[set.steps.length - 1];
        expect(Array.from(saved(c).input_sumsq.data as Float64Array)).toEqual(Array.from(f64s(last.sums_f64_le)));
      }
    });
  }

  it('general set (f32, uneven column scales): sums to 1e-12, norms to f32 rounding, Hessian to 1e-5', () => {
    const set = doc.general;
    for (const tier of tiers) {
      native.setSimd(tier);
      const c = new Calibrator(set.in, { hessian: true });
      for (const step of set.steps) {
        c.addSync(tensor(f32s(step.x_f32_le), [step.tokens, set.in]));
        const norms = f64s(step.norms_f64_le);
        const ours = c.inputNorms().data as Float32Array;
        for (let j = 0; j < set.in; j++) expect(Math.abs(ours[j] - norms[j]) / norms[j]).toBeLessThan(1e-7);
        expect(scaledError(c.hessian().data as Float32Array, f64s(step.hessian_f64_le), set.in)).toBeLessThan(1e-5);
        const sums = saved(c).input_sumsq.data as Float64Array;
        const ref = f64s(step.sums_f64_le);
        for (let j = 0; j < set.in; j++) expect(Math.abs(sums[j] - ref[j]) / ref[j]).toBeLessThan(1e-12);
      }
    }
  });
});

describe('blocked kernels against the scalar reference', () => {
  const SIZES: [number, number][] = [[1, 1], [3, 1], [1, 7], [129, 7], [3, 31], [129, 33], [300, 33], [129, 257], [1, 257], [130, 1000]];

  for (const tier of TIERS) {
    it.runIf(tiers.includes(tier))(`${tier}: x^T x within f32 rounding, symmetric, bit-identical for 1 and 2 threads`, () => {
      native.setSimd(tier);
      for (const [tokens, n] of SIZES) {
        const x = randomX(tokens, n, tokens * 7919 + n);
        const ref = new Float32Array(n * n);
        native.calibGramSync(x, 'f32', tokens, n, ref, 'ref');
        setThreads(1);
        const g1 = new Float32Array(n * n);
        native.calibGramSync(x, 'f32', tokens, n, g1);
        setThreads(2);
        const g2 = new Float32Array(n * n);
        native.calibGramSync(x, 'f32', tokens, n, g2);
        expect(bytesOf(g2).equals(bytesOf(g1)), `${tokens}x${n}: 1 vs 2 threads`).toBe(true);
        // Fused multiply-adds and partial sums per token block: a few f32 ulps of the entry's scale. Without FMA
        // (the baseline tier) the blocked kernel sums in the reference's order and gives its bits.
        if (tier === 'baseline') expect(bytesOf(g2).equals(bytesOf(ref)), `${tokens}x${n}: baseline vs ref`).toBe(true);
        expect(scaledError(g2, ref, n), `${tokens}x${n}`).toBeLessThan(1e-7 * Math.max(8, Math.sqrt(tokens)));
        for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) if (g2[i * n + j] !== g2[j * n + i]) throw new Error(`${tokens}x${n}: not symmetric at ${i},${j}`);
      }
    });

    it.runIf(tiers.includes(tier))(`${tier}: whole batch updates (sums bit-equal, Hessian within f32 rounding, baseline bit-equal)`, () => {
      native.setSimd(tier);
      for (const [tokens, n] of [[129, 33], [3, 257], [300, 100]] as [number, number][]) {
        const sums = new Float64Array(n), sumsRef = new Float64Array(n);
        // A non-symmetric start (as a foreign file could hold): every entry is updated from its own old value.
        const h = randomX(n, n, 99).map(Math.abs), hRef = h.slice();
        let seen = 10;
        for (let b = 0; b < 3; b++) {
          const x = randomX(tokens + b, n, b + 1);
          native.calibAddSync(x, 'f32', tokens + b, n, seen, sums, h, true);
          native.calibAddSync(x, 'f32', tokens + b, n, seen, sumsRef, hRef, true, 'ref');
          seen += tokens + b;
        }
        expect(bytesOf(sums).equals(bytesOf(sumsRef))).toBe(true);
        if (tier === 'baseline') expect(bytesOf(h).equals(bytesOf(hRef))).toBe(true);
        expect(scaledError(h, hRef, n)).toBeLessThan(1e-5);
      }
    });
  }

  it('a batch longer than one pass is applied as consecutive sub-batches, as the reference does', () => {
    const pass = 2 ** 25 / 16;  // calib_pass_tokens(1): the packed copy of a pass stays under 2^25 floats
    const tokens = pass + 77;
    const x = randomX(tokens, 1, 3);
    const run = (backend: 'ref' | 'auto', parts: number[]) => {
      const sums = new Float64Array(1);
      const h = new Float32Array(1);
      let seen = 0;
      for (const b of parts) {
        native.calibAddSync(x.subarray(seen, seen + b), 'f32', b, 1, seen, sums, h, true, backend);
        seen += b;
      }
      return h[0];
    };
    const whole = run('auto', [tokens]);
    expect(whole).toBe(run('auto', [pass, 77]));
    expect(run('ref', [tokens])).toBe(run('ref', [pass, 77]));
    expect(Math.abs(whole - run('ref', [tokens])) / whole).toBeLessThan(1e-5);
  });

  it('x^T x of no tokens is zero', () => {
    const g = new Float32Array(9).fill(7);
    native.calibGramSync(new Float32Array(0), 'f32', 0, 3, g);
    expect(Array.from(g)).toEqual(new Array(9).fill(0));
  });

  it('f16 and bf16 inputs give the bits of their f32 widening', () => {
    const n = 77, tokens = 140;
    const x = tensor(randomX(tokens, n, 5), [tokens, n]);
    for (const dtype of ['f16', 'bf16'] as const) {
      const narrow = x.to(dtype);
      const wide = narrow.to('f32');
      const a = new Calibrator(n, { hessian: true }), b = new Calibrator(n, { hessian: true });
      a.addSync(narrow);
      b.addSync(wide);
      expect(bytesOf(a.hessian().data).equals(bytesOf(b.hessian().data))).toBe(true);
      expect(bytesOf(a.inputNorms().data).equals(bytesOf(b.inputNorms().data))).toBe(true);
    }
  });

  it('the Calibrator is bit-identical for 1 and 2 threads', () => {
    const n = 200, tokens = 257;
    const x = tensor(randomX(tokens, n, 9), [tokens, n]);
    const run = (threads: number) => {
      setThreads(threads);
      const c = new Calibrator(n, { hessian: true });
      c.addSync(x);
      c.addSync(x);
      return c;
    };
    const one = run(1), two = run(2);
    setThreads(threads0);
    expect(bytesOf(one.hessian().data).equals(bytesOf(two.hessian().data))).toBe(true);
    expect(bytesOf(one.inputNorms().data).equals(bytesOf(two.inputNorms().data))).toBe(true);
  });
});

describe('Calibrator API', () => {
  const n = 24;
  const x1 = tensor(randomX(40, n, 1), [40, n]);
  const x2 = tensor(randomX(17, n, 2), [17, n]);

  it('takes [..., in] inputs; count is in tokens; norms and Hessian start at zero', () => {
    const c = new Calibrator(n, { hessian: true });
    expect(c.count).toBe(0);
    expect(Array.from(c.inputNorms().data as Float32Array)).toEqual(new Array(n).fill(0));
    expect((c.hessian().data as Float32Array).every((v) => v === 0)).toBe(true);
    c.addSync(x1.reshape([4, 10, n]));
    expect(c.count).toBe(40);
    const d = new Calibrator(n, { hessian: true });
    d.addSync(x1);
    expect(bytesOf(c.hessian().data).equals(bytesOf(d.hessian().data))).toBe(true);
    expect(c.hessian().shape).toEqual([n, n]);
    expect(c.inputNorms().shape).toEqual([n]);
    expect(c.inputNorms().dtype).toBe('f32');
    expect(String(c)).toBe(`Calibrator<${n}, hessian, 40 tokens>`);
  });

  it('async add equals addSync, and queued batches run in call order', async () => {
    const a = new Calibrator(n, { hessian: true }), b = new Calibrator(n, { hessian: true });
    a.addSync(x1);
    a.addSync(x2);
    await Promise.all([b.add(x1), b.add(x2)]);
    expect(b.count).toBe(57);
    expect(bytesOf(a.hessian().data).equals(bytesOf(b.hessian().data))).toBe(true);
    expect(bytesOf(a.inputNorms().data).equals(bytesOf(b.inputNorms().data))).toBe(true);
  });

  it('sync methods refuse to run while an async add is in flight', async () => {
    const c = new Calibrator(n, { hessian: true });
    const p = c.add(x1);
    expect(() => c.hessian()).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => c.addSync(x2)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    await p;
    expect(c.count).toBe(40);
  });

  it('an aborted add rejects with AbortError and changes nothing', async () => {
    const c = new Calibrator(n, { hessian: true });
    c.addSync(x1);
    const before = bytesOf(c.hessian().data);
    const ac = new AbortController();
    ac.abort();
    await expect(c.add(x2, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(c.count).toBe(40);
    expect(bytesOf(c.hessian().data).equals(before)).toBe(true);
  });

  it('an abort during a batch either rejects with nothing changed or lets the whole batch finish', async () => {
    const big = tensor(randomX(4096, 512, 4), [4096, 512]);
    for (const delay of [0, 1, 5]) {
      const c = new Calibrator(512, { hessian: true });
      c.addSync(tensor(randomX(8, 512, 5), [8, 512]));
      const h0 = bytesOf(c.hessian().data);
      const ac = new AbortController();
      const p = c.add(big, { signal: ac.signal });
      setTimeout(() => ac.abort(), delay);
      const outcome = await p.then(() => 'done', (err: { code?: string }) => err.code);
      if (outcome === 'done') {
        expect(c.count).toBe(8 + 4096);
        expect(bytesOf(c.hessian().data).equals(h0)).toBe(false);
      } else {
        expect(outcome).toBe('ABORT_ERR');
        expect(c.count).toBe(8);
        expect(bytesOf(c.hessian().data).equals(h0)).toBe(true);
      }
    }
  });

  it('norms only: hessian() is ERR_CONFIG', () => {
    const c = new Calibrator(n);
    c.addSync(x1);
    expect(c.hasHessian).toBe(false);
    expect(() => c.hessian()).toThrow(WeightsmithError);
    expect(() => c.hessian()).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    const h = new Calibrator(n, { hessian: true });
    h.addSync(x1);
    expect(bytesOf(c.inputNorms().data).equals(bytesOf(h.inputNorms().data))).toBe(true);
  });

  it('non-finite inputs: ERR_NON_FINITE with the first index and nothing changed; zero; propagate', async () => {
    const bad = new Float32Array(x2.data as Float32Array);
    bad[5 * n + 7] = NaN;
    bad[9 * n + 1] = Infinity;
    const xb = tensor(bad, [17, n]);
    const c = new Calibrator(n, { hessian: true });
    c.addSync(x1);
    const h0 = bytesOf(c.hessian().data), n0 = bytesOf(c.inputNorms().data);
    expect(() => c.addSync(xb)).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 5 * n + 7 }));
    await expect(c.add(xb)).rejects.toMatchObject({ code: 'ERR_NON_FINITE', index: 5 * n + 7 });
    expect(() => c.addSync(xb.to('bf16'))).toThrow(expect.objectContaining({ code: 'ERR_NON_FINITE', index: 5 * n + 7 }));
    expect(c.count).toBe(40);
    expect(bytesOf(c.hessian().data).equals(h0) && bytesOf(c.inputNorms().data).equals(n0)).toBe(true);

    c.addSync(xb, { nonFinite: 'zero' });
    const zeroed = new Calibrator(n, { hessian: true });
    zeroed.addSync(x1);
    zeroed.addSync(tensor(Float32Array.from(bad, (v) => (Number.isFinite(v) ? v : 0)), [17, n]));
    expect(bytesOf(c.hessian().data).equals(bytesOf(zeroed.hessian().data))).toBe(true);

    const p = new Calibrator(n, { hessian: true });
    await p.add(xb, { nonFinite: 'propagate' });
    const norms = p.inputNorms().data as Float32Array;
    expect(Number.isNaN(norms[7])).toBe(true);
    expect(Number.isFinite(norms[0])).toBe(true);
    expect(() => c.addSync(x1, { nonFinite: 'skip' as 'zero' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('argument errors', async () => {
    expect(() => new Calibrator(0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Calibrator(1.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Calibrator('8' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Calibrator(8, { hesian: true } as object)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => new Calibrator(8, { hessian: 1 as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const c = new Calibrator(n, { hessian: true });
    expect(() => c.addSync(tensor(new Float32Array(2 * (n + 1)), [2, n + 1]))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => c.addSync(tensor(new Float32Array(1), []))).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => c.addSync(tensor(new Int32Array(2 * n), [2, n]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => c.addSync(tensor(new Float64Array(2 * n), [2, n]))).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    expect(() => c.addSync(new Float32Array(n) as unknown as Tensor)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    await expect(c.add(tensor(new Float32Array(n + 1), [n + 1]))).rejects.toMatchObject({ code: 'ERR_SHAPE' });
    await expect(c.add(x1, { signal: 'no' as unknown as AbortSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(c.count).toBe(0);
    c.addSync(tensor(new Float32Array(0), [0, n]));
    expect(c.count).toBe(0);
  });
});

describe('save and load', () => {
  const n = 40;
  const xs = [0, 1, 2].map((k) => tensor(randomX(30 + k, n, 11 + k), [30 + k, n]));

  it('writes input_norms, input_sumsq, hessian and tokens, with or without a module prefix', async () => {
    const c = new Calibrator(n, { hessian: true });
    c.addSync(xs[0]);
    const file = path.join(tmp.dir, 'one.safetensors');
    await c.save(file, { module: 'model.layers.0.mlp.down_proj' });
    const f = openSync(file);
    expect(f.names().sort()).toEqual(['hessian', 'input_norms', 'input_sumsq', 'tokens'].map((k) => `model.layers.0.mlp.down_proj.${k}`));
    expect(f.info('model.layers.0.mlp.down_proj.hessian')).toMatchObject({ dtype: 'f32', shape: [n, n] });
    expect(f.info('model.layers.0.mlp.down_proj.input_norms')).toMatchObject({ dtype: 'f32', shape: [n] });
    expect(f.info('model.layers.0.mlp.down_proj.tokens')).toMatchObject({ dtype: 'i64', shape: [1] });
    expect((f.get('model.layers.0.mlp.down_proj.tokens') as Tensor).data[0]).toBe(30n);
    f.close();
    const plain = new Calibrator(n);
    plain.addSync(xs[0]);
    plain.saveSync(file);
    const g = openSync(file);
    expect(g.names().sort()).toEqual(['input_norms', 'input_sumsq', 'tokens']);
    g.close();
  });

  it('a loaded calibrator continues bit for bit', async () => {
    const whole = new Calibrator(n, { hessian: true });
    for (const x of xs) whole.addSync(x);
    const first = new Calibrator(n, { hessian: true });
    first.addSync(xs[0]);
    const file = path.join(tmp.dir, 'resume.safetensors');
    await first.save(file, { module: 'q' });
    const resumed = await Calibrator.load(file, { module: 'q' });
    expect(resumed.inFeatures).toBe(n);
    expect(resumed.hasHessian).toBe(true);
    expect(resumed.count).toBe(30);
    resumed.addSync(xs[1]);
    await resumed.add(xs[2]);
    expect(resumed.count).toBe(whole.count);
    expect(bytesOf(resumed.hessian().data).equals(bytesOf(whole.hessian().data))).toBe(true);
    expect(bytesOf(resumed.inputNorms().data).equals(bytesOf(whole.inputNorms().data))).toBe(true);
    const sync = Calibrator.loadSync(file, { module: 'q' });
    expect(bytesOf(sync.hessian().data).equals(bytesOf(first.hessian().data))).toBe(true);
  });

  it('without input_sumsq the sums come from the norms', () => {
    const c = new Calibrator(n);
    c.addSync(xs[0]);
    const file = path.join(tmp.dir, 'norms-only.safetensors');
    saveSync(file, { input_norms: c.inputNorms(), tokens: tensor([30n], [1], 'i64') });
    const d = Calibrator.loadSync(file);
    expect(d.count).toBe(30);
    expect(d.hasHessian).toBe(false);
    d.addSync(xs[1]);
    c.addSync(xs[1]);
    const a = d.inputNorms().data as Float32Array, b = c.inputNorms().data as Float32Array;
    for (let j = 0; j < n; j++) expect(Math.abs(a[j] - b[j]) / b[j]).toBeLessThan(1e-6);
  });

  it('saveAll / loadAll hold many modules in one file', async () => {
    const mods: Record<string, Calibrator> = {
      'model.layers.0.self_attn.q_proj': new Calibrator(n, { hessian: true }),
      'model.layers.0.mlp.down_proj': new Calibrator(2 * n),
      'lm_head': new Calibrator(n, { hessian: true }),
    };
    mods['model.layers.0.self_attn.q_proj'].addSync(xs[0]);
    mods['model.layers.0.mlp.down_proj'].addSync(tensor(randomX(5, 2 * n, 3), [5, 2 * n]));
    mods.lm_head.addSync(xs[1]);
    const file = path.join(tmp.dir, 'all.safetensors');
    await Calibrator.saveAll(file, mods);
    const back = await Calibrator.loadAll(file);
    expect(Object.keys(back).sort()).toEqual(Object.keys(mods).sort());
    for (const [m, c] of Object.entries(mods)) {
      expect(back[m].inFeatures).toBe(c.inFeatures);
      expect(back[m].count).toBe(c.count);
      expect(back[m].hasHessian).toBe(c.hasHessian);
      expect(bytesOf(back[m].inputNorms().data).equals(bytesOf(c.inputNorms().data))).toBe(true);
      if (c.hasHessian) expect(bytesOf(back[m].hessian().data).equals(bytesOf(c.hessian().data))).toBe(true);
    }
    Calibrator.saveAllSync(file, { a: mods.lm_head });
    expect(Object.keys(Calibrator.loadAllSync(file))).toEqual(['a']);
    const one = await Calibrator.load(file, { module: 'a' });
    expect(one.count).toBe(mods.lm_head.count);
  });

  it('save captures the batches added before it, not those added while it writes', async () => {
    const c = new Calibrator(n, { hessian: true });
    c.addSync(xs[0]);
    const snapshot = bytesOf(c.hessian().data);
    const file = path.join(tmp.dir, 'snap.safetensors');
    const saving = c.save(file);
    const adding = c.add(xs[1]);
    await Promise.all([saving, adding]);
    expect(c.count).toBe(61);
    const back = Calibrator.loadSync(file);
    expect(back.count).toBe(30);
    expect(bytesOf(back.hessian().data).equals(snapshot)).toBe(true);
  });

  it('loadAll takes one calibrator per input_norms key and ignores other tensors', () => {
    const c = new Calibrator(n);
    c.addSync(xs[0]);
    const file = path.join(tmp.dir, 'mixed.safetensors');
    saveSync(file, {
      'm.input_norms': c.inputNorms(), 'm.tokens': tensor([30n], [1], 'i64'), 'model.embed.weight': tensor(new Float32Array(4), [2, 2]),
      'other.tokens': tensor([1n], [1], 'i64'),
    });
    const all = Calibrator.loadAllSync(file);
    expect(Object.keys(all)).toEqual(['m']);
    expect(all.m.count).toBe(30);
  });

  it('load errors: missing module, bad shapes, bad dtypes', async () => {
    const c = new Calibrator(n, { hessian: true });
    c.addSync(xs[0]);
    const file = path.join(tmp.dir, 'errs.safetensors');
    c.saveSync(file, { module: 'a' });
    await expect(Calibrator.load(file, { module: 'b' })).rejects.toMatchObject({ code: 'ERR_TENSOR_NOT_FOUND' });
    expect(() => Calibrator.loadSync(file)).toThrow(expect.objectContaining({ code: 'ERR_TENSOR_NOT_FOUND' }));
    const bad = path.join(tmp.dir, 'bad.safetensors');
    saveSync(bad, { input_norms: c.inputNorms(), tokens: tensor([30n], [1], 'i64'), hessian: tensor(new Float32Array(n * (n - 1)), [n, n - 1]) });
    expect(() => Calibrator.loadSync(bad)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    saveSync(bad, { input_norms: tensor(new Int32Array(n), [n]), tokens: tensor([30n], [1], 'i64') });
    expect(() => Calibrator.loadSync(bad)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE' }));
    saveSync(bad, { input_norms: c.inputNorms(), tokens: tensor([-1n], [1], 'i64') });
    expect(() => Calibrator.loadSync(bad)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
    expect(() => c.saveSync(file, { module: 3 as unknown as string })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    await expect(Calibrator.saveAll(file, { a: {} as Calibrator })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});
