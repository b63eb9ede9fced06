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
const { ws, native, timeSync, median, fillWeights, fmtBytes, fmtCount, writeSample, findSample } = require('../harness');

const N = 16 << 20;
// Legacy types quantize at 1-3 GB/s on one thread: the reference runs on the full size. The k-quants search
// scales per sub-block and their scalar reference runs at ~0.1 GB/s on one thread, so it quantizes 1M elements.
const REF_N_K = 1 << 20;
// Sample compared with numpy (in its own process, through a file) and with the JS loop.
const SAMPLE_N = 1 << 20;
const TIE_BLOCKS = 64;

const TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q4_k', 'q5_k', 'q6_k'];
const NUMPY_QUANTIZE = new Set(['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k']);
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

/** quantize_row_q4_1_ref / q5_1_ref as plain JS: d = (max - min) / (2^bits - 1), codes trunc((x - min) * id + 0.5). */
function jsQuantizeAsym(bits) {
  const levels = (1 << bits) - 1;
  const bytes = bits === 4 ? 20 : 24;
  return (x, out, n) => {
    const fr = Math.fround;
    for (let o = 0, p = 0; o < n; o += 32, p += bytes) {
      let min = Infinity;
      let max = -Infinity;
      for (let j = 0; j < 32; j++) {
        const v = x[o + j];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const d = fr(fr(max - min) / levels);
      const id = d ? fr(1 / d) : 0;
      const h = fp16Bits(d);
      const m = fp16Bits(min);
      out[p] = h & 0xff;
      out[p + 1] = h >>> 8;
      out[p + 2] = m & 0xff;
      out[p + 3] = m >>> 8;
      let qh = 0;
      const qs = p + (bits === 4 ? 4 : 8);
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(levels, Math.trunc(fr(fr(fr(x[o + j] - min) * id) + 0.5)));
        const q1 = Math.min(levels, Math.trunc(fr(fr(fr(x[o + 16 + j] - min) * id) + 0.5)));
        out[qs + j] = (q0 & 15) | ((q1 & 15) << 4);
        qh |= ((q0 >> 4) & 1) << j;
        qh |= ((q1 >> 4) & 1) << (j + 16);
      }
      if (bits === 5) {
        out[p + 4] = qh & 0xff;
        out[p + 5] = (qh >>> 8) & 0xff;
        out[p + 6] = (qh >>> 16) & 0xff;
        out[p + 7] = (qh >>> 24) & 0xff;
      }
    }
  };
}

