// SPDX-License-Identifier: MIT
'use strict';
/**
 * Pruning on a 4096 x 4096 weight, 2 threads: masks (magnitude and Wanda at 50% per row, 2:4, 4:8), mask
 * application, mask + apply for 2:4 (the acceptance figure: GB/s of the weight read, the mask written and the
 * pruned weight written), and compressed storage. Each against memcpy and, in its own process, numpy
 * (bench/peers/sparsity.py: argpartition / sort-based selections, boolean-mask application, packbits + boolean
 * indexing); the numpy selections are checked against ours on the same data (a byte compare of the masks).
 */
const { ws, native, timeSync, median, fillWeights, fmtBytes, writeSample, findSample } = require('../harness');

const ROWS = 4096;
const COLS = 4096;
const N = ROWS * COLS;


function setup(api) {
  api.setThreads(2);
  const w = api.tensor(fillWeights(new Float32Array(N)), [ROWS, COLS]);
  const norms = Float32Array.from({ length: COLS }, (_v, j) => 0.5 + ((j * 2654435761) % 1000) / 1000);
  return { w, norms };
}

function maskCase(label, options, { peerOp, targets }) {
  const name = `mask ${label}`;
  return {
    name,
    targets,
    peer: { label: 'numpy', script: 'sparsity.py', get args() { const f = findSample(`sparsity-${name}`); return [peerOp, String(ROWS), String(COLS), ...(f ? ['--check', f] : [])]; } },
    async run() {
      const api = ws();
      const { w, norms } = setup(api);
      const o = { ...options, ...(options.method === 'wanda' ? { inputNorms: norms } : {}) };
      let m = api.maskSync(w, o);
      const bytes = w.byteLength + m.bits.byteLength;
      const samples = timeSync(() => { m = api.maskSync(w, o); }, { warmup: 1, reps: 7, minReps: 3, budget: 3 });
      // The scalar reference (full sort per row) on 256 rows, one thread.
      api.setThreads(1);
      const refRows = 256;
      const rb = COLS / 8;
      const ref = new Uint8Array(refRows * rb);
      const nat = { score: options.method, perRow: true, ...(options.pattern ? { n: 2, m: 4 } : { prune: COLS / 2 }) };
      if (options.pattern === '4:8') Object.assign(nat, { n: 4, m: 8 });
      if (options.method === 'wanda') nat.norms = norms;
      const refSamples = timeSync(() => native().sparsityMaskSync(w.data.subarray(0, refRows * COLS), 'f32', refRows, COLS, nat, ref, 'ref'), { warmup: 0, reps: 3, minReps: 1, budget: 2 });
      api.setThreads(2);
      const errors = Buffer.from(ref).equals(Buffer.from(m.bits.subarray(0, ref.length))) ? [] : ['the optimized and reference masks differ'];
      writeSample(`sparsity-${name}`, [w.data, ...(options.method === 'wanda' ? [norms] : []), m.bits]);
      return {
        size: `${ROWS}x${COLS} f32 -> ${fmtBytes(m.bits.byteLength)} mask`,
        bytes, samples, errors,
        ref: { bytes: refRows * COLS * 4 + ref.byteLength, samples: refSamples, size: `${refRows}x${COLS}` },
        notes: [`density ${m.density}`],
      };
    },
  };
}

function applyCase() {
  return {
    name: 'applyMask 50% (f32)',
    targets: { memcpy: 0.5 },
    peer: { label: 'numpy', script: 'sparsity.py', args: ['apply', String(ROWS), String(COLS)] },
    async run() {
      const api = ws();
      const { w } = setup(api);
      const m = api.maskSync(w, { method: 'random', sparsity: 0.5, seed: 1 });
      const out = api.zeros([ROWS, COLS], 'f32');
      const addon = native();
      const samples = timeSync(() => addon.sparsityApplySync(w.data, 4, ROWS, COLS, m.bits, out.data), { warmup: 2, reps: 11 });
      const apiSamples = timeSync(() => api.applyMask(w, m), { warmup: 1, reps: 5, minReps: 2, budget: 2 });
      const bytes = 2 * w.byteLength + m.bits.byteLength;
      return { size: `${ROWS}x${COLS} f32`, bytes, samples, notes: [`public API incl. output allocation: ${(bytes / median(apiSamples) / 1e9).toFixed(2)} GB/s`], errors: [] };
    },
  };
}

function maskApply24Case() {
  return {
    name: 'mask+apply 2:4 (f32)',
    targets: { memcpy: 0.4 },
    peer: { label: 'numpy', script: 'sparsity.py', args: ['mask_apply_24', String(ROWS), String(COLS)] },
    async run() {
      const api = ws();
      const { w } = setup(api);
      const addon = native();
      const bits = new Uint8Array(ROWS * COLS / 8);
      const out = api.zeros([ROWS, COLS], 'f32');
      const opts = { score: 'magnitude', n: 2, m: 4 };
      const samples = timeSync(() => {
        addon.sparsityMaskSync(w.data, 'f32', ROWS, COLS, opts, bits);
        addon.sparsityApplySync(w.data, 4, ROWS, COLS, bits, out.data);
      }, { warmup: 2, reps: 11 });
      return { size: `${ROWS}x${COLS} f32`, bytes: 2 * w.byteLength + bits.byteLength, samples, errors: [] };
    },
  };
}

function compressCase(format) {
  return {
    name: `compress ${format} (f32)`,
    peer: format === 'sparse-24-bitmask' ? { label: 'numpy', script: 'sparsity.py', args: ['compress_24', String(ROWS), String(COLS)] } : undefined,
    async run() {
      const api = ws();
      const { w } = setup(api);
      const pruned = api.applyMask(w, api.maskSync(w, { method: 'magnitude', pattern: '2:4' }));
      let c = api.compress(pruned, { format });
      const samples = timeSync(() => { c = api.compress(pruned, { format }); }, { warmup: 1, reps: 3, minReps: 1, budget: 3 });
      const dec = timeSync(() => api.decompress(c), { warmup: 1, reps: 3, minReps: 1, budget: 3 });
      const same = Buffer.from(api.decompress(c).bytes()).equals(Buffer.from(pruned.bytes()));
      return {
        size: `${ROWS}x${COLS} f32 -> ${fmtBytes(c.byteLength)}`, bytes: pruned.byteLength + c.byteLength, samples,
        notes: [`decompress: ${((pruned.byteLength + c.byteLength) / median(dec) / 1e9).toFixed(2)} GB/s`], errors: same ? [] : ['the round trip is not exact'],
      };
    },
  };
}

module.exports = {
  cases: [
    maskCase('magnitude 50% per row (f32)', { method: 'magnitude', sparsity: 0.5 }, { peerOp: 'magnitude_row', targets: { peer: 10 } }),
    maskCase('wanda 50% per row (f32)', { method: 'wanda', sparsity: 0.5 }, { peerOp: 'wanda_row', targets: { peer: 10 } }),
    maskCase('magnitude 2:4 (f32)', { method: 'magnitude', pattern: '2:4' }, { peerOp: 'magnitude_24', targets: { memcpy: 0.4 } }),
    maskCase('magnitude 4:8 (f32)', { method: 'magnitude', pattern: '4:8' }, { peerOp: 'magnitude_48', targets: {} }),
    applyCase(),
    maskApply24Case(),
    compressCase('sparse-24-bitmask'),
    compressCase('sparse-bitmask'),
    compressCase('nv24'),
  ],
};
