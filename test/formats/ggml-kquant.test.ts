// SPDX-License-Identifier: MIT
// The lane-parallel q4_K / q5_K / q6_K quantizers (kernels/cpu/arch/x86/ggml-kquant-*.cpp) against the scalar
// reference (kernels/ref/ggml-quant-ref.cpp, itself checked against ggml by ggml-golden.test.ts): byte-identical on
// every SIMD tier, on inputs that drive each branch of the reference's searches (constant sub-blocks where
// max == min, all-zero sub-blocks and super-blocks, sub-blocks whose scale quantizes to 0 so that the search's own
// codes reach the output, exact ties, outliers that overflow the weighted sums, subnormals, one-signed sub-blocks).
import { afterAll, describe, expect, it } from 'vitest';
import { native } from '../../lib/native';

const TYPES: [string, number, number][] = [['q4_k', 12, 144], ['q5_k', 13, 176], ['q6_k', 14, 210]];
const ALL = ['baseline', 'avx2', 'avx512'] as const;
const tiers = ALL.slice(0, ALL.indexOf(native.cpuInfo().simdSupported as (typeof ALL)[number]) + 1);
afterAll(() => native.setSimd(native.cpuInfo().simdSupported as (typeof ALL)[number]));

let seed = 7;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32; };
const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());

/** Value i of a row, for each family (sub-blocks are 32 values for q4_K/q5_K, 16 for q6_K). */
const families: Record<string, (i: number) => number> = {
  random: () => rnd() - 0.5,
  gaussian: () => gauss() * 0.02,
  ties: (i) => ((i % 256) - 128) / 8,
  smallInts: () => Math.floor(rnd() * 7) - 3,
  zeroSubBlocks: (i) => (Math.floor(i / 16) % 3 === 0 ? 0 : rnd() - 0.5),
  zeroSuperBlocks: (i) => (Math.floor(i / 256) % 2 === 0 ? 0 : gauss()),
  negativeZeros: (i) => (i % 3 === 0 ? -0 : -rnd()),
  constantNegative: (i) => (Math.floor(i / 32) % 3 === 0 ? -0.25 * (1 + (Math.floor(i / 32) % 5)) : rnd() - 0.5),
  constantPositive: (i) => (Math.floor(i / 32) % 3 === 0 ? 0.75 : rnd() - 0.5),
  constant16: (i) => (Math.floor(i / 16) % 2 === 0 ? -1.5 : rnd() - 0.5),
  constantRow: () => 3.25,
  negativeOnly: () => -rnd() - 0.01,
  positiveOnly: () => rnd() + 0.01,
  oneSignedSubBlocks: (i) => (Math.floor(i / 16) % 2 === 0 ? 1 : -1) * (rnd() + 0.5),
  // Scales spanning 10^-4 .. 10^3 between sub-blocks: small ones quantize to scale 0 and keep the search's codes.
  scaleSpread: (i) => (rnd() - 0.5) * 10 ** ((Math.floor(i / 16) % 8) - 4),
  outliers: (i) => (i % 37 === 0 ? 500 : 1) * (rnd() - 0.5),
  // |x| near FLT_MAX: squares and weighted sums overflow to infinity and NaN inside the searches.
  hugeOutliers: (i) => (i % 97 === 0 ? 3e38 : 1) * (rnd() - 0.5),
  hugeAll: () => (rnd() - 0.5) * 1e38,
  subnormal: () => (rnd() - 0.5) * 1e-40,
  subnormalMix: (i) => (rnd() - 0.5) * (i % 64 < 32 ? 1e-39 : 1e-30),
  tinyNormal: () => (rnd() - 0.5) * 1e-20,
  // Around q6_K's group threshold (|max| < 1e-15 gives a zero sub-block) and the scale threshold 1e-15.
  nearGroupEps: (i) => (i % 2 ? 1 : -1) * 1e-15 * (0.998 + 0.004 * rnd()) * (i % 16 === 3 ? 1 : 0.5),
};

function check(id: number, bytes: number, blocks: number, x: Float32Array, checkFinite: boolean): string[] {
  const n = blocks * 256;
  const want = new Uint8Array(blocks * bytes);
  native.quantizeGgmlSync(x, id, want, n, checkFinite, 'ref');
  const bad: string[] = [];
  for (const tier of tiers) {
    native.setSimd(tier);
    const got = new Uint8Array(blocks * bytes);
    native.quantizeGgmlSync(x, id, got, n, checkFinite, 'auto');
    if (Buffer.compare(want, got) !== 0) {
      let k = 0;
      while (want[k] === got[k]) k++;
      bad.push(`${tier}: block ${Math.floor(k / bytes)} byte ${k % bytes}`);
    }
  }
  return bad;
}

describe('q4_K / q5_K / q6_K: every SIMD tier is byte-identical to the scalar reference', () => {
  for (const [name, id, bytes] of TYPES) {
    it(`${name}: ${Object.keys(families).length} input families on 1, 2, 3, 5 and 17 super-blocks`, () => {
      const failures: string[] = [];
      for (const [fam, f] of Object.entries(families)) {
        for (const blocks of [1, 2, 3, 5, 17]) {
          const x = Float32Array.from({ length: blocks * 256 }, (_, i) => f(i));
          for (const b of check(id, bytes, blocks, x, true)) failures.push(`${fam} x${blocks} ${b}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it(`${name}: 2051 super-blocks (several threads' chunks, odd tails) of mixed families`, () => {
      const names = Object.keys(families);
      const blocks = 2051;
      const x = new Float32Array(blocks * 256);
      for (let b = 0; b < blocks; b++) {
        const f = families[names[b % names.length]];
        for (let i = 0; i < 256; i++) x[256 * b + i] = f(256 * b + i);
      }
      expect(check(id, bytes, blocks, x, true)).toEqual([]);
    });

    it(`${name}: NaN and infinity (nonFinite allowed) take the reference path and match it`, () => {
      const blocks = 9;
      const x = Float32Array.from({ length: blocks * 256 }, (_, i) => rnd() - 0.5);
      x[5] = NaN;
      x[256 * 3 + 40] = Infinity;
      x[256 * 6 + 255] = -Infinity;
      x[256 * 8 + 17] = NaN;
      x[256 * 8 + 18] = -Infinity;
      expect(check(id, bytes, blocks, x, false)).toEqual([]);
    });
  }
});
