// SPDX-License-Identifier: MIT
// Golden ggml blocks written by an independent numpy transcription of ggml's reference quantizers
// (test/fixtures/make-ggml-fixtures.py -> ggml-golden.json; numpy is not needed to run these tests).
// Our quantizer must reproduce every golden block byte for byte, and dequantizing the golden bytes must give
// finite values within each type's error bound.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantizeSync, GgmlType, QuantizedTensor, quantizeSync, tensor } from '../../lib/index';

interface Family {
  name: string;
  description: string;
  rows: number;
  cols: number;
  /** f32 inputs, little-endian bytes in hex. */
  x: string;
  /** Expected block bytes per type, hex. */
  blocks: Record<string, string>;
}

const FIXTURE = path.resolve(__dirname, '../fixtures/ggml-golden.json');
const golden = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as { types: GgmlType[]; families: Family[] };
const TYPES = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'] as const;

function inputOf(f: Family): Float32Array {
  const b = Buffer.from(f.x, 'hex');
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}

const hex = (q: QuantizedTensor) => Buffer.from(q.parts.blocks.bytes()).toString('hex');

/** fp16 bits -> value (exact). */
function half(bits: number): number {
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  const s = bits & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// Rounding an fp16 scale costs at most 2^-11 relative, or 2^-25 absolute below the normal range; a code
// of magnitude up to Q multiplies that. SUB: 2^-24 per unit of code, generous on both counts.
const REL16 = 2 ** -10;
const SUB = 2 ** -24;

/**
 * The largest error dequantization may show on element i of `x`, given the golden block bytes:
 * legacy types are within their step (half a step for the rounding ones, one step where the code
 * saturates); K-quants are within their sub-block's span (a sub-block whose 6- or 8-bit scale rounds to 0
 * decodes to its offset) plus half a quantization step of the block's offset scale.
 */
function bounds(type: (typeof TYPES)[number], x: Float32Array, bytes: Uint8Array): Float64Array {
  const out = new Float64Array(x.length);
  const legacy: Record<string, [number, boolean, number]> = {
    // step fraction of amax (symmetric) or range (asymmetric), asymmetric?, largest code magnitude
    q8_0: [0.5 / 127, false, 128], q4_0: [1 / 8, false, 16], q5_0: [1 / 16, false, 32],
    q4_1: [0.5 / 15, true, 16], q5_1: [0.5 / 31, true, 32],
  };
  if (type in legacy) {
    const [frac, asym, qmax] = legacy[type];
    for (let b = 0; b < x.length / 32; b++) {
      const v = x.subarray(32 * b, 32 * b + 32);
      const amax = Math.max(...v.map(Math.abs));
      const range = Math.max(...v) - Math.min(...v);
      const bound = frac * (asym ? range : amax) * (1 + 1e-6) + REL16 * (amax + range) + qmax * SUB * 2;
      out.fill(bound, 32 * b, 32 * b + 32);
    }
    return out;
  }
  const block = type === 'q4_k' ? 144 : type === 'q5_k' ? 176 : 210;
  const sub = type === 'q6_k' ? 16 : 32;
  for (let b = 0; b < x.length / 256; b++) {
    const bb = bytes.subarray(block * b, block * (b + 1));
    // K-quant offset step: dmin (q4_k/q5_k); q6_k has none.
    const dmin = type === 'q6_k' ? 0 : Math.abs(half(bb[2] | (bb[3] << 8)));
    for (let s = 0; s < 256 / sub; s++) {
      const lo = 256 * b + sub * s;
      const v = x.subarray(lo, lo + sub);
      const amax = Math.max(...v.map(Math.abs));
      // q6_k is symmetric (a collapsed sub-block decodes to 0); q4_k/q5_k keep an offset <= 0.
      const span = type === 'q6_k' ? amax : Math.max(...v) - Math.min(0, ...v);
      const bound = span * (1 + REL16) + dmin * 0.5 + REL16 * amax + 64 * 32 * SUB;
      out.fill(bound, lo, lo + sub);
    }
  }
  return out;
}

// Relative RMS error of dequantize(golden) on every family but 'tiny' (whose fp16 scales underflow).
const RMS: Record<string, number> = {
  q8_0: 0.01, q4_0: 0.1, q4_1: 0.1, q5_0: 0.05, q5_1: 0.05, q4_k: 0.1, q5_k: 0.05, q6_k: 0.025,
};

describe('ggml golden fixtures (numpy transcription of quantize_row_*_ref)', () => {
  it('covers every quantizable type and the planned input families', () => {
    expect([...golden.types].sort()).toEqual([...TYPES].sort());
    expect(golden.families.map((f) => f.name)).toEqual(expect.arrayContaining(
      ['normal_1', 'normal_0.01', 'normal_30', 'ties_256', 'ties_32', 'zeros', 'outliers', 'tiny', 'constant', 'negative']));
    for (const f of golden.families) {
      expect(inputOf(f).length).toBe(f.rows * f.cols);
      for (const t of TYPES) expect(f.blocks[t]).toBeTypeOf('string');
    }
  });

  for (const f of golden.families) {
    describe(`${f.name}: ${f.description}`, () => {
      const x = inputOf(f);
      const t = tensor(x, [f.rows, f.cols]);
      for (const type of TYPES) {
        it(`${type}: quantizeSync reproduces the golden blocks byte for byte`, () => {
          expect(hex(quantizeSync(t, { scheme: 'ggml', type }))).toBe(f.blocks[type]);
        });

        it(`${type}: dequantizing the golden blocks is finite and within the error bound`, () => {
          const bytes = new Uint8Array(Buffer.from(f.blocks[type], 'hex'));
          const q = new QuantizedTensor({ scheme: 'ggml', type }, [f.rows, f.cols], { blocks: tensor(bytes, [bytes.length]) });
          const y = dequantizeSync(q).data as Float32Array;
          expect(y.length).toBe(x.length);
          const bound = bounds(type, x, bytes);
          let worst = -Infinity;
          let where = -1;
          let se = 0;
          let sx = 0;
          for (let i = 0; i < x.length; i++) {
            expect(Number.isFinite(y[i])).toBe(true);
            const excess = Math.abs(y[i] - x[i]) - bound[i];
            if (excess > worst) { worst = excess; where = i; }
            se += (y[i] - x[i]) ** 2;
            sx += x[i] ** 2;
          }
          expect(worst, `element ${where}: x ${x[where]}, y ${y[where]}, bound ${bound[where]}`).toBeLessThanOrEqual(0);
          if (f.name !== 'tiny' && sx > 0) expect(Math.sqrt(se / sx)).toBeLessThanOrEqual(RMS[type]);
        });
      }
    });
  }
});
