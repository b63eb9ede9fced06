// SPDX-License-Identifier: MIT
'use strict';
/**
 * Calibrator.addSync on 2 threads, on batches of f32 activations (about N(0, 1)):
 * - norms only (the column sums of squares, Wanda): GB/s of input read, against memcpy and our scalar
 *   reference on one thread;
 * - with the Hessian (SparseGPT / GPTQ): GFLOP/s counting the nominal 2 * tokens * in^2 flops of x^T x (our
 *   kernel computes one triangle, as numpy's ssyrk does), against numpy `x.T @ x` timed in its own process in the
 *   same run (bench/peers/calib.py; its full reference-form update is in the notes).
 * The kernel behind the API is checked against the scalar reference on a slice of the batch.
 */
const { ws, native, timeSync, median, fmtBytes } = require('../harness');

/** About N(0, 1), deterministic. */
function activations(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * 1.7320508;
  return out;
}

/** The Gram matrix of the first rows of x (tokens x cols) by the default kernel and the reference. */
function checkSlice(addon, x, tokens, cols) {
  const sub = x.subarray(0, tokens * cols);
  const g = new Float32Array(cols * cols);
  const r = new Float32Array(cols * cols);
  addon.calibGramSync(sub, 'f32', tokens, cols, g);
  addon.calibGramSync(sub, 'f32', tokens, cols, r, 'ref');
  let worst = 0;
  for (let i = 0; i < cols; i++)
    for (let j = 0; j < cols; j++) {
      const scale = Math.sqrt(r[i * cols + i] * r[j * cols + j]) || 1;
      worst = Math.max(worst, Math.abs(g[i * cols + j] - r[i * cols + j]) / scale);
    }
  return worst;
}

function normsCase(tokens, cols) {
  return {
    name: `calib norms ${tokens}x${cols} f32`,
    targets: { memcpy: 0.5 },
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const x = api.tensor(activations(tokens * cols, 1), [tokens, cols]);
      const c = new api.Calibrator(cols);
      const samples = timeSync(() => c.addSync(x), { warmup: 2, reps: 21, budget: 2 });
      api.setThreads(1);
      const sums = new Float64Array(cols);
      const refSamples = timeSync(() => addon.calibAddSync(x.data, 'f32', tokens, cols, 0, sums, null, true, 'ref'), { warmup: 1, reps: 5, budget: 2 });
      api.setThreads(2);
      return {
        size: `${tokens}x${cols}, ${fmtBytes(x.byteLength)}`,
        bytes: x.byteLength,
        samples,
        ref: { bytes: x.byteLength, samples: refSamples, size: `${tokens}x${cols}` },
        notes: ['GB/s: input bytes read'],
      };
    },
  };
}

function hessianCase(tokens, cols) {
  const flops = 2 * tokens * cols * cols;
  return {
    name: `calib hessian ${tokens}x${cols} f32`,
    unit: 'GFLOP/s',
    targets: { peer: 0.5 },
    peer: { label: 'numpy x.T @ x', script: 'calib.py', args: [String(tokens), String(cols)] },
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const x = api.tensor(activations(tokens * cols, 2), [tokens, cols]);
      const c = new api.Calibrator(cols, { hessian: true });
      const samples = timeSync(() => c.addSync(x), { warmup: 1, reps: 7, minReps: 3, budget: 6 });
      const gram = new Float32Array(cols * cols);
      const gramSamples = timeSync(() => addon.calibGramSync(x.data, 'f32', tokens, cols, gram), { warmup: 1, reps: 5, minReps: 3, budget: 4 });
      api.setThreads(1);
      const one = timeSync(() => addon.calibGramSync(x.data, 'f32', tokens, cols, gram), { warmup: 0, reps: 3, minReps: 1, budget: 4 });
      api.setThreads(2);
      const worst = checkSlice(addon, x.data, 256, Math.min(cols, 512));
      const errors = worst < 1e-5 ? [] : [`the kernel differs from the reference by ${worst.toExponential(2)} (scaled)`];
      const gf = (s) => (flops / median(s) / 1e9).toFixed(1);
      return {
        size: `${tokens}x${cols}, ${(flops / 1e9).toFixed(1)} GFLOP nominal`,
        bytes: flops,
        samples,
        notes: [
          'GFLOP/s: nominal 2*T*in^2 (numpy and we both compute one triangle)',
          `x^T x alone ${gf(gramSamples)}, 1 thread ${gf(one)} GFLOP/s`,
          `kernel vs reference (256 tokens): ${worst.toExponential(1)} scaled`,
        ],
        metrics: { gramGflops: flops / median(gramSamples) / 1e9, oneThreadGflops: flops / median(one) / 1e9, refScaledError: worst },
        errors,
      };
    },
  };
}

module.exports = {
  cases: [
    normsCase(2048, 4096),
    normsCase(4096, 1024),
    hessianCase(2048, 4096),
    hessianCase(4096, 1024),
  ],
};
