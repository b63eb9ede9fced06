// SPDX-License-Identifier: MIT
'use strict';
/**
 * ggml block quantizers: `quantize <type>` of 16M weight-like f32 values into blocks and `dequantize <type>`
 * back, on 2 threads (the default backend), against our scalar reference kernel on one thread, a plain
 * JavaScript loop (q8_0 and q4_0 quantize, same process, same data) and, in a separate process, numpy
 * (bench/peers/quant.py: q8_0, q4_0, q4_1 quantize; q8_0, q4_0 dequantize).
 *
 * Correctness where it is cheap: the threaded and reference kernels must agree byte for byte (an error
 * otherwise); the JS loop's output and numpy's are compared with ours on a sample (1M weights plus blocks
 * built to hit exact rounding ties), and a difference is reported as a note, not an error.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ws, native, tmpDir, timeSync, median, fillWeights, fmtBytes, fmtCount } = require('../harness');

const N = 16 << 20;
// Legacy types quantize at 1-3 GB/s on one thread: the reference runs on the full size. The k-quants search
// scales per sub-block and their scalar reference runs at ~0.1 GB/s on one thread, so it quantizes 1M elements.
const REF_N_K = 1 << 20;
// Sample compared with numpy (in its own process, through a file) and with the JS loop.
const SAMPLE_N = 1 << 20;
const TIE_BLOCKS = 64;

const TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'];
const NUMPY_QUANTIZE = new Set(['q8_0', 'q4_0', 'q4_1']);
const NUMPY_DEQUANTIZE = new Set(['q8_0', 'q4_0']);
const isK = (type) => type.endsWith('_k');

// ----------------------------------------------------------------------------------- the JS-loop peer

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 -> IEEE fp16 bits, round to nearest even (ggml_compute_fp32_to_fp16), NaN -> 0x7E00. */
function fp16Bits(v) {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return sign | (m ? 0x7e00 : 0x7c00);
  const he = e - 112;  // the fp16 biased exponent
  if (he >= 0x1f) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (he << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;  // a carry into the exponent is right, up to inf
  return sign | h;
}

/**
 * quantize_row_q8_0_ref as plain JS: d = amax/127 in f32, codes roundf(x * id), half away from zero.
 * Math.fround keeps every step f32.
 */
function jsQuantizeQ8_0(x, out, n) {
  const fr = Math.fround;
  for (let b = 0, o = 0, p = 0; o < n; b++, o += 32, p += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[o + j]);
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const h = fp16Bits(d);
    out[p] = h & 0xff;
    out[p + 1] = h >>> 8;
    for (let j = 0; j < 32; j++) {
      const v = fr(x[o + j] * id);
      // roundf: v is an f32, so in f64 v +- 0.5 cannot round onto the next integer (in f32 0.49999997 + 0.5
      // does) and truncating it rounds half away from zero. Math.round would round -2.5 to -2.
      out[p + 2 + j] = Math.trunc(v < 0 ? v - 0.5 : v + 0.5) & 0xff;
    }
  }
}

/**
 * quantize_row_q4_0_ref as plain JS: max = the signed value of largest magnitude (the first on ties),
 * d = max / -8, code min(15, trunc(x * id + 8.5)) with the multiply and the add each rounded to f32.
 */
function jsQuantizeQ4_0(x, out, n) {
  const fr = Math.fround;
  for (let o = 0, p = 0; o < n; o += 32, p += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      const a = Math.abs(v);
      if (amax < a) {
        amax = a;
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const h = fp16Bits(d);
    out[p] = h & 0xff;
    out[p + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(x[o + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[o + 16 + j] * id) + 8.5)));
      out[p + 2 + j] = q0 | (q1 << 4);
    }
  }
}

const JS_LOOPS = { q8_0: jsQuantizeQ8_0, q4_0: jsQuantizeQ4_0 };

// -------------------------------------------------------------------------------------------- helpers

