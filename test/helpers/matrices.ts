// SPDX-License-Identifier: MIT
/** Small dense-matrix helpers for tests (f64 arithmetic on row-major arrays). */

/** f64 product of row-major [m, k] and [k, n]. */
export function mul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) {
    const x = a[i * k + t];
    if (x !== 0) for (let j = 0; j < n; j++) c[i * n + j] += x * b[t * n + j];
  }
  return c;
}

/** ||a - b||_F / ||a||_F (the absolute norm when a is zero). */
export function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** n values uniform in [-scale, scale) from a 32-bit LCG. */
export function lcgValues(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2 * scale);
}
