// SPDX-License-Identifier: MIT
'use strict';
/**
 * Dense factorizations on 2 threads, in GFLOP/s of the nominal LAPACK flop counts, against numpy / scipy
 * (OpenBLAS + LAPACK) in their own process in the same run (bench/peers/factor.py):
 * - `cholesky 4096 f32`: choleskySync on an SPD matrix (X Xᵀ / k + 0.01 I, the shape of a GPTQ Hessian),
 *   n^3 / 3 flops, against numpy.linalg.cholesky;
 * - `gptq chain 4096 f32`: cholesky -> choleskyInverse -> cholesky upper (the GPTQ inverse Hessian), 4 n^3 / 3
 *   flops (potrf + potri + potrf), against scipy's LAPACK spotrf / spotri / spotrf (and numpy cholesky + cho_solve
 *   of the identity + cholesky, a torch-style formula, as a variant);
 * - `dgemm 1024`: matmulSync on two f64 matrices, 2 n^3 flops, against numpy f64 `a @ b`.
 * Each case checks its result (the reconstruction L Lᵀ = A on a slice, the chain against the inverse, dgemm against
 * the scalar reference on a slice) and reports a mismatch as an error.
 */
const { ws, native, timeSync } = require('../harness');

function rnd(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
}

/** X Xᵀ / k + 0.01 I in f32, X n x (n + 64). */
function hessian(api, n) {
  const k = n + 64, r = rnd(7);
  const x = api.tensor(Float32Array.from({ length: n * k }, r), [n, k]);
  const h = api.syrkSync(x);
  const d = h.data;
  for (let i = 0; i < n * n; i++) d[i] /= k;
  for (let i = 0; i < n; i++) d[i * n + i] += 0.01;
  return h;
}

/** max |(L Lᵀ - A)[i][j]| / max |A| over the first `rows` rows, in f64. */
function reconstructionError(l, a, n, rows) {
  let worst = 0, scale = 0;
  for (let i = 0; i < rows; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let t = 0; t <= j; t++) s += l[i * n + t] * l[j * n + t];
      worst = Math.max(worst, Math.abs(s - a[i * n + j]));
      scale = Math.max(scale, Math.abs(a[i * n + j]));
    }
  return worst / scale;
}

function choleskyCase(n) {
  return {
    name: `cholesky ${n} f32`,
    unit: 'GFLOP/s',
    targets: {},  // no DESIGN.md target: reported
    peer: { label: 'numpy cholesky', script: 'factor.py', args: ['cholesky', String(n)] },
    async run() {
      const api = ws();
      api.setThreads(2);
      const h = hessian(api, n);
      let l = api.choleskySync(h);
      const samples = timeSync(() => { l = api.choleskySync(h); }, { warmup: 1, reps: 7, minReps: 3, budget: 6 });
      const err = reconstructionError(l.data, h.data, n, 64);
      return {
        size: `${n}x${n} f32, ${(n ** 3 / 3 / 1e9).toFixed(1)} GFLOP`,
        bytes: n ** 3 / 3,
        samples,
        errors: err < 1e-5 ? [] : [`L Lᵀ differs from A by ${err}`],
      };
    },
  };
}

function chainCase(n) {
  return {
    name: `gptq chain ${n} f32`,
    unit: 'GFLOP/s',
    targets: {},  // no DESIGN.md target: reported
    peer: { label: 'scipy potrf/potri/potrf', script: 'factor.py', args: ['chain', String(n)] },
    async run() {
      const api = ws();
      api.setThreads(2);
      const h = hessian(api, n);
      const chain = () => api.choleskySync(api.choleskyInverseSync(api.choleskySync(h)), { upper: true });
      let u = chain();
      const samples = timeSync(() => { u = chain(); }, { warmup: 1, reps: 5, minReps: 3, budget: 8 });
      // U is the upper factor of H^-1: (Uᵀ U) H = I, checked on the first rows (f64 sums).
      const U = u.data, H = h.data, rows = 8;
      let worst = 0;
      const inv = new Float64Array(n);
      for (let i = 0; i < rows; i++) {
        inv.fill(0);
        for (let t = 0; t <= i; t++) { const f = U[t * n + i]; for (let j = t; j < n; j++) inv[j] += f * U[t * n + j]; }
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < n; t++) s += inv[t] * H[t * n + j];
          worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
        }
      }
      return {
        size: `${n}x${n} f32, ${(4 * n ** 3 / 3 / 1e9).toFixed(1)} GFLOP`,
        bytes: (4 * n ** 3) / 3,
        samples,
        errors: worst < 1e-2 ? [] : [`(Uᵀ U) H differs from I by ${worst}`],
      };
    },
  };
}

function dgemmCase(n) {
  return {
    name: `dgemm ${n}`,
    unit: 'GFLOP/s',
    targets: {},  // no DESIGN.md target: reported
    peer: { label: 'numpy f64 a @ b', script: 'factor.py', args: ['dgemm', String(n)] },
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const r = rnd(1);
      const a = api.tensor(Float64Array.from({ length: n * n }, r), [n, n]);
      const b = api.tensor(Float64Array.from({ length: n * n }, r), [n, n]);
      let c = api.matmulSync(a, b);
      const samples = timeSync(() => { c = api.matmulSync(a, b); }, { warmup: 1, reps: 7, minReps: 3, budget: 4 });
      const rows = Math.min(32, n);
      const ref = new Float64Array(rows * n);
      addon.dmatmulSync(a.data.subarray(0, rows * n), b.data, rows, n, n, false, false, ref, 'ref');
      const same = Buffer.from(ref.buffer).equals(Buffer.from(c.data.buffer, c.data.byteOffset, rows * n * 8));
      const m = 128;
      const small = new Float64Array(m * m);
      api.setThreads(1);
      const refSamples = timeSync(() => addon.dmatmulSync(a.data.subarray(0, m * m), b.data.subarray(0, m * m), m, m, m, false, false, small, 'ref'),
        { warmup: 0, reps: 3, minReps: 1, budget: 1 });
      api.setThreads(2);
      return {
        size: `${n}x${n} @ ${n}x${n} f64, ${(2 * n ** 3 / 1e9).toFixed(1)} GFLOP`,
        bytes: 2 * n ** 3,
        samples,
        ref: { bytes: 2 * m * m * m, samples: refSamples, size: `${m}x${m}` },
        errors: same ? [] : ['the kernel differs from the reference'],
      };
    },
  };
}

module.exports = { cases: [choleskyCase(4096), chainCase(4096), dgemmCase(1024)] };