/**
 * Blocks whose codes fall exactly on rounding ties: amax 63.5*s gives d = s/2 and id = 2/s exactly, and the
 * other values (j - 15.5)*s/2 then quantize from x * id = j - 15.5 (both signs), for s = 2^-4 .. 2^3.
 */
function tieBlocks(count) {
  const x = new Float32Array(count * 32);
  for (let b = 0; b < count; b++) {
    const s = 2 ** ((b % 8) - 4);
    const sign = b & 8 ? -1 : 1;
    x[b * 32] = sign * 63.5 * s;
    for (let j = 1; j < 32; j++) x[b * 32 + j] = (j - 15.5) * 0.5 * s;
  }
  return x;
}

/** The check sample: the first SAMPLE_N weights, then the tie blocks. */
function checkSample(x) {
  const ties = tieBlocks(TIE_BLOCKS);
  const s = new Float32Array(SAMPLE_N + ties.length);
  s.set(x.subarray(0, SAMPLE_N));
  s.set(ties, SAMPLE_N);
  return s;
}

/** Number of `bytesPer`-byte blocks (or elements) that differ between two byte views. */
function countDiffs(a, b, bytesPer) {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) throw new Error('countDiffs: lengths differ');
  if (Buffer.compare(x, y) === 0) return 0;
  let diffs = 0;
  for (let i = 0; i < x.length; i += bytesPer) {
    for (let k = 0; k < bytesPer; k++) {
      if (x[i + k] !== y[i + k]) {
        diffs++;
        break;
      }
    }
  }
  return diffs;
}

const sampleName = (op, type, parentPid) => `quant-sample-${parentPid}-${op}-${type}.bin`;

/**
 * Writes [u32 element count][first part][second part] for the numpy peer's check. The peer runs in its own
 * process after this one; run.js is the parent of both, so the file name carries its pid.
 */
function writeSample(op, type, n, first, second) {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(n);
  const view = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  fs.writeFileSync(path.join(tmpDir(), sampleName(op, type, process.ppid)), Buffer.concat([head, view(first), view(second)]));
}

/**
 * The sample file of this run for the peer (looked up in run.js's process, which created the scratch folder
 * under os.tmpdir() and forked the case), or null when the case did not write one.
 */
function findSample(op, type) {
  const name = sampleName(op, type, process.pid);
  try {
    for (const d of fs.readdirSync(os.tmpdir())) {
      if (!d.startsWith('weightsmith-bench-')) continue;
      const f = path.join(os.tmpdir(), d, name);
      if (fs.existsSync(f)) return f;
    }
  } catch {
    // no readable tmpdir: no check
  }
  return null;
}

function numpyPeer(op, type) {
  return {
    label: 'numpy',
    script: 'quant.py',
    // A getter: read when run.js starts the peer, after the case has written its sample.
    get args() {
      const f = findSample(op, type);
      return [op, type, String(N), ...(f ? ['--check', f] : [])];
    },
  };
}

const gbpsOf = (bytes, samples) => bytes / median(samples) / 1e9;

// ---------------------------------------------------------------------------------------------- cases

