// SPDX-License-Identifier: MIT
'use strict';
/**
 * Low rank. `randomizedSvd 4096x4096 rank 64`: `randomizedSvdSync` (oversample 10, 2 power iterations, 2 threads)
 * of a weight-like matrix with a decaying spectrum (a rank-256 product with singular values falling as
 * exp(-i/32), plus a noise floor), against the same algorithm in numpy (bench/peers/rsvd.py) on the same matrix
 * (passed through a file); both relative errors are in the notes, to compare at equal error.
 * `svd 512x512 vs ml-matrix`: `svdSync` against ml-matrix's SVD (the Node status quo, a pure-JS f64 one-sided
 * Jacobi), when `npm install` has been run in bench/ (bench/package.json); otherwise the peer column is empty.
 */
const path = require('node:path');
const { ws, timeSync, writeSample, findSample } = require('../harness');

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
}

/** A [m, n] matrix X diag(d) Y + noise with d_i = exp(-i / 32), i < 256. */
function decaying(api, m, n) {
  const k = 256;
  const rnd = lcg(7);
  const x = new Float32Array(m * k), y = new Float32Array(k * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) x[i * k + j] = rnd() * Math.exp(-j / 32);
  for (let i = 0; i < y.length; i++) y[i] = rnd();
  const a = api.matmulSync(api.tensor(x, [m, k]), api.tensor(y, [k, n]));
  const d = a.data;
  for (let i = 0; i < d.length; i++) d[i] += 1e-3 * rnd();
  return a;
}

function relError(api, a, r) {
  const us = new Float32Array(r.U.data);
  const k = r.S.numel;
  for (let i = 0; i < r.U.shape[0]; i++) for (let j = 0; j < k; j++) us[i * k + j] *= r.S.data[j];
  const prod = api.matmulSync(api.tensor(us, r.U.shape), r.Vt).data;
  let num = 0, den = 0;
  for (let i = 0; i < prod.length; i++) {
    num += (a.data[i] - prod[i]) ** 2;
    den += a.data[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const M = 4096, N = 4096, RANK = 64;

const randomized = {
  name: `randomizedSvd ${M}x${N} rank ${RANK}`,
  unit: 'ms',
  targets: { peer: 1 / 1.2 },
  peer: {
    label: 'numpy HMT',
    script: 'rsvd.py',
    get args() {
      const f = findSample('rsvd');
      return [String(M), String(N), String(RANK), '10', '2', '--input', f ?? '/nonexistent'];
    },
  },
  async run() {
    const api = ws();
    api.setThreads(2);
    const a = decaying(api, M, N);
    writeSample('rsvd', [a.data]);
    let r = api.randomizedSvdSync(a, RANK);
    const samples = timeSync(() => { r = api.randomizedSvdSync(a, RANK); }, { warmup: 1, reps: 5, minReps: 3, budget: 4 });
    const err = relError(api, a, r);
    const exact = 'the optimum is the same for both: compare the two errors';
    return { size: `${M}x${N} f32, rank ${RANK} (oversample 10, 2 power iterations)`, samples, notes: [`rel. error ${err.toPrecision(4)} (${exact})`], errors: [] };
  },
};

const mlMatrix = {
  name: 'svd 512x512 vs ml-matrix',
  unit: 'ms',
  async run() {
    const api = ws();
    api.setThreads(2);
    const n = 512;
    const rnd = lcg(3);
    const data = Float32Array.from({ length: n * n }, rnd);
    const a = api.tensor(data, [n, n]);
    const samples = timeSync(() => api.svdSync(a), { warmup: 1, reps: 5, minReps: 3, budget: 3 });
    let peer;
    const notes = [];
    try {
      const { Matrix, SingularValueDecomposition } = require(path.join(__dirname, '..', 'node_modules', 'ml-matrix'));
      const rows = [];
      for (let i = 0; i < n; i++) rows.push(Array.from(data.subarray(i * n, (i + 1) * n)));
      const m = new Matrix(rows);
      const peerSamples = timeSync(() => new SingularValueDecomposition(m), { warmup: 0, reps: 2, minReps: 1, budget: 10 });
      peer = { label: 'ml-matrix SVD', method: 'new SingularValueDecomposition(m) (f64, pure JS)', samples: peerSamples };
    } catch (err) {
      notes.push(`ml-matrix is not installed (run npm install in bench/): ${String(err.message).split('\n')[0]}`);
    }
    return { size: `${n}x${n} f32`, samples, peer, notes, errors: [] };
  },
};

module.exports = { cases: [randomized, mlMatrix] };
