// SPDX-License-Identifier: MIT
'use strict';
/**
 * f32 GEMM (`matmulSync`, 2 threads) in GFLOP/s (2 m n k flops) against numpy's `a @ b` (OpenBLAS sgemm) in its own
 * process, and our scalar reference (one thread, a 128-size product). Square n x n products, and the four skinny
 * products of a randomized SVD (Halko-Martinsson-Tropp) of a 4096 x 4096 matrix A with l = 74 sketch columns:
 * A Q, A^T Q and Q^T A (k = 4096), and Q Ub (k = 74). The case checks the first rows of our product against the
 * reference bit for bit (both are f32 FMA chains in k order).
 */
const { ws, native, timeSync, median } = require('../harness');

function gemmCase({ name, m, n, k, transA = false, transB = false, peerArgs, target }) {
  const flops = 2 * m * n * k;
  const label = (x, t, r, c) => (t ? `${x}^T (${c}x${r} stored)` : `${x} ${r}x${c}`);
  return {
    name,
    unit: 'GFLOP/s',
    targets: target ? { peer: target } : {},  // DESIGN.md: >= 0.7x numpy at 1024 and 2048
    peer: { label: 'numpy sgemm', script: 'gemm.py', args: peerArgs },
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      let s = 1;
      const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
      const a = api.tensor(Float32Array.from({ length: m * k }, rnd), transA ? [k, m] : [m, k]);
      const b = api.tensor(Float32Array.from({ length: k * n }, rnd), transB ? [n, k] : [k, n]);
      const opts = { transA, transB };
      let c = api.matmulSync(a, b, opts);
      const samples = timeSync(() => { c = api.matmulSync(a, b, opts); }, { warmup: 1, reps: 7, minReps: 3, budget: 4 });
      // The reference on the first rows (bit for bit; at most 2^27 multiply-adds) and, timed, on a 128-size product.
      const rows = Math.max(1, Math.min(64, m, Math.floor(2 ** 27 / (n * k))));
      let aRows = a.data.subarray(0, rows * k);
      if (transA) {  // the first `rows` columns of the stored k x m matrix
        aRows = new Float32Array(k * rows);
        for (let t = 0; t < k; t++) aRows.set(a.data.subarray(t * m, t * m + rows), t * rows);
      }
      const ref = new Float32Array(rows * n);
      addon.matmulSync(aRows, b.data, rows, n, k, transA, transB, ref, 'ref');
      const errors = Buffer.from(ref.buffer).equals(Buffer.from(c.data.buffer, 0, rows * n * 4)) ? [] : ['the kernel differs from the reference'];
      const q = 128;
      const sa = Float32Array.from({ length: q * q }, rnd), sb = Float32Array.from({ length: q * q }, rnd);
      const small = new Float32Array(q * q);
      api.setThreads(1);
      const refSamples = timeSync(() => addon.matmulSync(sa, sb, q, q, q, false, false, small, 'ref'),
        { warmup: 0, reps: 3, minReps: 1, budget: 1 });
      api.setThreads(2);
      // The same product into a reused output (options.out): no fresh pages per call, as numpy's malloc reuses.
      const reused = api.tensor(new Float32Array(m * n), [m, n]);
      const outSamples = timeSync(() => api.matmulSync(a, b, { ...opts, out: reused }), { warmup: 1, reps: 7, minReps: 3, budget: 2 });
      const outGflops = flops / median(outSamples) / 1e9;
      return {
        size: `${label('A', transA, m, k)} @ ${label('B', transB, k, n)} f32, ${(flops / 1e9).toFixed(1)} GFLOP`,
        notes: [`into a reused output (options.out): ${outGflops.toFixed(1)} GFLOP/s`],
        bytes: flops,
        samples,
        ref: { bytes: 2 * q * q * q, samples: refSamples, size: `${q}x${q}` },
        errors,
      };
    },
  };
}

const square = [512, 1024, 2048].map((n) => gemmCase({ name: `sgemm ${n}`, m: n, n, k: n, peerArgs: [String(n)], target: n >= 1024 ? 0.7 : undefined }));
// The randomized SVD of a 4096 x 4096 matrix with l = 74 (64 singular values + 10 oversampling).
const rsvd = [
  { name: 'sgemm rsvd A Q', m: 4096, n: 74, k: 4096 },
  { name: 'sgemm rsvd At Q', m: 4096, n: 74, k: 4096, transA: true },
  { name: 'sgemm rsvd Qt A', m: 74, n: 4096, k: 4096, transA: true },
  { name: 'sgemm rsvd Q Ub', m: 4096, n: 64, k: 74 },
].map((c) => gemmCase({ ...c, peerArgs: [c.m, c.n, c.k, c.transA ? 1 : 0, c.transB ? 1 : 0].map(String) }));

module.exports = { cases: [...square, ...rsvd] };