/** quantize_row_q5_0_ref as plain JS: d = signed max / -16, codes min(31, trunc(x * id + 16.5)). */
function jsQuantizeQ5_0(x, out, n) {
  const fr = Math.fround;
  for (let o = 0, p = 0; o < n; o += 32, p += 22) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[o + j]);
      if (amax < a) {
        amax = a;
        max = x[o + j];
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    const h = fp16Bits(d);
    out[p] = h & 0xff;
    out[p + 1] = h >>> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(fr(fr(x[o + j] * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(fr(fr(x[o + 16 + j] * id) + 16.5)));
      out[p + 6 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    out[p + 2] = qh & 0xff;
    out[p + 3] = (qh >>> 8) & 0xff;
    out[p + 4] = (qh >>> 16) & 0xff;
    out[p + 5] = (qh >>> 24) & 0xff;
  }
}

/** fp16 bits -> value (exact). */
function halfValue(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** ggml's nearest_int: the f32 sum with 1.5 * 2^23 rounds to an integer, half to even. */
const nearestInt = (f) => Math.fround(f + 12582912) - 12582912;

/** make_qkx2_quants (no importance matrix) on x[o .. o+32) with weights w: [scale, -min], codes in L. */
function jsMakeQkx2(x, o, w, nmax, rmin, nstep, L, Laux) {
  const fr = Math.fround;
  const n = 32;
  const rdelta = fr(0.1);
  let min = x[o];
  let max = x[o];
  let sumW = w[0];
  let sumX = fr(sumW * x[o]);
  for (let i = 1; i < n; i++) {
    if (x[o + i] < min) min = x[o + i];
    if (x[o + i] > max) max = x[o + i];
    sumW = fr(sumW + w[i]);
    sumX = fr(sumX + fr(w[i] * x[o + i]));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[o + i] - min)));
    L[i] = l < 0 ? 0 : l > nmax ? nmax : l;
    let d = fr(fr(fr(scale * L[i]) + min) - x[o + i]);
    d = fr(d * d);
    best = fr(best + fr(w[i] * d));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fr(iscale * fr(x[o + i] - min)));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      Laux[i] = l;
      const wl = fr(w[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[o + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let ts = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let tm = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (tm > 0) {
        tm = 0;
        ts = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        let d = fr(fr(fr(ts * Laux[i]) + tm) - x[o + i]);
        d = fr(d * d);
        cur = fr(cur + fr(w[i] * d));
      }
      if (cur < best) {
        L.set(Laux);
        best = cur;
        scale = ts;
        min = tm;
      }
    }
  }
  return [scale, -min];
}

/** quantize_row_q4_K_ref / q5_K_ref as plain JS (the scale search, 6-bit scales and mins, requantization). */
function jsQuantizeK(five) {
  const nmax = five ? 31 : 15;
  const rmin = five ? -0.5 : -1;
  const nstep = five ? 15 : 20;
  const bytes = five ? 176 : 144;
  return (x, out, n) => {
    const fr = Math.fround;
    const L = new Uint8Array(256);
    const Ls = new Uint8Array(32);
    const Laux = new Uint8Array(32);
    const w = new Float32Array(32);
    const scales = new Float32Array(8);
    const mins = new Float32Array(8);
    for (let o = 0, p = 0; o < n; o += 256, p += bytes) {
      let maxScale = 0;
      let maxMin = 0;
      for (let j = 0; j < 8; j++) {
        let sx2 = 0;
        for (let l = 0; l < 32; l++) sx2 = fr(sx2 + fr(x[o + 32 * j + l] * x[o + 32 * j + l]));
        const av = fr(Math.sqrt(fr(sx2 / 32)));
        for (let l = 0; l < 32; l++) w[l] = fr(av + Math.abs(x[o + 32 * j + l]));
        const [sc, mn] = jsMakeQkx2(x, o + 32 * j, w, nmax, rmin, nstep, Ls, Laux);
        L.set(Ls, 32 * j);
        scales[j] = sc;
        mins[j] = mn;
        if (scales[j] > maxScale) maxScale = scales[j];
        if (mins[j] > maxMin) maxMin = mins[j];
      }
      const invS = maxScale > 0 ? fr(63 / maxScale) : 0;
      const invM = maxMin > 0 ? fr(63 / maxMin) : 0;
      const sc = out.subarray(p + 4, p + 16);
      sc.fill(0);
      const ls = new Uint8Array(8);
      const lm = new Uint8Array(8);
      for (let j = 0; j < 8; j++) {
        ls[j] = Math.min(63, nearestInt(fr(invS * scales[j])) & 0xff);
        lm[j] = Math.min(63, nearestInt(fr(invM * mins[j])) & 0xff);
        if (j < 4) {
          sc[j] = ls[j];
          sc[j + 4] = lm[j];
        } else {
          sc[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
          sc[j - 4] |= (ls[j] >> 4) << 6;
          sc[j] |= (lm[j] >> 4) << 6;
        }
      }
      const dh = fp16Bits(fr(maxScale / 63));
      const mh = fp16Bits(fr(maxMin / 63));
      out[p] = dh & 0xff;
      out[p + 1] = dh >>> 8;
      out[p + 2] = mh & 0xff;
      out[p + 3] = mh >>> 8;
      for (let j = 0; j < 8; j++) {
        const d = fr(halfValue(dh) * ls[j]);
        if (d === 0) continue;
        const dm = fr(halfValue(mh) * lm[j]);
        for (let ii = 0; ii < 32; ii++) {
          const l = nearestInt(fr(fr(x[o + 32 * j + ii] + dm) / d));
          L[32 * j + ii] = l < 0 ? 0 : l > nmax ? nmax : l;
        }
      }
      if (!five) {
        for (let j = 0, q = p + 16; j < 256; j += 64, q += 32) for (let l = 0; l < 32; l++) out[q + l] = L[j + l] | (L[j + l + 32] << 4);
      } else {
        const qh = out.subarray(p + 16, p + 48);
        qh.fill(0);
        let m1 = 1;
        let m2 = 2;
        for (let j = 0, q = p + 48; j < 256; j += 64, q += 32, m1 <<= 2, m2 <<= 2) {
          for (let l = 0; l < 32; l++) {
            let l1 = L[j + l];
            let l2 = L[j + l + 32];
            if (l1 > 15) {
              l1 -= 16;
              qh[l] |= m1;
            }
            if (l2 > 15) {
              l2 -= 16;
              qh[l] |= m2;
            }
            out[q + l] = l1 | (l2 << 4);
          }
        }
      }
    }
  };
}

/** make_qx_quants (rmse_type 1, w = x^2) on x[o .. o+16), nmax 32: the scale; codes + 32 in L. */
function jsMakeQx(x, o, L) {
  const fr = Math.fround;
  const nmax = 32;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < 16; i++) {
    const a = Math.abs(x[o + i]);
    if (a > amax) {
      amax = a;
      max = x[o + i];
    }
  }
  if (amax < Math.fround(1e-15)) {
    L.fill(0);
    return 0;
  }
  const sums = (iscale, write) => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < 16; i++) {
      let l = nearestInt(fr(iscale * x[o + i]));
      l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
      if (write) L[i] = l + nmax;
      const w = fr(x[o + i] * x[o + i]);
      sumlx = fr(sumlx + fr(fr(w * x[o + i]) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = sums(fr(-nmax / max), true);
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    [sumlx, suml2] = sums(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      sums(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** quantize_row_q6_K_ref as plain JS. */
function jsQuantizeQ6K(x, out, n) {
  const fr = Math.fround;
  const L = new Uint8Array(256);
  const Ls = new Uint8Array(16);
  const scales = new Float32Array(16);
  for (let o = 0, p = 0; o < n; o += 256, p += 210) {
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      scales[ib] = jsMakeQx(x, o + 16 * ib, Ls);
      L.set(Ls, 16 * ib);
      const a = Math.abs(scales[ib]);
      if (a > maxAbs) {
        maxAbs = a;
        maxScale = scales[ib];
      }
    }
    if (maxAbs < fr(1e-15)) {
      out.fill(0, p, p + 210);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const dh = fp16Bits(fr(1 / iscale));
    out[p + 208] = dh & 0xff;
    out[p + 209] = dh >>> 8;
    for (let ib = 0; ib < 16; ib++) {
      const v = Math.min(127, nearestInt(fr(iscale * scales[ib])));
      out[p + 192 + ib] = v & 0xff;
      const d = fr(halfValue(dh) * ((v << 24) >> 24));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(x[o + 16 * ib + ii] / d));
        L[16 * ib + ii] = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
      }
    }
    for (let j = 0, ql = p, qh = p + 128; j < 256; j += 128, ql += 64, qh += 32) {
      for (let l = 0; l < 32; l++) {
        out[ql + l] = (L[j + l] & 0xf) | ((L[j + l + 64] & 0xf) << 4);
        out[ql + l + 32] = (L[j + l + 32] & 0xf) | ((L[j + l + 96] & 0xf) << 4);
        out[qh + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
      }
    }
  }
}

const JS_LOOPS = {
  q6_k: jsQuantizeQ6K,
  q8_0: jsQuantizeQ8_0, q4_0: jsQuantizeQ4_0, q4_1: jsQuantizeAsym(4), q5_0: jsQuantizeQ5_0, q5_1: jsQuantizeAsym(5),
  q4_k: jsQuantizeK(false), q5_k: jsQuantizeK(true),
};

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

/** Writes [u32 element count][first part][second part] for the numpy peer's check. */
function writeCheckSample(op, type, n, first, second) {
  const head = new Uint32Array([n]);
  writeSample(`quant-${op}-${type}`, [head, first, second]);
}

function numpyPeer(op, type) {
  return {
    label: 'numpy',
    script: 'quant.py',
    // A getter: read when run.js starts the peer, after the case has written its sample.
    get args() {
      const f = findSample(`quant-${op}-${type}`);
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
      if (hasNumpy) writeCheckSample('quantize', type, sample.length, sample, sampleOut);

      const jsLoop = JS_LOOPS[type];
      if (jsLoop) {
        // The k-quant searches take seconds in JS: their loop runs on the reference's share (refN elements).
        const jsN = slow ? refN : N;
        const jsOut = new Uint8Array(blockBytes(jsN));
        const jsSamples = timeSync(() => jsLoop(x, jsOut, jsN), slow ? { warmup: 0, reps: 1, minReps: 1, budget: 1 } : { warmup: 1, reps: 3, minReps: 1, budget: 1.5 });
        const jsGbps = gbpsOf(jsN * 4 + blockBytes(jsN), jsSamples);
        const diffs = countDiffs(jsOut, out.subarray(0, jsOut.length), bb);
        const jsSampleOut = new Uint8Array(sampleOut.length);
        jsLoop(sample, jsSampleOut, sample.length);
        const tieDiffs = countDiffs(jsSampleOut.subarray(blockBytes(SAMPLE_N)), sampleOut.subarray(blockBytes(SAMPLE_N)), bb);
        const ours = gbpsOf(bytes, samples);
        Object.assign(metrics, { jsLoopGbps: jsGbps, jsLoopRatio: ours / jsGbps, jsLoopBlockDiffs: diffs, jsLoopTieBlockDiffs: tieDiffs });
        const same = diffs === 0 && tieDiffs === 0
          ? `byte-equal to ours on all ${jsN / be} blocks + the tie blocks`
          : `differs from ours in ${diffs} of ${jsN / be} blocks and ${tieDiffs} tie blocks`;
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
        writeCheckSample('dequantize', type, SAMPLE_N, blocks.subarray(0, blockBytes(SAMPLE_N)), y.subarray(0, SAMPLE_N));
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

// ------------------------------------------------------------------------------- scheme cases (int, fp8)

// Schemes with scales (compressed-tensors int and fp8; bitsandbytes 4-bit is in bnb4.js) on a 4096 x 4096 f32 and
// bf16 weight: quantize times the kernel into allocated buffers (the public API's figure, which includes
// allocating the outputs, is in a note), dequantize the public API; GB/s counts the input bytes plus the stored
// parts plus the f32 output (dequantize). They are compared with: our scalar reference kernel (backend 'ref',
// one thread, same data, byte-equal or an error), a plain JavaScript loop of the same formula (this process, the
// first JS_ROWS rows, compared byte for byte with ours) and, in its own process, numpy (bench/peers/scheme.py,
// vectorized, same shape and dtype, checked against ours on a SAMPLE_ROWS-row sample).
const SCHEMES = [
  ['int4 g128', { scheme: 'int', bits: 4, groupSize: 128 }],
  ['int4 g128 asym', { scheme: 'int', bits: 4, groupSize: 128, symmetric: false }],
  ['int8 channel', { scheme: 'int', bits: 8, groupSize: 'channel' }],
  ['fp8 channel', { scheme: 'fp8', granularity: 'channel' }],
  ['fp8 block', { scheme: 'fp8', granularity: 'block' }],
];
const S_ROWS = 4096;
const S_COLS = 4096;
const JS_ROWS = 512;
const SAMPLE_ROWS = 256;

// The JS loops read weights and round results through these (bf16 = the top half of an f32).
const jf = new Float32Array(1);
const ju = new Uint32Array(jf.buffer);
const fr = Math.fround;

/** Round an f32 value to bf16 (to nearest even; NaN kept) and back. */
function rbf16(v) {
  jf[0] = v;
  const u = ju[0];
  if ((u & 0x7fffffff) > 0x7f800000) return v;
  ju[0] = ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
  return jf[0];
}

/** Reads weight i of raw f32 / bf16 data. */
function weightReader(bytes, dtype) {
  if (dtype === 'f32') {
    const f = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    return (i) => f[i];
  }
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return (i) => {
    ju[0] = h[i] << 16;
    return jf[0];
  };
}

/** Round half to even of a value already clamped to the code range. */
function roundEven(v) {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && (f & 1)) ? f + 1 : f;
}

/** Writes bits of value u at bit position `bit` of a word array (LSB first). */
function putBits(words, bit, u, bits) {
  const w = bit >>> 5;
  const o = bit & 31;
  words[w] |= u << o;
  if (o + bits > 32) words[w + 1] |= u >>> (32 - o);
}

/** compressed-tensors int RTN as plain JS (the reference's steps, Math.fround / rbf16 after each). */
function jsIntQuantize(bytes, dtype, rows, cols, bits, groupSize, symmetric) {
  const rw = dtype === 'f32' ? fr : rbf16;
  const x = weightReader(bytes, dtype);
  const qmin = -(1 << (bits - 1));
  const qmax = (1 << (bits - 1)) - 1;
  const off = 1 << (bits - 1);
  const eps = dtype === 'f32' ? 2 ** -23 : 2 ** -7;
  const g = groupSize === 'channel' ? cols : groupSize;
  const ng = Math.ceil(cols / g);
  const wpr = Math.ceil((cols * bits) / 32);
  const packed = new Int32Array(rows * wpr);
  const scales = new Float32Array(rows * ng);
  const zw = Math.ceil((rows * bits) / 32);
  const zps = symmetric ? null : new Int32Array(zw * ng);
  const half = rw((qmax - qmin) / 2);
  for (let r = 0; r < rows; r++) {
    const row = packed.subarray(r * wpr, (r + 1) * wpr);
    for (let gi = 0; gi < ng; gi++) {
      const c0 = gi * g;
      const c1 = Math.min(cols, c0 + g);
      let mn = 0;
      let mx = 0;
      for (let c = c0; c < c1; c++) {
        const v = x(r * cols + c);
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      let sc;
      let zp = 0;
      if (symmetric) {
        sc = rw(fr(Math.max(-mn, mx) / half));
      } else {
        sc = rw(fr(rw(fr(mx - mn)) / (qmax - qmin)));
      }
      if (sc === 0) sc = eps;
      if (!symmetric) {
        const z = rw(fr(qmin - rw(fr(mn / sc))));
        zp = Number.isNaN(z) ? 0 : roundEven(Math.min(qmax, Math.max(qmin, z)));
        const bit = r * bits;
        const w = bit >>> 5;
        const o = bit & 31;
        zps[w * ng + gi] |= (zp + off) << o;
        if (o + bits > 32) zps[(w + 1) * ng + gi] |= (zp + off) >>> (32 - o);
      }
      scales[r * ng + gi] = sc;
      for (let c = c0; c < c1; c++) {
        let v = rw(fr(x(r * cols + c) / sc));
        if (!symmetric) v = rw(fr(v + zp));
        const q = Number.isNaN(v) ? 0 : roundEven(v < qmin ? qmin : v > qmax ? qmax : v);
        putBits(row, c * bits, q + off, bits);
      }
    }
  }
  return { packed, scales, zps };
}

/** f32 -> e4m3 code (saturating, round to nearest even), float-bits.h's rule as plain JS. */
function e4m3Code(v) {
  jf[0] = v;
  const x = ju[0];
  const sign = (x >>> 24) & 0x80;
  const ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return sign | 0x7f;
  const e = (ax >>> 23) - 127;
  if (e + 7 >= 1) {
    if (e + 7 > 15) return sign | 0x7e;
    let r = ax - (120 << 23);
    r += 0x7ffff + ((r >>> 20) & 1);
    const code = r >>> 20;
    return sign | (code > 0x7e ? 0x7e : code);
  }
  if ((ax >>> 23) === 0) return sign;
  const shift = 23 + (1 - 7 - 3) - e;
  if (shift > 24) return sign;
  const mant = (ax & 0x7fffff) | 0x800000;
  let q = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1))) q++;
  return sign | q;
}

/** compressed-tensors FP8 (e4m3) as plain JS. */
function jsFp8Quantize(bytes, dtype, rows, cols, granularity) {
  const rw = dtype === 'f32' ? fr : rbf16;
  const x = weightReader(bytes, dtype);
  const eps = dtype === 'f32' ? 2 ** -23 : 2 ** -7;
  const br = granularity === 'block' ? 128 : 1;
  const bc = granularity === 'block' ? 128 : cols;
  const gr = Math.ceil(rows / br);
  const gc = Math.ceil(cols / bc);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(gr * gc);
  for (let a = 0; a < gr; a++) {
    for (let b = 0; b < gc; b++) {
      const r1 = Math.min(rows, (a + 1) * br);
      const c1 = Math.min(cols, (b + 1) * bc);
      let am = 0;
      for (let r = a * br; r < r1; r++) {
        for (let c = b * bc; c < c1; c++) {
          const v = Math.abs(x(r * cols + c));
          if (v > am) am = v;
        }
      }
      let sc = rw(fr(am / 448));
      if (sc === 0) sc = eps;
      scales[a * gc + b] = sc;
      for (let r = a * br; r < r1; r++) {
        for (let c = b * bc; c < c1; c++) {
          let q = rw(fr(x(r * cols + c) / sc));
          q = q < -448 ? -448 : q > 448 ? 448 : q;
          codes[r * cols + c] = e4m3Code(q);
        }
      }
    }
  }
  return { codes, scales };
}

const E4M3_VALUES = (() => {
  const v = new Float32Array(256);
  for (let c = 0; c < 256; c++) {
    const e = (c >>> 3) & 15;
    const m = c & 7;
    const a = (c & 0x7f) === 0x7f ? NaN : e === 0 ? m * 2 ** -9 : (8 + m) * 2 ** (e - 10);
    v[c] = c & 0x80 ? -a : a;
  }
  return v;
})();

/** The former JS dequantizers, unpacking in JS too: (q - zp) * scale rounded to the scale dtype; code * scale. */
function jsIntDequantize(packed, scales, zps, dtype, rows, cols, bits, groupSize) {
  const rw = dtype === 'f32' ? fr : rbf16;
  const g = groupSize === 'channel' ? cols : groupSize;
  const ng = Math.ceil(cols / g);
  const wpr = Math.ceil((cols * bits) / 32);
  const off = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < ng; gi++) {
      let zp = 0;
      if (zps) {
        const bit = r * bits;
        const w = bit >>> 5;
        const o = bit & 31;
        let u = zps[w * ng + gi] >>> o;
        if (o + bits > 32) u |= zps[(w + 1) * ng + gi] << (32 - o);
        zp = (u & mask) - off;
      }
      const sc = scales[r * ng + gi];
      for (let c = gi * g, c1 = Math.min(cols, c + g); c < c1; c++) {
        const bit = c * bits;
        const w = r * wpr + (bit >>> 5);
        const o = bit & 31;
        let u = packed[w] >>> o;
        if (o + bits > 32) u |= packed[w + 1] << (32 - o);
        out[r * cols + c] = rw(fr(((u & mask) - off - zp) * sc));
      }
    }
  }
  return out;
}

function jsFp8Dequantize(codes, scales, rows, cols, granularity) {
  const br = granularity === 'block' ? 128 : 1;
  const bc = granularity === 'block' ? 128 : cols;
  const gc = Math.ceil(cols / bc);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / br) * gc;
    for (let c = 0; c < cols; c++) out[r * cols + c] = fr(E4M3_VALUES[codes[r * cols + c]] * scales[srow + Math.floor(c / bc)]);
  }
  return out;
}

const u8 = (a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const sameBytes = (a, b) => Buffer.compare(Buffer.from(u8(a)), Buffer.from(u8(b))) === 0;

/** The parts in a fixed order, for the numpy check file and the reference comparison. */
function partList(q) {
  return Object.entries(q.parts).filter(([k]) => k !== 'weight_shape').map(([k, t]) => [k, t.bytes()]);
}

/** Writes the numpy peer's check file: header length, JSON header, then the parts' bytes. */
function writeSchemeSample(name, rows, cols, parts) {
  const head = Buffer.from(JSON.stringify({ rows, cols, parts: parts.map(([k, b]) => [k, b.byteLength]) }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(head.length);
  writeSample(`quant-scheme-${name}`, [len, head, ...parts.map(([, b]) => u8(b))]);
}

function schemePeerArgs(op, spec, dtype) {
  if (spec.scheme === 'int') {
    return [op, 'int', String(spec.bits), String(spec.groupSize), spec.symmetric === false ? '0' : '1', dtype, String(S_ROWS), String(S_COLS)];
  }
  return [op, 'fp8', spec.granularity, dtype, String(S_ROWS), String(S_COLS)];
}

function schemePeer(op, spec, dtype, name) {
  return {
    label: 'numpy',
    script: 'scheme.py',
    get args() {
      const f = findSample(`quant-scheme-${name}`);
      return [...schemePeerArgs(op, spec, dtype), ...(f ? ['--check', f] : [])];
    },
  };
}

/** The weight (f32 or bf16) as a tensor, the same data for every scheme case. */
function schemeWeight(api, dtype, rows = S_ROWS) {
  const x32 = api.tensor(fillWeights(new Float32Array(rows * S_COLS)), [rows, S_COLS]);
  return dtype === 'f32' ? x32 : x32.to(dtype);
}

/** Our scalar reference (backend 'ref', one thread) on the whole weight, in the stored layout. */
function refQuantize(addon, api, x, spec, backend = 'ref') {
  const rows = x.shape[0];
  const cols = x.shape[1];
  const es = x.dtype === 'f32' ? 4 : 2;
  if (spec.scheme === 'int') {
    const g = spec.groupSize === 'channel' ? cols : spec.groupSize;
    const ng = Math.ceil(cols / g);
    const packed = new Int32Array(rows * Math.ceil((cols * spec.bits) / 32));
    const scales = new Uint8Array(rows * ng * es);
    const zps = spec.symmetric === false ? new Int32Array(Math.ceil((rows * spec.bits) / 32) * ng) : null;
    const run = () => addon.quantizeIntSync(x.bytes(), x.dtype, packed, scales, zps, rows, cols, spec.bits, spec.symmetric !== false,
      spec.groupSize === 'channel' ? 0 : g, false, true, backend);
    return { run, parts: () => [['weight_packed', packed], ['weight_scale', scales], ...(zps ? [['weight_zero_point', zps]] : [])] };
  }
  const [br, bc] = spec.granularity === 'block' ? [128, 128] : [1, 0];
  const groups = spec.granularity === 'block' ? Math.ceil(rows / 128) * Math.ceil(cols / 128) : rows;
  const codes = new Uint8Array(rows * cols);
  const scales = new Uint8Array(groups * es);
  const run = () => addon.quantizeFp8Sync(x.bytes(), x.dtype, codes, scales, rows, cols, br, bc, 'f8_e4m3', [], null, true, backend);
  return { run, parts: () => [['weight', codes], ['weight_scale', scales]] };
}

/** The JS loop on the first `rows` rows: a runner and its parts in the stored layout. */
function jsQuantizer(x, spec, rows) {
  const cols = x.shape[1];
  const bytes = x.bytes().subarray(0, rows * cols * (x.dtype === 'f32' ? 4 : 2));
  let out = null;
  const run = () => {
    out = spec.scheme === 'int'
      ? jsIntQuantize(bytes, x.dtype, rows, cols, spec.bits, spec.groupSize, spec.symmetric !== false)
      : jsFp8Quantize(bytes, x.dtype, rows, cols, spec.granularity);
  };
  const scaleBytes = (s) => (x.dtype === 'f32' ? s : new Uint16Array(Uint32Array.from(new Uint32Array(s.buffer), (u) => u >>> 16)));
  const parts = () => (spec.scheme === 'int'
    ? [['weight_packed', out.packed], ['weight_scale', scaleBytes(out.scales)], ...(out.zps ? [['weight_zero_point', out.zps]] : [])]
    : [['weight', out.codes], ['weight_scale', scaleBytes(out.scales)]]);
  return { run, parts, bytes: bytes.byteLength };
}

/** Which stored bytes of ours belong to the first `rows` rows (the JS loop's share), per part. */
function prefixOf(name, b, spec, rows, cols) {
  const v = u8(b);
  if (name === 'weight_zero_point') {
    const ng = Math.ceil(cols / (spec.groupSize === 'channel' ? cols : spec.groupSize));
    return v.subarray(0, Math.ceil((rows * spec.bits) / 32) * ng * 4);
  }
  if (name === 'weight_scale' && spec.scheme === 'fp8' && spec.granularity === 'block') {
    return v.subarray(0, (v.length / Math.ceil(S_ROWS / 128)) * Math.ceil(rows / 128));
  }
  return v.subarray(0, (v.length / S_ROWS) * rows);
}

function schemeCase([label, spec], dtype) {
  const hasPeers = spec.scheme === 'int' || spec.scheme === 'fp8';
  const name = `${label.replace(/ /g, '_')}-${dtype}`;
  return {
    name: `quantize ${label} (${dtype})`,
    targets: { memcpy: 0.5, peer: hasPeers ? 10 : undefined },
    peer: hasPeers ? schemePeer('quantize', spec, dtype, `q-${name}`) : undefined,
    async run() {
      const api = ws();
      const addon = native();
      api.setThreads(2);
      const x = schemeWeight(api, dtype);
      let q = api.quantizeSync(x, spec);
      const bytes = x.byteLength + q.byteLength;
      // The kernel into allocated output buffers (as the ggml and bitsandbytes cases time it), and the public API,
      // which also allocates (and page-faults) its outputs on every call.
      const apiSamples = timeSync(() => { q = api.quantizeSync(x, spec); }, { warmup: 2, reps: 11, minReps: 3, budget: 3 });
      let samples = apiSamples;
      const errors = [];
      if (hasPeers) {
        const k = refQuantize(addon, api, x, spec, 'auto');
        samples = timeSync(k.run, { warmup: 2, reps: 11, minReps: 3, budget: 3 });
        const mine = Object.fromEntries(partList(q));
        for (const [part, b] of k.parts()) if (!sameBytes(b, mine[part])) errors.push(`the kernel and the public API differ in ${part}`);
      }
      const deq = timeSync(() => api.dequantizeSync(q), { warmup: 1, reps: 5, minReps: 1, budget: 2 });
      const c = api.compare(x, api.dequantizeSync(q, dtype));
      const ours = gbpsOf(bytes, samples);
      const notes = [`public API incl. output allocation: ${gbpsOf(bytes, apiSamples).toFixed(2)} GB/s`,
        `dequantize: ${gbpsOf(q.byteLength + x.numel * 4, deq).toFixed(2)} GB/s (see the dequantize case)`, `SQNR ${c.sqnrDb.toFixed(1)} dB`];
      const metrics = { apiGbps: gbpsOf(bytes, apiSamples) };
      let ref;
      if (hasPeers) {
        // The scalar reference, one thread, the whole weight: byte-equal to ours or an error.
        const r = refQuantize(addon, api, x, spec);
        api.setThreads(1);
        const refSamples = timeSync(r.run, { warmup: 0, reps: 2, minReps: 1, budget: 2 });
        api.setThreads(2);
        const mine = Object.fromEntries(partList(q));
        for (const [k, b] of r.parts()) if (!sameBytes(b, mine[k])) errors.push(`the reference and the optimized kernel differ in ${k}`);
        ref = { bytes, samples: refSamples, size: `${S_ROWS}x${S_COLS} ${dtype}` };

        // The JS loop on the first JS_ROWS rows, compared byte for byte with our rows.
        const js = jsQuantizer(x, spec, JS_ROWS);
        const jsSamples = timeSync(js.run, { warmup: 1, reps: 3, minReps: 1, budget: 2 });
        const jsBytes = js.bytes + js.parts().reduce((a, [, b]) => a + b.byteLength, 0);
        const jsGbps = gbpsOf(jsBytes, jsSamples);
        const diff = js.parts().filter(([k, b]) => !sameBytes(b, prefixOf(k, mine[k], spec, JS_ROWS, S_COLS))).map(([k]) => k);
        Object.assign(metrics, { jsLoopGbps: jsGbps, jsLoopRatio: ours / jsGbps, jsLoopRows: JS_ROWS, jsLoopDiffParts: diff });
        notes.push(`JS loop (${JS_ROWS} rows): ${jsGbps.toFixed(3)} GB/s (ours ${(ours / jsGbps).toFixed(0)}x), ${diff.length ? `differs from ours in ${diff.join(', ')}` : 'byte-equal to ours'}`);

        // The numpy check sample: the first SAMPLE_ROWS rows and what we store for them.
        const xs = api.tensor(x.data.subarray(0, SAMPLE_ROWS * S_COLS), [SAMPLE_ROWS, S_COLS], x.dtype);
        writeSchemeSample(`q-${name}`, SAMPLE_ROWS, S_COLS, [['x', xs.bytes()], ...partList(api.quantizeSync(xs, spec))]);
      }
      return {
        size: `${S_ROWS}x${S_COLS} ${dtype}, ${fmtBytes(x.byteLength)} -> ${fmtBytes(q.byteLength)}`,
        bytes,
        samples,
        ...(ref ? { ref } : {}),
        notes,
        metrics,
        errors,
      };
    },
  };
}

function schemeDequantizeCase([label, spec], dtype) {
  const name = `${label.replace(/ /g, '_')}-${dtype}`;
  return {
    name: `dequantize ${label} (${dtype})`,
    targets: { memcpy: 0.5, peer: 10 },
    peer: schemePeer('dequantize', spec, dtype, `d-${name}`),
    async run() {
      const api = ws();
      api.setThreads(2);
      const x = schemeWeight(api, dtype);
      const q = api.quantizeSync(x, spec);
      let y = api.dequantizeSync(q);
      const bytes = q.byteLength + y.byteLength;
      const samples = timeSync(() => { y = api.dequantizeSync(q); }, { warmup: 2, reps: 11, minReps: 3, budget: 3 });
      const notes = [];
      const metrics = {};
      // The JS loop on the first JS_ROWS rows (the former lib/quantized.ts loops, unpacking in JS too).
      const scales = q.parts.weight_scale.to('f32').data;
      const zps = q.parts.weight_zero_point ? q.parts.weight_zero_point.data : null;
      let jsOut;
      const run = spec.scheme === 'int'
        ? () => { jsOut = jsIntDequantize(q.parts.weight_packed.data, scales, zps, dtype, JS_ROWS, S_COLS, spec.bits, spec.groupSize); }
        : () => { jsOut = jsFp8Dequantize(q.parts.weight.data, scales, JS_ROWS, S_COLS, spec.granularity); };
      const jsSamples = timeSync(run, { warmup: 1, reps: 3, minReps: 1, budget: 2 });
      const jsBytes = (bytes * JS_ROWS) / S_ROWS;
      const jsGbps = gbpsOf(jsBytes, jsSamples);
      const ours = gbpsOf(bytes, samples);
      const same = sameBytes(jsOut, y.data.subarray(0, JS_ROWS * S_COLS));
      Object.assign(metrics, { jsLoopGbps: jsGbps, jsLoopRatio: ours / jsGbps, jsLoopRows: JS_ROWS, jsLoopEqual: same });
      notes.push(`JS loop (${JS_ROWS} rows): ${jsGbps.toFixed(3)} GB/s (ours ${(ours / jsGbps).toFixed(0)}x), ${same ? 'byte-equal to ours' : 'differs from ours'}`);
      // The numpy check sample: stored parts of a SAMPLE_ROWS-row weight and our f32 output for it.
      const xs = api.tensor(x.data.subarray(0, SAMPLE_ROWS * S_COLS), [SAMPLE_ROWS, S_COLS], x.dtype);
      const qs = api.quantizeSync(xs, spec);
      writeSchemeSample(`d-${name}`, SAMPLE_ROWS, S_COLS, [['x', xs.bytes()], ...partList(qs), ['out', api.dequantizeSync(qs).bytes()]]);
      return {
        size: `${S_ROWS}x${S_COLS} ${dtype}, ${fmtBytes(q.byteLength)} -> ${fmtBytes(y.byteLength)} f32`,
        bytes,
        samples,
        notes,
        metrics,
        errors: [],
      };
    },
  };
}

const DEQUANT_SCHEMES = SCHEMES.filter(([, sp]) => sp.scheme === 'int' || sp.scheme === 'fp8');

module.exports = {
  cases: [
    ...TYPES.map(quantizeCase), ...TYPES.map(dequantizeCase),
    ...SCHEMES.flatMap((sc) => [schemeCase(sc, 'f32'), schemeCase(sc, 'bf16')]),
    ...DEQUANT_SCHEMES.flatMap((sc) => [schemeDequantizeCase(sc, 'f32'), schemeDequantizeCase(sc, 'bf16')]),
  ],
  // The JS-loop peers, exported for ad-hoc checks.
  jsQuantizeQ8_0, jsQuantizeQ4_0, fp16Bits, jsIntQuantize, jsFp8Quantize, jsIntDequantize, jsFp8Dequantize,
};
