// SPDX-License-Identifier: MIT
'use strict';
/**
 * qr, svd and svdBatched (2 threads) on uniform [-0.5, 0.5) f32 matrices, timed against numpy in its own process in
 * the same run (bench/peers/svd.py: np.linalg.svd(a, full_matrices=False), LAPACK gesdd, and np.linalg.qr). The
 * ratio is numpy's time over ours (> 1: faster than numpy). Targets (issue 5): svd 1024x1024 within 1.5x of numpy
 * (ratio >= 0.67), svdBatched at least 5x faster than numpy; the other sizes are reported. Each case checks its
 * result: ||A - U S Vt||_F / ||A||_F <= 1e-5 sqrt(max(m, n)) (one matrix of a batch), ||A - QR|| likewise.
 */
const { ws, timeSync } = require('../harness');

function rand(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  return out;
}

// ||A - B||_F / ||A||_F for two f32 arrays.
function relErr(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return Math.sqrt(num / den);
}

// U diag(S) Vt through matmul (U scaled by S column-wise first).
function reconstruct(api, U, S, Vt) {
  const [m, k] = U.shape;
  const us = new Float32Array(m * k);
  const u = U.data, s = S.data;
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us[i * k + j] = u[i * k + j] * s[j];
  return api.matmulSync(api.tensor(us, [m, k]), Vt).data;
}

function svdCase(m, n, { target, reps = 5, budget = 6, warmup = 1 } = {}) {
  return {
    name: `svd ${m}x${n}`,
    unit: 'ms',
    targets: target ? { peer: target } : {},
    peer: { label: 'numpy svd', script: 'svd.py', args: ['svd', String(m), String(n), String(reps)] },
    async run() {
      const api = ws();
      api.setThreads(2);
      const a = api.tensor(rand(m * n, 1), [m, n]);
      let r;
      // The big case runs once, without warm-up.
      const samples = timeSync(() => { r = api.svdSync(a); }, { warmup, reps, minReps: 1, budget });
      const err = relErr(a.data, reconstruct(api, r.U, r.S, r.Vt));
      const bound = 1e-5 * Math.sqrt(Math.max(m, n));
      return {
        size: `${m}x${n} f32, thin`,
        samples,
        notes: [`||A - U S Vt|| / ||A|| = ${err.toExponential(2)} (bound ${bound.toExponential(1)})`],
        errors: err <= bound ? [] : [`reconstruction error ${err} above ${bound}`],
      };
    },
  };
}

function batchedCase(b, m, n) {
  return {
    name: `svdBatched ${b}x${m}x${n}`,
    unit: 'ms',
    targets: { peer: 5 },
    peer: { label: 'numpy batched svd', script: 'svd.py', args: ['batched', String(b), String(m), String(n), '5'] },
    async run() {
      const api = ws();
      api.setThreads(2);
      const a = api.tensor(rand(b * m * n, 2), [b, m, n]);
      let r = api.svdBatchedSync(a);
      const samples = timeSync(() => { r = api.svdBatchedSync(a); }, { warmup: 1, reps: 7, minReps: 3, budget: 4 });
      const k = Math.min(m, n), last = b - 1;
      const U = api.tensor(r.U.data.slice(last * m * k, (last + 1) * m * k), [m, k]);
      const S = api.tensor(r.S.data.slice(last * k, (last + 1) * k), [k]);
      const Vt = api.tensor(r.Vt.data.slice(last * k * n, (last + 1) * k * n), [k, n]);
      const err = relErr(a.data.subarray(last * m * n, (last + 1) * m * n), reconstruct(api, U, S, Vt));
      const bound = 1e-5 * Math.sqrt(Math.max(m, n));
      return {
        size: `${b} matrices ${m}x${n} f32`,
        samples,
        notes: [`last matrix: ||A - U S Vt|| / ||A|| = ${err.toExponential(2)}`],
        errors: err <= bound ? [] : [`reconstruction error ${err} above ${bound}`],
      };
    },
  };
}

function qrCase(m, n) {
  return {
    name: `qr ${m}x${n}`,
    unit: 'ms',
    targets: {},
    peer: { label: 'numpy qr', script: 'svd.py', args: ['qr', String(m), String(n), '3'] },
    async run() {
      const api = ws();
      api.setThreads(2);
      const a = api.tensor(rand(m * n, 3), [m, n]);
      let r = api.qrSync(a);
      const samples = timeSync(() => { r = api.qrSync(a); }, { warmup: 0, reps: 5, minReps: 2, budget: 4 });
      const err = relErr(a.data, api.matmulSync(r.Q, r.R).data);
      const bound = 1e-5 * Math.sqrt(Math.max(m, n));
      return {
        size: `${m}x${n} f32, thin Q`,
        samples,
        notes: [`||A - Q R|| / ||A|| = ${err.toExponential(2)}`],
        errors: err <= bound ? [] : [`reconstruction error ${err} above ${bound}`],
      };
    },
  };
}

module.exports = {
  cases: [
    svdCase(1024, 1024, { target: 1 / 1.5 }),
    svdCase(4096, 1024),
    svdCase(4096, 4096, { reps: 1, budget: 1, warmup: 0 }),
    batchedCase(8192, 16, 16),
    batchedCase(1024, 64, 64),
    qrCase(4096, 1024),
  ],
};
