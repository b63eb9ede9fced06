// SPDX-License-Identifier: MIT
'use strict';
/**
 * dtype conversion of a 64M-element array on 2 threads (the default SIMD backend), against the scalar
 * reference kernel on one thread and, in a separate process, numpy.
 */
const { ws, native, timeSync, median, fillWeights, fmtBytes, fmtCount } = require('../harness');

const N = 64 << 20;
// The scalar reference runs single-threaded at a few GB/s: a quarter of the size keeps it to ~0.1 s a run
// while staying far larger than any cache.
const REF_N = 16 << 20;

const PAIRS = [
  // [from, to, numpy peer method or null]
  ['f32', 'bf16', 'formula'],
  ['f32', 'f16', 'astype'],
  ['bf16', 'f32', 'formula'],
  ['f16', 'f32', 'astype'],
  ['f32', 'f8_e4m3', null],
  ['f16', 'bf16', 'astype+formula'],
  ['f32', 'f64', 'astype'],
];

function makeSource(api, addon, dtype, n) {
  const f32 = fillWeights(new Float32Array(n));
  if (dtype === 'f32') return f32;
  const out = api.zeros([n], dtype).data;
  addon.convertSync(f32, 'f32', out, dtype, n);
  return out;
}

/** Number of elements whose output bytes differ between two outputs of `n` elements of `size` bytes. */
function countDiffs(a, b, n, size) {
  const x = new Uint8Array(a.buffer, a.byteOffset, n * size);
  const y = new Uint8Array(b.buffer, b.byteOffset, n * size);
  if (Buffer.compare(x, y) === 0) return 0;
  let diffs = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < size; k++) {
      if (x[i * size + k] !== y[i * size + k]) {
        diffs++;
        break;
      }
    }
  }
  return diffs;
}

function convertCase([from, to, method]) {
  return {
    name: `convert ${from}->${to}`,
    targets: { memcpy: 0.5, peer: method ? 10 : undefined },
    peer: method ? { label: 'numpy', script: 'convert.py', args: [from, to, String(N)] } : undefined,
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const inSize = api.dtypeInfo(from).bits / 8;
      const outSize = api.dtypeInfo(to).bits / 8;
      const src = makeSource(api, addon, from, N);
      const dst = api.zeros([N], to).data;
      const samples = timeSync(() => addon.convertSync(src, from, dst, to, N), { warmup: 2, reps: 11 });

      const refDst = api.zeros([REF_N], to).data;
      const refSrc = src.subarray(0, REF_N);
      const refSamples = timeSync(() => addon.convertSync(refSrc, from, refDst, to, REF_N, 'ref', true), { warmup: 1, reps: 3, minReps: 1, budget: 1 });
      const errors = [];
      const diffs = countDiffs(dst, refDst, REF_N, outSize);
      if (diffs) errors.push(`the SIMD and reference kernels differ in ${diffs} of the first ${REF_N} elements`);

      const gbps = (s) => (N * (inSize + outSize)) / median(s) / 1e9;
      const one = timeSync(() => addon.convertSync(src, from, dst, to, N, 'auto', true), { warmup: 1, reps: 5, minReps: 1, budget: 1 });
      const t = new api.Tensor(from, [N], src);
      const viaTo = timeSync(() => t.to(to), { warmup: 1, reps: 5, minReps: 1, budget: 1 });
      return {
        size: `${fmtCount(N)} el, ${fmtBytes(N * inSize)} -> ${fmtBytes(N * outSize)}`,
        bytes: N * (inSize + outSize),
        samples,
        ref: { bytes: REF_N * (inSize + outSize), samples: refSamples, size: `${fmtCount(REF_N)} el` },
        notes: [`1 thread: ${gbps(one).toFixed(1)} GB/s`, `Tensor.to() with a fresh output: ${gbps(viaTo).toFixed(1)} GB/s`],
        metrics: { oneThreadGbps: gbps(one), tensorToGbps: gbps(viaTo), refElements: REF_N },
        errors,
      };
    },
  };
}

module.exports = { cases: PAIRS.map(convertCase) };
