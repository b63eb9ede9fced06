// SPDX-License-Identifier: MIT
/**
 * The compressed-tensors checkpoint layout (FORMATS.md b4) for int (pack-quantized, or plain int8 as
 * int-quantized) and fp8 (float-quantized) QuantizedTensors: their parts as state-dict keys of the module, and
 * the `quantization_config` block of config.json.
 * @module
 */
import { DType } from './dtype';
import { invalidArgType, WeightsmithError } from './errors';
import type { WeightFile } from './file';
import { Fp8Spec, IntSpec, QuantizedTensor } from './quantized';
import { native } from './native';
import { Tensor, tensor } from './tensor';

/** The module of a weight name: `model.layers.0.mlp.up_proj.weight` -> `model.layers.0.mlp.up_proj`. */
export function moduleOf(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/** How int weights are stored: LSB-first int32 bitstreams (`pack-quantized`) or one int8 per code (`int-quantized`). */
export type IntFormat = 'pack-quantized' | 'int-quantized';

function intLayout(q: QuantizedTensor): { rows: number; cols: number; ng: number; bits: number; whole: boolean } {
  const spec = q.spec as IntSpec;
  const rows = q.shape.length < 2 ? 1 : q.shape[0];
  const cols = q.shape.reduce((a, b) => a * b, 1) / Math.max(rows, 1);
  const gs = spec.groupSize ?? 128;
  const whole = gs === 'tensor';
  return { rows, cols, ng: whole ? 1 : typeof gs === 'number' ? Math.ceil(cols / gs) : 1, bits: spec.bits, whole };
}

/** The zero points of a group/channel-quantized tensor, unpacked to int8 `[rows, groups]` (from `[ceil(rows*bits/32), groups]`). */
function unpackZeroPoints(zp: Tensor, rows: number, ng: number, bits: number): Int8Array {
  const zw = Math.ceil((rows * bits) / 32);
  const zin = zp.data as Int32Array;
  const byGroup = new Int32Array(ng * zw);
  for (let g = 0; g < ng; g++) for (let w = 0; w < zw; w++) byGroup[g * zw + w] = zin[w * ng + g];
  const zt = new Int8Array(ng * rows);
  native.unpackIntRows(byGroup, ng, rows, bits, zt);
  const out = new Int8Array(rows * ng);
  for (let r = 0; r < rows; r++) for (let g = 0; g < ng; g++) out[r * ng + g] = zt[g * rows + r];
  return out;
}

function packZeroPoints(z: Int8Array, rows: number, ng: number, bits: number): Int32Array {
  const zt = new Int8Array(ng * rows);
  for (let r = 0; r < rows; r++) for (let g = 0; g < ng; g++) zt[g * rows + r] = z[r * ng + g];
  const zw = Math.ceil((rows * bits) / 32);
  const packed = new Int32Array(ng * zw);
  native.packIntRows(zt, ng, rows, bits, packed);
  const out = new Int32Array(zw * ng);
  for (let g = 0; g < ng; g++) for (let w = 0; w < zw; w++) out[w * ng + g] = packed[g * zw + w];
  return out;
}

/**
 * The state-dict entries of a quantized weight: int -> `<m>.weight_packed`, `<m>.weight_scale`,
 * `<m>.weight_shape` (+ `<m>.weight_zero_point` when asymmetric), or with `format: 'int-quantized'`
 * `<m>.weight` (int8 codes, the weight's shape), `<m>.weight_scale` (+ `<m>.weight_zero_point`, int8
 * `[rows, groups]`); fp8 -> `<m>.weight` (fp8) and `<m>.weight_scale`.
 */
export function compressedTensorsEntries(name: string, q: QuantizedTensor, options: { format?: IntFormat } = {}): Record<string, Tensor> {
  const m = moduleOf(name);
  if (q.spec.scheme === 'fp8') return { [`${m}.weight`]: q.parts.weight, [`${m}.weight_scale`]: q.parts.weight_scale };
  if (q.spec.scheme !== 'int') throw new WeightsmithError('ERR_CONFIG', `tensor '${name}': ${q.spec.scheme} tensors are not stored as compressed-tensors`, { tensor: name });
  const format = options.format ?? 'pack-quantized';
  if (format !== 'pack-quantized' && format !== 'int-quantized') throw invalidArgType(`The "options.format" argument must be 'pack-quantized' or 'int-quantized'`);
  const out: Record<string, Tensor> = {};
  if (format === 'pack-quantized') {
    for (const [part, t] of Object.entries(q.parts)) out[`${m}.${part}`] = t;
    return out;
  }
  const { rows, cols, ng, bits, whole } = intLayout(q);
  const codes = new Int8Array(rows * cols);
  native.unpackIntRows(q.parts.weight_packed.data as Int32Array, rows, cols, bits, codes);
  out[`${m}.weight`] = tensor(codes, [...q.shape], 'i8');
  out[`${m}.weight_scale`] = q.parts.weight_scale;
  const zp = q.parts.weight_zero_point;
  if (zp) {
    out[`${m}.weight_zero_point`] = whole ? tensor(Int8Array.from(zp.data as Int32Array), [1], 'i8')
      : tensor(unpackZeroPoints(zp, rows, ng, bits), [rows, ng], 'i8');
  }
  return out;
}

/** Shapes and dtypes of those entries, computed from the weight's shape and dtype alone (for a writer plan). */
export function compressedTensorsPlan(name: string, shape: readonly number[], weightDtype: DType, spec: IntSpec | Fp8Spec, format: IntFormat = 'pack-quantized'): { name: string; dtype: DType; shape: number[] }[] {
  const m = moduleOf(name);
  const rows = shape.length < 2 ? 1 : shape[0];
  const cols = shape.reduce((a, b) => a * b, 1) / Math.max(rows, 1);
  if (spec.scheme === 'fp8') {
    const g = spec.granularity ?? 'tensor';
    const scale = g === 'channel' ? [rows, 1] : g === 'block' ? [Math.ceil(rows / 128), Math.ceil(cols / 128)] : [1];
    return [{ name: `${m}.weight`, dtype: spec.format === 'e5m2' ? 'f8_e5m2' : 'f8_e4m3', shape: [...shape] },
      { name: `${m}.weight_scale`, dtype: weightDtype, shape: scale }];
  }
  const gs = spec.groupSize ?? 128;
  const ng = gs === 'tensor' ? 1 : gs === 'channel' ? 1 : Math.ceil(cols / gs);
  if (format === 'int-quantized') {
    const plain = [
      { name: `${m}.weight`, dtype: 'i8' as DType, shape: [...shape] },
      { name: `${m}.weight_scale`, dtype: weightDtype, shape: gs === 'tensor' ? [1] : [rows, ng] },
    ];
    if (spec.symmetric === false) plain.push({ name: `${m}.weight_zero_point`, dtype: 'i8', shape: gs === 'tensor' ? [1] : [rows, ng] });
    return plain;
  }
  const out = [
    { name: `${m}.weight_packed`, dtype: 'i32' as DType, shape: [rows, Math.ceil((cols * spec.bits) / 32)] },
    { name: `${m}.weight_scale`, dtype: weightDtype, shape: gs === 'tensor' ? [1] : [rows, ng] },
    { name: `${m}.weight_shape`, dtype: 'i64' as DType, shape: [2] },
  ];
  if (spec.symmetric === false)
    out.push({ name: `${m}.weight_zero_point`, dtype: 'i32', shape: gs === 'tensor' ? [1] : [Math.ceil((rows * spec.bits) / 32), ng] });
  return out;
}

/** The `quantization_config` of config.json for weights quantized with `spec` (weights only, static). */
export function quantizationConfig(spec: IntSpec | Fp8Spec, ignore: string[], format: IntFormat = 'pack-quantized'): Record<string, unknown> {
  let weights: Record<string, unknown>;
  if (spec.scheme === 'fp8') {
    const g = spec.granularity ?? 'tensor';
    weights = {
      num_bits: 8, type: 'float', symmetric: true, dynamic: false, observer: 'minmax', actorder: null,
      strategy: g === 'channel' ? 'channel' : g === 'block' ? 'block' : 'tensor',
      group_size: null, block_structure: g === 'block' ? [128, 128] : null,
    };
  } else {
    const gs = spec.groupSize ?? 128;
    weights = {
      num_bits: spec.bits, type: 'int', symmetric: spec.symmetric !== false, dynamic: false, observer: 'minmax', actorder: null,
      strategy: typeof gs === 'number' ? 'group' : gs, group_size: typeof gs === 'number' ? gs : null, block_structure: null,
    };
  }
  return {
    quant_method: 'compressed-tensors',
    format: spec.scheme === 'fp8' ? 'float-quantized' : format,
    config_groups: { group_0: { targets: ['Linear'], weights, input_activations: null, output_activations: null } },
    ignore,
    quantization_status: 'compressed',
    kv_cache_scheme: null,
    global_compression_ratio: null,
  };
}

/** The spec a compressed-tensors `quantization_config` describes (group_0's weights). */
export function specFromConfig(config: unknown): IntSpec | Fp8Spec {
  const qc = config as { format?: string; config_groups?: Record<string, { weights?: Record<string, unknown> }> };
  const w = qc?.config_groups?.group_0?.weights;
  if (!w) throw new WeightsmithError('ERR_CONFIG', 'quantization_config has no config_groups.group_0.weights');
  if (w.type === 'float') {
    const strategy = w.strategy;
    return { scheme: 'fp8', format: 'e4m3', granularity: strategy === 'channel' ? 'channel' : strategy === 'block' ? 'block' : 'tensor' };
  }
  if (w.type !== 'int') throw new WeightsmithError('ERR_CONFIG', `unsupported quantization type '${String(w.type)}'`);
  const groupSize = w.strategy === 'group' ? Number(w.group_size) : (w.strategy as 'channel' | 'tensor');
  return { scheme: 'int', bits: Number(w.num_bits), symmetric: w.symmetric !== false, groupSize };
}

/** Reads a quantized module back from a compressed-tensors checkpoint as the same QuantizedTensor. */
export function readCompressedTensor(file: WeightFile, module: string, spec: IntSpec | Fp8Spec): QuantizedTensor {
  if (typeof module !== 'string') throw invalidArgType('The "module" argument must be a string');
  if (spec.scheme === 'fp8') {
    const weight = file.getTensor(`${module}.weight`);
    return new QuantizedTensor(spec, weight.shape, { weight, weight_scale: file.getTensor(`${module}.weight_scale`) });
  }
  if (!file.has(`${module}.weight_shape`) && file.has(`${module}.weight`)) {
    // int-quantized / naive-quantized: int8 codes; repacked into the pack-quantized parts.
    const w = file.getTensor(`${module}.weight`);
    if (w.dtype !== 'i8') throw new WeightsmithError('ERR_DTYPE', `'${module}.weight' holds ${w.dtype}, not the int8 codes of int-quantized`, { tensor: module });
    const shape = [...w.shape];
    const q0 = new QuantizedTensor(spec, shape, {});
    const { rows, cols, ng, bits, whole } = intLayout(q0);
    const wpr = Math.ceil((cols * bits) / 32);
    const packed = new Int32Array(rows * wpr);
    native.packIntRows(w.data as Int8Array, rows, cols, bits, packed);
    const parts: Record<string, Tensor> = {
      weight_packed: tensor(packed, [rows, wpr]),
      weight_scale: file.getTensor(`${module}.weight_scale`),
      weight_shape: tensor(new BigInt64Array([BigInt(rows), BigInt(cols)]), [2]),
    };
    if (spec.symmetric === false) {
      const z = file.getTensor(`${module}.weight_zero_point`);
      const zi8 = z.dtype === 'i8' ? (z.data as Int8Array) : Int8Array.from(z.to('i32').data as Int32Array);
      parts.weight_zero_point = whole ? tensor(Int32Array.from(zi8), [1]) : tensor(packZeroPoints(zi8, rows, ng, bits), [Math.ceil((rows * bits) / 32), ng]);
    }
    return new QuantizedTensor(spec, shape, parts);
  }
  const shapeT = file.getTensor(`${module}.weight_shape`);
  const shape = Array.from(shapeT.data as ArrayLike<number | bigint>, (v) => Number(v));
  const parts: Record<string, Tensor> = {
    weight_packed: file.getTensor(`${module}.weight_packed`),
    weight_scale: file.getTensor(`${module}.weight_scale`),
    weight_shape: shapeT,
  };
  if (spec.symmetric === false) parts.weight_zero_point = file.getTensor(`${module}.weight_zero_point`);
  return new QuantizedTensor(spec, shape, parts);
}
