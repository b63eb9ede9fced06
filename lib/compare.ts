// SPDX-License-Identifier: MIT
/**
 * Error statistics between a reference tensor and an approximation of it.
 * @module
 */
import { invalidArgType, WeightsmithError } from './errors';
import { native } from './native';
import { dequantizeSync, QuantizedTensor } from './quantized';
import { Tensor } from './tensor';

/** How far `b` is from the reference `a` (sums in f64). */
export interface CompareResult {
  /** Mean squared error. */
  mse: number;
  /** Root mean squared error. */
  rmse: number;
  /** Largest absolute difference. */
  maxAbs: number;
  /** ||a - b|| / ||a|| (Frobenius norms); 0 when both are zero, Infinity when only `a` is. */
  relFrobenius: number;
  /** Signal-to-quantization-noise ratio, 10 log10(||a||^2 / ||a - b||^2) dB; Infinity when equal. */
  sqnrDb: number;
  /** Cosine similarity; 1 when both are zero, 0 when only one is. */
  cosine: number;
}

function asF32(t: Tensor | QuantizedTensor, name: string): Float32Array {
  if (t instanceof QuantizedTensor) return dequantizeSync(t).data as Float32Array;
  if (!(t instanceof Tensor)) throw invalidArgType(`The "${name}" argument must be a Tensor or QuantizedTensor`);
  return (t.dtype === 'f32' ? t : t.to('f32')).data as Float32Array;
}

/**
 * Compares `b` with the reference `a` (same shape; any float dtype, or a QuantizedTensor, dequantized).
 * Sums are taken in f64 in fixed chunks, so the result is the same for any thread count.
 */
export function compare(a: Tensor | QuantizedTensor, b: Tensor | QuantizedTensor): CompareResult {
  const sa = (a as { shape?: readonly number[] }).shape;
  const sb = (b as { shape?: readonly number[] }).shape;
  if (sa && sb && (sa.length !== sb.length || sa.some((d, i) => d !== sb[i])))
    throw new WeightsmithError('ERR_SHAPE', `cannot compare shapes [${sa.join(', ')}] and [${sb.join(', ')}]`);
  const s = native.compareF32(asF32(a, 'a'), asF32(b, 'b'));
  const mse = s.n ? s.sse / s.n : 0;
  const relFrobenius = s.sse === 0 ? 0 : s.aa === 0 ? Infinity : Math.sqrt(s.sse / s.aa);
  const sqnrDb = s.sse === 0 ? Infinity : 10 * Math.log10(s.aa / s.sse);
  const cosine = s.aa === 0 && s.bb === 0 ? 1 : s.aa === 0 || s.bb === 0 ? 0 : s.ab / Math.sqrt(s.aa * s.bb);
  return { mse, rmse: Math.sqrt(mse), maxAbs: s.maxAbs, relFrobenius, sqnrDb, cosine };
}
