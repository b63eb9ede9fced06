// SPDX-License-Identifier: MIT
'use strict';
/**
 * bitsandbytes 4-bit quantization (NF4, FP4) of a 4096 x 4096 f32 or bf16 weight on 2 threads: the kernel into
 * allocated output buffers (as the ggml cases measure it; with double quantization the 4-bit kernel and then
 * the 8-bit one on the absmax values), and in a note the public API (`quantizeSync`, which also allocates and
 * page-faults its outputs). GB/s counts the input bytes plus the stored parts (packed codes + absmax...).
 * Compared in the same run with our scalar reference (1 thread), a plain-JavaScript loop of the same formula
 * (in this process, output checked byte for byte) and, in its own process, a vectorized numpy implementation
 * (bench/peers/bnb4.py, checked byte for byte on the full output through a file).
 */
const { ws, native, timeSync, median, fillWeights, fmtBytes, writeSample, findSample } = require('../harness');

const ROWS = 4096;
const COLS = 4096;
const N = ROWS * COLS;
const MIN_ABSMAX = Math.fround(1e-38);

/** The bucket bounds and bucket -> code map of a 4-bit table (as bitsandbytes' torch backend builds them). */
function codebook(table) {
  const order = [...table.keys()].sort((a, b) => table[a] - table[b] || a - b);
  const bounds = new Float32Array(15);
  for (let i = 0; i < 15; i++) bounds[i] = (table[order[i]] + table[order[i + 1]]) / 2;
  let z = 0;
  while (z < 15 && bounds[z] < 0) z++;
  return { bounds, order: Int32Array.from(order), zero: order[z] };
}

/**
 * The plain-JS loop: absmax per block, s = clamp(x * fround(1 / absmax)), a binary search among the bounds,
 * the code through the order map, two codes per byte (first in the high nibble). Full blocks only (n is a
 * multiple of the block size here). `load(i)` reads element i as f32.
 */
function jsQuantize4(load, n, bs, cb, packed, absmax) {
  const { bounds, order } = cb;
  const fr = Math.fround;
  const code = (s) => {
    s = s < -1 ? -1 : s > 1 ? 1 : s;
    let q = 0;
    for (let step = 8; step >= 1; step >>= 1) if (q + step - 1 < 15 && bounds[q + step - 1] < s) q += step;
    return order[q];
  };
  for (let b = 0, lo = 0; lo < n; b++, lo += bs) {
    let amax = 0;
    for (let i = lo; i < lo + bs; i++) {
      const a = Math.abs(load(i));
      if (a > amax) amax = a;
    }
    absmax[b] = amax;
    const inv = fr(1 / (amax < MIN_ABSMAX ? MIN_ABSMAX : amax));
    for (let i = lo; i < lo + bs; i += 2) packed[i >> 1] = (code(fr(load(i) * inv)) << 4) | code(fr(load(i + 1) * inv));
  }
}


const gbps = (bytes, samples) => bytes / median(samples) / 1e9;

