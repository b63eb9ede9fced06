// SPDX-License-Identifier: MIT
// An independent JavaScript statement of the float rules (written from the IEEE definitions, not from the
// native code): decode any small binary float code, and encode an f32 bit pattern with one round-to-nearest-
// even step.

export interface Fmt {
  ebits: number;
  mbits: number;
  bias: number;
  hasInf: boolean;
  saturate: boolean;
}

export const F16: Fmt = { ebits: 5, mbits: 10, bias: 15, hasInf: true, saturate: false };
export const BF16: Fmt = { ebits: 8, mbits: 7, bias: 127, hasInf: true, saturate: false };
export const E4M3: Fmt = { ebits: 4, mbits: 3, bias: 7, hasInf: false, saturate: true };
export const E5M2: Fmt = { ebits: 5, mbits: 2, bias: 15, hasInf: true, saturate: true };

/** Value of a code (NaN for NaN codes). */
export function decode(code: number, f: Fmt): number {
  const expAll = 2 ** f.ebits - 1;
  const sign = Math.floor(code / 2 ** (f.ebits + f.mbits)) % 2 ? -1 : 1;
  const e = Math.floor(code / 2 ** f.mbits) % 2 ** f.ebits;
  const m = code % 2 ** f.mbits;
  if (f.hasInf && e === expAll) return m === 0 ? sign * Infinity : NaN;
  if (!f.hasInf && e === expAll && m === 2 ** f.mbits - 1) return NaN;
  if (e === 0) return sign * m * 2 ** (1 - f.bias - f.mbits);
  return sign * (2 ** f.mbits + m) * 2 ** (e - f.bias - f.mbits);
}

const view = new DataView(new ArrayBuffer(4));
export function f32FromBits(bits: number): number {
  view.setUint32(0, bits >>> 0, true);
  return view.getFloat32(0, true);
}

function rne(m: number): number {
  const fl = Math.floor(m);
  const d = m - fl;
  return d > 0.5 || (d === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
}

/** Encodes the f32 with bit pattern `bits` into format f (NaN: quiet, keeping the top payload bits). */
export function encodeF32(bits: number, f: Fmt): number {
  bits >>>= 0;
  const signBit = bits >>> 31 ? 2 ** (f.ebits + f.mbits) : 0;
  const expAll = 2 ** f.ebits - 1;
  const maxFinite = f.hasInf ? (expAll - 1) * 2 ** f.mbits + 2 ** f.mbits - 1 : expAll * 2 ** f.mbits + 2 ** f.mbits - 2;
  const infCode = expAll * 2 ** f.mbits;
  const x = f32FromBits(bits);
  if (Number.isNaN(x)) {
    if (!f.hasInf) return signBit + expAll * 2 ** f.mbits + 2 ** f.mbits - 1;
    const payload = Math.floor((bits & 0x7fffff) / 2 ** (23 - f.mbits));
    return signBit + infCode + (2 ** (f.mbits - 1) | payload);
  }
  const a = Math.abs(x);
  if (a === Infinity) return signBit + (f.saturate ? maxFinite : infCode);
  if (a === 0) return signBit;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const biased = e + f.bias;
  let code: number;
  if (biased >= 1) code = (biased - 1) * 2 ** f.mbits + rne(a * 2 ** (f.mbits - e));
  else code = rne(a * 2 ** (f.mbits - (1 - f.bias)));
  if (code > maxFinite) return signBit + (f.saturate ? maxFinite : infCode);
  return signBit + code;
}
