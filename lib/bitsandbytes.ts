// SPDX-License-Identifier: MIT
/**
 * The bitsandbytes 4-bit state-dict layout (FORMATS.md b5, `Linear4bit._save_to_state_dict`) for NF4
 * QuantizedTensors, and the `quantization_config` transformers writes for it.
 * @module
 */
import { DType } from './dtype';
import { WeightsmithError } from './errors';
import type { WeightFile } from './file';
import { Nf4Spec, QuantizedTensor } from './quantized';
import { Tensor, tensor } from './tensor';

const TORCH_DTYPES: Partial<Record<DType, string>> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };
const FROM_TORCH: Record<string, DType> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };

function stateJson(spec: Nf4Spec, shape: readonly number[]): Buffer {
  const state = { quant_type: 'nf4', blocksize: spec.blockSize ?? 64, dtype: TORCH_DTYPES[spec.dtype ?? 'f32'] ?? 'float32', shape: [...shape] };
  return Buffer.from(JSON.stringify(state), 'utf8');
}

/** Shapes and dtypes of the entries of {@link bitsandbytesEntries}, from the weight's shape and dtype (a writer plan). */
export function bitsandbytesPlan(name: string, shape: readonly number[], weightDtype: DType, spec: Nf4Spec): { name: string; dtype: DType; shape: number[] }[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const json = stateJson({ ...spec, dtype: weightDtype }, shape);
  return [
    { name, dtype: 'u8', shape: [Math.ceil(n / 2), 1] },
    { name: `${name}.absmax`, dtype: 'f32', shape: [Math.ceil(n / (spec.blockSize ?? 64))] },
    { name: `${name}.quant_map`, dtype: 'f32', shape: [16] },
    { name: `${name}.quant_state.bitsandbytes__nf4`, dtype: 'u8', shape: [json.length] },
  ];
}

/**
 * The state-dict entries of an NF4 weight `name` (e.g. `model.layers.0.mlp.up_proj.weight`): `name` (u8
 * `[ceil(n/2), 1]`), `name.absmax` (f32), `name.quant_map` (f32[16]) and `name.quant_state.bitsandbytes__nf4`
 * (u8: UTF-8 JSON of quant_type, blocksize, dtype, shape).
 */
export function bitsandbytesEntries(name: string, q: QuantizedTensor): Record<string, Tensor> {
  if (q.spec.scheme !== 'nf4') throw new WeightsmithError('ERR_CONFIG', `tensor '${name}': only nf4 tensors are stored in the bitsandbytes layout`, { tensor: name });
  const json = stateJson(q.spec, q.shape);
  return {
    [name]: q.parts.weight,
    [`${name}.absmax`]: q.parts.absmax,
    [`${name}.quant_map`]: q.parts.quant_map,
    [`${name}.quant_state.bitsandbytes__nf4`]: tensor(new Uint8Array(json), [json.length], 'u8'),
  };
}

/** Reads an NF4 weight back from a bitsandbytes state dict as the same QuantizedTensor. */
export function readBitsandbytes(file: WeightFile, name: string): QuantizedTensor {
  const stateT = file.getTensor(`${name}.quant_state.bitsandbytes__nf4`);
  let state: { quant_type?: string; blocksize?: number; dtype?: string; shape?: number[] };
  try {
    state = JSON.parse(Buffer.from(stateT.bytes()).toString('utf8'));
  } catch {
    throw new WeightsmithError('ERR_CONFIG', `'${name}.quant_state.bitsandbytes__nf4' is not JSON`, { tensor: name });
  }
  if (state.quant_type !== 'nf4' || !Array.isArray(state.shape))
    throw new WeightsmithError('ERR_CONFIG', `'${name}': unsupported bitsandbytes quant state (${String(state.quant_type)})`, { tensor: name });
  if (file.has(`${name}.nested_absmax`))
    throw new WeightsmithError('ERR_CONFIG', `'${name}': double-quantized (nested) absmax is not supported yet`, { tensor: name });
  const spec: Nf4Spec = { scheme: 'nf4', blockSize: state.blocksize ?? 64, dtype: FROM_TORCH[state.dtype ?? 'float32'] ?? 'f32' };
  return new QuantizedTensor(spec, state.shape, {
    weight: file.getTensor(name),
    absmax: file.getTensor(`${name}.absmax`),
    quant_map: file.getTensor(`${name}.quant_map`),
  });
}

/** transformers' BitsAndBytesConfig for 4-bit NF4 weights, as it appears in config.json. */
export function bitsandbytesConfig(computeDtype: DType = 'bf16', ignore: string[] = []): Record<string, unknown> {
  return {
    quant_method: 'bitsandbytes',
    _load_in_4bit: true,
    _load_in_8bit: false,
    load_in_4bit: true,
    load_in_8bit: false,
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: false,
    bnb_4bit_compute_dtype: TORCH_DTYPES[computeDtype] ?? 'float32',
    bnb_4bit_quant_storage: 'uint8',
    llm_int8_skip_modules: ignore.length ? ignore : null,
  };
}