function quantizeCase(label, spec, dtype) {
  const name = `quantize ${label} (${dtype})`;
  return {
    name,
    targets: { memcpy: 0.5, peer: 10 },
    peer: {
      label: 'numpy',
      script: 'bnb4.py',
      get args() {
        const f = findSample(`bnb4-${name}`);
        return ['quantize', spec.scheme, String(spec.blockSize), dtype, String(N), spec.doubleQuant ? 'dq' : 'plain', ...(f ? ['--check', f] : [])];
      },
    },
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const x32 = api.tensor(fillWeights(new Float32Array(N)), [ROWS, COLS]);
      const x = dtype === 'f32' ? x32 : x32.to(dtype);
      let q = api.quantizeSync(x, spec);
      const stored = q.byteLength;
      const bytes = x.byteLength + stored;
      const apiSamples = timeSync(() => { q = api.quantizeSync(x, spec); }, { warmup: 2, reps: 11, minReps: 3, budget: 3 });
      const errors = [];
      const notes = [];
      const metrics = { apiGbps: gbps(bytes, apiSamples) };
      let samples = apiSamples;
      {
        const p = new Uint8Array(N / 2).fill(1);
        const a = new Float32Array(N / spec.blockSize).fill(1);
        const code = api.bnbDynamicMap();
        const dq = new Uint8Array(a.length).fill(1);
        const nested = new Float32Array(Math.ceil(a.length / 256)).fill(1);
        samples = timeSync(() => {
          addon.bnb4QuantizeSync(spec.scheme, x.bytes(), dtype, N, spec.blockSize, p, a, true);
          if (spec.doubleQuant) addon.bnb4DoubleQuantize(a, code, dq, nested);
        }, { warmup: 2, reps: 11, minReps: 3, budget: 3 });
        if (!Buffer.from(p).equals(Buffer.from(q.parts.weight.bytes()))) errors.push('the kernel and the API differ');
        if (spec.doubleQuant && !Buffer.from(dq).equals(Buffer.from(q.parts.absmax.bytes()))) errors.push('the double quantization differs from the API');
        notes.push(`public API incl. output allocation: ${metrics.apiGbps.toFixed(2)} GB/s`);
      }

      // The scalar reference on one thread (4-bit codes and absmax only, without double quantization).
      const refP = new Uint8Array(N / 2);
      const refA = new Float32Array(N / spec.blockSize);
      api.setThreads(1);
      const refSamples = timeSync(() => addon.bnb4QuantizeSync(spec.scheme, x.bytes(), dtype, N, spec.blockSize, refP, refA, true, 'ref'),
        { warmup: 0, reps: 3, minReps: 1, budget: 2 });
      api.setThreads(2);
      if (!Buffer.from(refP).equals(Buffer.from(q.parts.weight.bytes()))) errors.push('the optimized and reference kernels differ');

      // The plain-JS loop on the same weights.
      if (!spec.doubleQuant) {
        const cb = codebook(api.bnb4Table(spec.scheme));
        const u16 = dtype === 'f32' ? null : new Uint16Array(x.bytes().buffer, x.bytes().byteOffset, N);
        const f32 = new Float32Array(1);
        const u32 = new Uint32Array(f32.buffer);
        const load = dtype === 'f32' ? (i) => x32.data[i] : (i) => { u32[0] = u16[i] << 16; return f32[0]; };
        const jsP = new Uint8Array(N / 2);
        const jsA = new Float32Array(N / spec.blockSize);
        const jsSamples = timeSync(() => jsQuantize4(load, N, spec.blockSize, cb, jsP, jsA), { warmup: 0, reps: 3, minReps: 1, budget: 3 });
        const same = Buffer.from(jsP).equals(Buffer.from(q.parts.weight.bytes())) && Buffer.from(jsA.buffer).equals(Buffer.from(q.parts.absmax.bytes()));
        metrics.jsLoopGbps = gbps(bytes, jsSamples);
        metrics.jsLoopRatio = gbps(bytes, samples) / metrics.jsLoopGbps;
        notes.push(`JS loop: ${metrics.jsLoopGbps.toFixed(2)} GB/s (ours ${metrics.jsLoopRatio.toFixed(0)}x), ${same ? 'byte-equal to ours' : 'DIFFERS from ours'}`);
        if (!same) errors.push('the JS loop differs from ours');
      }
      const deq = timeSync(() => api.dequantizeSync(q), { warmup: 1, reps: 5, minReps: 2, budget: 2 });
      metrics.dequantizeGbps = gbps(N * 4 + stored, deq);
      notes.push(`dequantize to f32: ${metrics.dequantizeGbps.toFixed(2)} GB/s`);

      // The input and our output, for numpy (which times its code on the same input and checks it byte for
      // byte): [x][packed][absmax (f32, or u8 codes)][nested absmax][offset].
      const parts = [x, q.parts.weight, q.parts.absmax, ...(spec.doubleQuant ? [q.parts.nested_absmax, q.parts.nested_offset] : [])];
      writeSample(`bnb4-${name}`, parts.map((t) => t.bytes()));
      return {
        size: `${ROWS}x${COLS} ${dtype}, ${fmtBytes(x.byteLength)} -> ${fmtBytes(stored)}`,
        bytes,
        samples,
        ref: { bytes: x.byteLength + N / 2 + refA.byteLength, samples: refSamples, size: `${ROWS}x${COLS}` },
        notes,
        metrics,
        errors,
      };
    },
  };
}

module.exports = {
  cases: [
    quantizeCase('nf4 b64', { scheme: 'nf4', blockSize: 64 }, 'f32'),
    quantizeCase('nf4 b64', { scheme: 'nf4', blockSize: 64 }, 'bf16'),
    quantizeCase('fp4 b64', { scheme: 'fp4', blockSize: 64 }, 'f32'),
    quantizeCase('fp4 b64', { scheme: 'fp4', blockSize: 64 }, 'bf16'),
    quantizeCase('nf4 b64 double-quant', { scheme: 'nf4', blockSize: 64, doubleQuant: true }, 'f32'),
  ],
  jsQuantize4, codebook,
};