function quantizeCase(type) {
  const hasNumpy = NUMPY_QUANTIZE.has(type);
  return {
    name: `quantize ${type}`,
    targets: { memcpy: 0.5, peer: hasNumpy ? 10 : undefined },
    peer: hasNumpy ? numpyPeer('quantize', type) : undefined,
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const id = api.GGML_TYPES[type];
      const { size: be, bytes: bb } = api.GGML_BLOCKS[type];
      const blockBytes = (n) => (n / be) * bb;
      const bytes = N * 4 + blockBytes(N);
      const x = fillWeights(new Float32Array(N));
      const out = new Uint8Array(blockBytes(N)).fill(1);  // filled: its pages are mapped before timing
      // The k-quants search their scales (SIMD lanes, ~50 ms a run on 2 threads): one warm-up, five runs.
      const slow = isK(type);
      const samples = timeSync(() => addon.quantizeGgmlSync(x, id, out, N, true), slow ? { warmup: 1, reps: 5 } : { warmup: 2, reps: 11 });
      const notes = [];
      const metrics = {};
      const errors = [];

      if (!slow) {
        const noCheck = timeSync(() => addon.quantizeGgmlSync(x, id, out, N, false), { warmup: 1, reps: 5, minReps: 1, budget: 0.5 });
        metrics.noFiniteCheckGbps = gbpsOf(bytes, noCheck);
        notes.push(`without the finite check: ${metrics.noFiniteCheckGbps.toFixed(2)} GB/s`);
      }

      // The reference kernel, single-threaded; its output must equal the threaded kernel's.
      const refN = slow ? REF_N_K : N;
      const refOut = new Uint8Array(blockBytes(refN));
      const refX = x.subarray(0, refN);
      const refSamples = timeSync(() => addon.quantizeGgmlSync(refX, id, refOut, refN, true, 'ref'), { warmup: 1, reps: 3, minReps: 1, budget: 1 });
      const refDiffs = countDiffs(out.subarray(0, refOut.length), refOut, bb);
      if (refDiffs) errors.push(`the threaded and reference kernels differ in ${refDiffs} of the first ${refN / be} blocks`);

      // Our output on the check sample (weights, then tie blocks): for the JS loop here, numpy in its process.
      const sample = (JS_LOOPS[type] || hasNumpy) ? checkSample(x) : null;
      const sampleOut = sample ? new Uint8Array(blockBytes(sample.length)) : null;
      if (sample) addon.quantizeGgmlSync(sample, id, sampleOut, sample.length, true);
      if (hasNumpy) writeSample('quantize', type, sample.length, sample, sampleOut);

      const jsLoop = JS_LOOPS[type];
      if (jsLoop) {
        const jsOut = new Uint8Array(out.length);
        const jsSamples = timeSync(() => jsLoop(x, jsOut, N), { warmup: 1, reps: 3, minReps: 1, budget: 1.5 });
        const jsGbps = gbpsOf(bytes, jsSamples);
        const diffs = countDiffs(jsOut, out, bb);
        const jsSampleOut = new Uint8Array(sampleOut.length);
        jsLoop(sample, jsSampleOut, sample.length);
        const tieDiffs = countDiffs(jsSampleOut.subarray(blockBytes(SAMPLE_N)), sampleOut.subarray(blockBytes(SAMPLE_N)), bb);
        const ours = gbpsOf(bytes, samples);
        Object.assign(metrics, { jsLoopGbps: jsGbps, jsLoopRatio: ours / jsGbps, jsLoopBlockDiffs: diffs, jsLoopTieBlockDiffs: tieDiffs });
        const same = diffs === 0 && tieDiffs === 0
          ? `byte-equal to ours on all ${N / be} blocks + ${TIE_BLOCKS} tie blocks`
          : `differs from ours in ${diffs} of ${N / be} blocks and ${tieDiffs} of ${TIE_BLOCKS} tie blocks`;
        notes.push(`JS loop: ${jsGbps.toFixed(2)} GB/s (ours ${(ours / jsGbps).toFixed(1)}x), ${same}`);
      }

      return {
        size: `${fmtCount(N)} el, ${fmtBytes(N * 4)} -> ${fmtBytes(blockBytes(N))}`,
        bytes,
        samples,
        ref: { bytes: refN * 4 + blockBytes(refN), samples: refSamples, size: `${fmtCount(refN)} el` },
        notes,
        metrics: { ...metrics, refElements: refN },
        errors,
      };
    },
  };
}

