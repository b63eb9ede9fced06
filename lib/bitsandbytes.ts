// SPDX-License-Identifier: MIT
/**
 * The bitsandbytes 4-bit state-dict layout (FORMATS.md b5, `Linear4bit._save_to_state_dict` and
 * `QuantState.as_dict(packed=True)`) for NF4/FP4 QuantizedTensors, and the `quantization_config` transformers
 * writes for it.
 * @module
 */
import { DType } from './dtype';
import { WeightsmithError } from './errors';
import type { WeightFile } from './file';
import { Bnb4Spec, QuantizedTensor } from './quantized';
import { Tensor, tensor } from './tensor';

const TORCH_DTYPES: Partial<Record<DType, string>> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };
const FROM_TORCH: Record<string, DType> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };
const NESTED_BLOCK = 256;

/** Python's repr of a float (what json.dumps writes): shortest round-trip digits, `1.0`, `1e-05`, `1.5e+16`. */
export function pythonFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = v.toExponential().split('e');  // shortest digits that round-trip, as repr uses
  const exp = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp < 0) {
    body = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${body}` : body;
}

/** json.dumps of a flat dict of strings, integers, floats and integer lists (Python's default separators). */
function pythonJson(entries: [string, string | number | number[] | { float: number }][]): string {
  const value = (v: string | number | number[] | { float: number }): string =>
    typeof v === 'string' ? JSON.stringify(v)
      : typeof v === 'number' ? String(v)
        : Array.isArray(v) ? `[${v.join(', ')}]` : pythonFloatRepr(v.float);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${value(v)}`).join(', ')}}`;
}

/** The JSON of `quant_state.bitsandbytes__<type>`, key for key as bitsandbytes writes it. */
function stateJson(spec: Bnb4Spec, shape: readonly number[], offset?: number): string {
  const entries: [string, string | number | number[] | { float: number }][] = [
    ['quant_type', spec.scheme], ['blocksize', spec.blockSize ?? 64], ['dtype', TORCH_DTYPES[spec.dtype ?? 'f32'] ?? 'float32'], ['shape', [...shape]],
  ];
  if (spec.doubleQuant) entries.push(['nested_blocksize', NESTED_BLOCK], ['nested_dtype', 'float32'], ['nested_offset', { float: offset ?? 0 }]);
  return pythonJson(entries);
}

// The longest repr of an f32 value as a Python float ("-1.1754943508222875e-38"): the writer plan reserves it
// for nested_offset, and the JSON is padded with spaces (which json.loads ignores) to that length.
const OFFSET_RESERVE = 24;

function stateName(name: string, spec: Bnb4Spec): string {
  return `${name}.quant_state.bitsandbytes__${spec.scheme}`;
}

function stateBytes(json: string, length?: number): Tensor {
  const b = Buffer.from(length === undefined ? json : json.padEnd(length, ' '), 'utf8');
  return tensor(new Uint8Array(b), [b.length], 'u8');
}

function planLength(spec: Bnb4Spec, shape: readonly number[]): number | undefined {
  if (!spec.doubleQuant) return undefined;
  return Buffer.byteLength(stateJson(spec, shape, 0)) - '0.0'.length + OFFSET_RESERVE;
}

/**
 * Shapes and dtypes of the entries of {@link bitsandbytesEntries}, from the weight's shape and dtype (a writer
 * plan). With double quantization the quant-state JSON is given a fixed length; pass `{ padded: true }` to
 * bitsandbytesEntries to match it.
 */
export function bitsandbytesPlan(name: string, shape: readonly number[], weightDtype: DType, spec: Bnb4Spec): { name: string; dtype: DType; shape: number[] }[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const s = { ...spec, dtype: weightDtype };
  const blocks = Math.ceil(n / (spec.blockSize ?? 64));
  const jsonLength = planLength(s, shape) ?? Buffer.byteLength(stateJson(s, shape));
  const out: { name: string; dtype: DType; shape: number[] }[] = [
    { name, dtype: 'u8', shape: [Math.ceil(n / 2), 1] },
    { name: `${name}.absmax`, dtype: spec.doubleQuant ? 'u8' : 'f32', shape: [blocks] },
    { name: `${name}.quant_map`, dtype: 'f32', shape: [16] },
  ];
  if (spec.doubleQuant) {
    out.push({ name: `${name}.nested_absmax`, dtype: 'f32', shape: [Math.ceil(blocks / NESTED_BLOCK)] },
      { name: `${name}.nested_quant_map`, dtype: 'f32', shape: [256] });
  }
  out.push({ name: stateName(name, s), dtype: 'u8', shape: [jsonLength] });
  return out;
}

/**
 * The state-dict entries of a 4-bit weight `name` (e.g. `model.layers.0.mlp.up_proj.weight`), as bitsandbytes
 * saves them: `name` (u8 `[ceil(n/2), 1]`), `name.absmax` (f32, or u8 codes with double quantization),
 * `name.quant_map` (f32[16]), with double quantization `name.nested_absmax` and `name.nested_quant_map`, and
 * `name.quant_state.bitsandbytes__nf4` (or `__fp4`): u8 UTF-8 JSON of quant_type, blocksize, dtype, shape (and
 * nested_blocksize, nested_dtype, nested_offset), written as Python's json.dumps writes it. `padded` gives the
 * JSON the fixed length {@link bitsandbytesPlan} reserved (trailing spaces).
 */
export function bitsandbytesEntries(name: string, q: QuantizedTensor, options: { padded?: boolean } = {}): Record<string, Tensor> {
  const spec = q.spec;
  if (spec.scheme !== 'nf4' && spec.scheme !== 'fp4')
    throw new WeightsmithError('ERR_CONFIG', `tensor '${name}': only nf4 and fp4 tensors are stored in the bitsandbytes layout`, { tensor: name });
  const offset = spec.doubleQuant ? (q.parts.nested_offset.to('f32').data as Float32Array)[0] : undefined;
  const json = stateJson(spec, q.shape, offset);
  const out: Record<string, Tensor> = {
    [name]: q.parts.weight,
    [`${name}.absmax`]: q.parts.absmax,
    [`${name}.quant_map`]: q.parts.quant_map,
  };
  if (spec.doubleQuant) {
    out[`${name}.nested_absmax`] = q.parts.nested_absmax;
    out[`${name}.nested_quant_map`] = q.parts.nested_quant_map;
  }
  out[stateName(name, spec)] = stateBytes(json, options.padded ? planLength(spec, q.shape) : undefined);
  return out;
}

/** Whether `name` is stored in the bitsandbytes 4-bit layout in `file` (it has a quant_state entry). */
export function isBitsandbytes(file: WeightFile, name: string): boolean {
  return file.has(`${name}.quant_state.bitsandbytes__nf4`) || file.has(`${name}.quant_state.bitsandbytes__fp4`);
}

/** Reads a 4-bit weight back from a bitsandbytes state dict as the same QuantizedTensor. */
export function readBitsandbytes(file: WeightFile, name: string): QuantizedTensor {
  const key = [`${name}.quant_state.bitsandbytes__nf4`, `${name}.quant_state.bitsandbytes__fp4`].find((k) => file.has(k));
  if (!key) throw new WeightsmithError('ERR_TENSOR_NOT_FOUND', `'${name}' has no bitsandbytes quant_state entry`, { tensor: name });
  let state: { quant_type?: unknown; blocksize?: unknown; dtype?: unknown; shape?: unknown; nested_blocksize?: unknown; nested_offset?: unknown };
  try {
    state = JSON.parse(Buffer.from(file.getTensor(key).bytes()).toString('utf8'));
  } catch {
    throw new WeightsmithError('ERR_CONFIG', `'${key}' is not JSON`, { tensor: name });
  }
  const type = state.quant_type;
  if ((type !== 'nf4' && type !== 'fp4') || !key.endsWith(`__${type}`))
    throw new WeightsmithError('ERR_CONFIG', `'${name}': unsupported bitsandbytes quant_type ${JSON.stringify(type)}`, { tensor: name });
  const shape = state.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new WeightsmithError('ERR_CONFIG', `'${name}': the quant state's shape is not a list of sizes`, { tensor: name });
  const blockSize = state.blocksize ?? 64;
  if (typeof blockSize !== 'number') throw new WeightsmithError('ERR_CONFIG', `'${name}': blocksize is not a number`, { tensor: name });
  const dtype = FROM_TORCH[String(state.dtype ?? 'float32')];
  if (!dtype) throw new WeightsmithError('ERR_CONFIG', `'${name}': unsupported dtype ${JSON.stringify(state.dtype)}`, { tensor: name });
  const nested = file.has(`${name}.nested_absmax`);
  const spec: Bnb4Spec = { scheme: type, blockSize, ...(nested ? { doubleQuant: true } : {}), dtype };
  const parts: Record<string, Tensor> = {
    weight: file.getTensor(name),
    absmax: file.getTensor(`${name}.absmax`),
    quant_map: file.getTensor(`${name}.quant_map`),
  };
  if (nested) {
    if (state.nested_blocksize !== undefined && state.nested_blocksize !== NESTED_BLOCK)
      throw new WeightsmithError('ERR_CONFIG', `'${name}': nested_blocksize ${String(state.nested_blocksize)} is not supported (bitsandbytes writes 256)`, { tensor: name });
    if (typeof state.nested_offset !== 'number') throw new WeightsmithError('ERR_CONFIG', `'${name}': nested_offset is missing`, { tensor: name });
    parts.nested_absmax = file.getTensor(`${name}.nested_absmax`);
    parts.nested_quant_map = file.getTensor(`${name}.nested_quant_map`);
    parts.nested_offset = tensor(new Float32Array([state.nested_offset]), [1]);
  }
  // quant_map is kept as a part; dequantization uses the type's table, as bitsandbytes' dequantize_4bit does.
  return new QuantizedTensor(spec, shape, parts);
}

/** transformers' BitsAndBytesConfig for 4-bit weights, as it appears in config.json. */
export function bitsandbytesConfig(computeDtype: DType = 'bf16', ignore: string[] = [], spec: Pick<Bnb4Spec, 'scheme' | 'doubleQuant'> = { scheme: 'nf4' }): Record<string, unknown> {
  return {
    quant_method: 'bitsandbytes',
    _load_in_4bit: true,
    _load_in_8bit: false,
    load_in_4bit: true,
    load_in_8bit: false,
    bnb_4bit_quant_type: spec.scheme,
    bnb_4bit_use_double_quant: Boolean(spec.doubleQuant),
    bnb_4bit_compute_dtype: TORCH_DTYPES[computeDtype] ?? 'float32',
    bnb_4bit_quant_storage: 'uint8',
    llm_int8_skip_modules: ignore.length ? ignore : null,
  };
}
