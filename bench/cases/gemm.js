// SPDX-License-Identifier: MIT
'use strict';
/**
 * f32 GEMM (`matmulSync`, square n x n, 2 threads) in GFLOP/s (2 n^3 flops) against numpy's `a @ b` (OpenBLAS
 * sgemm) in its own process, and our scalar reference (one thread, a 128-size product). The case checks a slice of
 * our product against the reference bit for bit (both are f32 FMA chains in k order).
 */
const { ws, native, timeSync } = require('../harness');

function gemmCase(n) {
  const flops = 2 * n * n * n;
  return {
    name: `sgemm ${n}`,
    unit: 'GFLOP/s',
    targets: { peer: 0.7 },
    peer: { label: 'numpy sgemm', script: 'gemm.py', args: [String(n)] },
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      let s = 1;
      const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
      const a = api.tensor(Float32Array.from({ length: n * n }, rnd), [n, n]);
      const b = api.tensor(Float32Array.from({ length: n * n }, rnd), [n, n]);
      let c = api.matmulSync(a, b);
      const samples = timeSync(() => { c = api.matmulSync(a, b); }, { warmup: 1, reps: 7, minReps: 3, budget: 4 });
      // The reference on the first 64 rows (bit for bit) and, timed, on a 128-size product.
      const rows = Math.min(64, n);
      const ref = new Float32Array(rows * n);
      addon.matmulSync(a.data.subarray(0, rows * n), b.data, rows, n, n, false, false, ref, 'ref');
      const errors = Buffer.from(ref.buffer).equals(Buffer.from(c.data.buffer, 0, rows * n * 4)) ? [] : ['the kernel differs from the reference'];
      const m = 128;
      const small = new Float32Array(m * m);
      api.setThreads(1);
      const refSamples = timeSync(() => addon.matmulSync(a.data.subarray(0, m * m), b.data.subarray(0, m * m), m, m, m, false, false, small, 'ref'),
        { warmup: 0, reps: 3, minReps: 1, budget: 1 });
      api.setThreads(2);
      return {
        size: `${n}x${n} @ ${n}x${n} f32, ${(flops / 1e9).toFixed(1)} GFLOP`,
        bytes: flops,
        samples,
        ref: { bytes: 2 * m * m * m, samples: refSamples, size: `${m}x${m}` },
        errors,
      };
    },
  };
}

module.exports = { cases: [512, 1024, 2048].map(gemmCase) };