function dequantizeCase(type) {
  const hasNumpy = NUMPY_DEQUANTIZE.has(type);
  return {
    name: `dequantize ${type}`,
    targets: { memcpy: 0.5, peer: hasNumpy ? 10 : undefined },
    peer: hasNumpy ? numpyPeer('dequantize', type) : undefined,
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const id = api.GGML_TYPES[type];
      const { size: be, bytes: bb } = api.GGML_BLOCKS[type];
      const blockBytes = (n) => (n / be) * bb;
      const bytes = N * 4 + blockBytes(N);
      const blocks = new Uint8Array(blockBytes(N));
      addon.quantizeGgmlSync(fillWeights(new Float32Array(N)), id, blocks, N, true);
      const y = new Float32Array(N);
      const samples = timeSync(() => addon.dequantizeGgmlSync(blocks, id, y, N), { warmup: 2, reps: 11 });

      const errors = [];
      const refY = new Float32Array(N);
      const refSamples = timeSync(() => addon.dequantizeGgmlSync(blocks, id, refY, N, 'ref'), { warmup: 1, reps: 3, minReps: 1, budget: 1 });
      const refDiffs = countDiffs(y, refY, 4);
      if (refDiffs) errors.push(`the threaded and reference kernels differ in ${refDiffs} of ${N} elements`);

      if (hasNumpy) {
        writeSample('dequantize', type, SAMPLE_N, blocks.subarray(0, blockBytes(SAMPLE_N)), y.subarray(0, SAMPLE_N));
      }
      return {
        size: `${fmtCount(N)} el, ${fmtBytes(blockBytes(N))} -> ${fmtBytes(N * 4)}`,
        bytes,
        samples,
        ref: { bytes, samples: refSamples, size: `${fmtCount(N)} el` },
        errors,
      };
    },
  };
}

// Schemes with scales (compressed-tensors int and fp8; bitsandbytes 4-bit is in bnb4.js) through the public API on a 4096 x
// 4096 f32 and bf16 weight; GB/s counts the input bytes plus the stored parts.
const SCHEMES = [
  ['int4 g128', { scheme: 'int', bits: 4, groupSize: 128 }],
  ['int4 g128 asym', { scheme: 'int', bits: 4, groupSize: 128, symmetric: false }],
  ['int8 channel', { scheme: 'int', bits: 8, groupSize: 'channel' }],
  ['fp8 channel', { scheme: 'fp8', granularity: 'channel' }],
  ['fp8 block', { scheme: 'fp8', granularity: 'block' }],
];

function schemeCase([label, spec], dtype) {
  return {
    name: `quantize ${label} (${dtype})`,
    targets: { memcpy: 0.5 },
    async run() {
      const api = ws();
      api.setThreads(2);
      const rows = 4096;
      const cols = 4096;
      const x32 = api.tensor(fillWeights(new Float32Array(rows * cols)), [rows, cols]);
      const x = dtype === 'f32' ? x32 : x32.to(dtype);
      let q = api.quantizeSync(x, spec);
      const bytes = x.byteLength + q.byteLength;
      const samples = timeSync(() => { q = api.quantizeSync(x, spec); }, { warmup: 1, reps: 5, minReps: 2, budget: 3 });
      const deq = timeSync(() => api.dequantizeSync(q), { warmup: 1, reps: 3, minReps: 1, budget: 2 });
      const c = api.compare(x, api.dequantizeSync(q, dtype));
      return {
        size: `${rows}x${cols} ${dtype}, ${fmtBytes(x.byteLength)} -> ${fmtBytes(q.byteLength)}`,
        bytes,
        samples,
        notes: [`dequantize: ${gbpsOf(bytes, deq).toFixed(2)} GB/s`, `SQNR ${c.sqnrDb.toFixed(1)} dB`],
        errors: [],
      };
    },
  };
}

module.exports = {
  cases: [...TYPES.map(quantizeCase), ...TYPES.map(dequantizeCase), ...SCHEMES.flatMap((sc) => [schemeCase(sc, 'f32'), schemeCase(sc, 'bf16')])],
  // The JS-loop peers, exported for ad-hoc checks.
  jsQuantizeQ8_0, jsQuantizeQ4_0, fp16Bits,
};
