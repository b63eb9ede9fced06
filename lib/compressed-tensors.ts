// SPDX-License-Identifier: MIT
/**
 * The compressed-tensors checkpoint layout (FORMATS.md b4) for int (pack-quantized) and fp8
 * (float-quantized) QuantizedTensors: their parts as state-dict keys of the module, and the
 * `quantization_config` block of config.json.
 * @module
 */
import { DType } from './dtype';
import { invalidArgType, WeightsmithError } from './errors';
import type { WeightFile } from './file';
import { Fp8Spec, IntSpec, QuantizedTensor } from './quantized';
import { Tensor } from './tensor';

/** The module of a weight name: `model.layers.0.mlp.up_proj.weight` -> `model.layers.0.mlp.up_proj`. */
export function moduleOf(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/**
 * The state-dict entries of a quantized weight: int -> `<m>.weight_packed`, `<m>.weight_scale`,
 * `<m>.weight_shape` (+ `<m>.weight_zero_point` when asymmetric); fp8 -> `<m>.weight` (fp8) and
 * `<m>.weight_scale`.
 */
export function compressedTensorsEntries(name: string, q: QuantizedTensor): Record<string, Tensor> {
  const m = moduleOf(name);
  if (q.spec.scheme === 'fp8') return { [`${m}.weight`]: q.parts.weight, [`${m}.weight_scale`]: q.parts.weight_scale };
  if (q.spec.scheme !== 'int') throw new WeightsmithError('ERR_CONFIG', `tensor '${name}': ${q.spec.scheme} tensors are not stored as compressed-tensors`, { tensor: name });
  const out: Record<string, Tensor> = {};
  for (const [part, t] of Object.entries(q.parts)) out[`${m}.${part}`] = t;
  return out;
}

/** Shapes and dtypes of those entries, computed from the weight's shape and dtype alone (for a writer plan). */
export function compressedTensorsPlan(name: string, shape: readonly number[], weightDtype: DType, spec: IntSpec | Fp8Spec): { name: string; dtype: DType; shape: number[] }[] {
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
export function quantizationConfig(spec: IntSpec | Fp8Spec, ignore: string[]): Record<string, unknown> {
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
    format: spec.scheme === 'fp8' ? 'float-quantized' : 'pack-quantized',
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
