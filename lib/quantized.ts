// SPDX-License-Identifier: MIT
/**
 * Quantized tensors: a spec, the logical shape, and the stored parts.
 * @module
 */
import { Tensor } from './tensor';

/** ggml block types weightsmith reads from GGUF (ids of ggml's `ggml_type`). */
export const GGML_TYPES = Object.freeze({
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, q8_0: 8, q8_1: 9, q2_k: 10, q3_k: 11, q4_k: 12, q5_k: 13,
  q6_k: 14, q8_k: 15, iq2_xxs: 16, iq2_xs: 17, iq3_xxs: 18, iq1_s: 19, iq4_nl: 20, iq3_s: 21, iq2_s: 22, iq4_xs: 23,
  i8: 24, i16: 25, i32: 26, i64: 27, f64: 28, iq1_m: 29, bf16: 30, tq1_0: 34, tq2_0: 35, mxfp4: 39, nvfp4: 40,
  q1_0: 41, q2_0: 42,
} as const);

/** A ggml type name (`'q4_0'`, `'q6_k'`...). */
export type GgmlType = keyof typeof GGML_TYPES;

const GGML_BY_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([k, v]) => [v, k as GgmlType]));

/** The ggml type name of a type id, or undefined. @internal */
export function ggmlTypeName(id: number): GgmlType | undefined {
  return GGML_BY_ID.get(id);
}

/** How a {@link QuantizedTensor} was quantized. */
export interface GgmlSpec {
  /** ggml block quantization (GGUF). */
  scheme: 'ggml';
  /** The block type. */
  type: GgmlType;
}

/** A quantization spec. Only ggml block types exist so far. */
export type QuantSpec = GgmlSpec;

/**
 * A quantized tensor: `shape` is the logical (dequantized) shape in PyTorch order; `parts` holds the stored
 * tensors. ggml types have one part, `blocks`: the raw block bytes (u8), rows of `shape[last] / blockSize`
 * blocks, exactly as in the GGUF file.
 */
export class QuantizedTensor {
  /** The quantization spec. */
  readonly spec: QuantSpec;
  /** Logical shape, outermost first. */
  readonly shape: readonly number[];
  /** Stored parts. */
  readonly parts: Readonly<Record<string, Tensor>>;

  constructor(spec: QuantSpec, shape: readonly number[], parts: Record<string, Tensor>) {
    this.spec = Object.freeze({ ...spec });
    this.shape = Object.freeze([...shape]);
    this.parts = Object.freeze({ ...parts });
  }

  /** Number of logical elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes of all parts together. */
  get byteLength(): number {
    return Object.values(this.parts).reduce((a, t) => a + t.byteLength, 0);
  }

  /** A short description, e.g. `QuantizedTensor<ggml q4_0>[512, 64]`. */
  toString(): string {
    return `QuantizedTensor<${this.spec.scheme} ${this.spec.type}>[${this.shape.join(', ')}]`;
  }
}
