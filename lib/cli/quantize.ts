// SPDX-License-Identifier: MIT
/** `weightsmith quantize`. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compare } from '../compare';
import { dtypeInfo } from '../dtype';
import { open, WeightFile } from '../file';
import type { MetadataValue } from '../file';
import { Bnb4Spec, dequantizeSync, Fp8Spec, GGML_BLOCKS, GgmlSpec, GgmlType, IntSpec, QuantizedTensor, quantize, QUANTIZABLE_GGML_TYPES } from '../quantized';
import { quantizeCompressedTensors } from './quantize-ct';
import { Tensor } from '../tensor';
import { createWriter, PlanEntry } from '../writer';
import { parseCommand, regexFlag, UsageError, type Io } from './args';
import { formatBytes, groupDigits, Progress, table } from './format';

export const QUANTIZE_HELP = `Usage: weightsmith quantize <in> <out> --scheme ggml --type q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k
                          [--include RE] [--exclude RE] [--format gguf] [--io auto|mmap|pread] [--json]
       weightsmith quantize <in> <out-dir> --scheme int [--bits 4] [--group-size 128|channel|tensor] [--asym]
                          [--format compressed-tensors|int-quantized]
       weightsmith quantize <in> <out-dir> --scheme fp8 [--group-size channel|tensor|block]
       weightsmith quantize <in> <out-dir> --scheme nf4|fp4 [--group-size 64] [--double-quant]   (block size)
       weightsmith quantize <in> <out-dir> --scheme ... --format safetensors   (dequantized weights)

--scheme int|fp8 write compressed-tensors (pack-quantized, or int-quantized with --format int-quantized: one
int8 per code; float-quantized for fp8): model.safetensors with the
<module>.weight_packed / weight_scale / weight_zero_point / weight_shape keys (int) or an F8_E4M3 weight and
its weight_scale (fp8), and config.json with its quantization_config (the input folder's config.json is kept
otherwise). By default the 2-D .weight tensors except norms, embeddings and lm_head are quantized; rows that
the int group size does not divide are kept and listed in "ignore". --scheme nf4|fp4 writes the bitsandbytes
4-bit state-dict keys (<name>, .absmax, .quant_map, .quant_state.bitsandbytes__nf4 or __fp4; with
--double-quant also .nested_absmax and .nested_quant_map) and transformers' BitsAndBytesConfig.
--format safetensors (any scheme) writes the weights quantized and dequantized again, in their own dtype, with
the input's config.json: a checkpoint any loader reads, with exactly the quantization error of the scheme.


Quantizes the weights of <in> (safetensors file, index or folder, or a GGUF file) tensor by tensor, with
ggml's reference quantizers (byte-identical to llama.cpp's quantize without an importance matrix), and writes
a GGUF file (<out> ending in .gguf, or a folder that gets model.gguf).

By default every tensor with 2 or more dimensions is quantized except norms and embeddings (names matching
norm|embed|token_embd); 1-D tensors stay as they are. --include RE quantizes only names matching RE;
--exclude RE leaves names matching RE alone. Rows that the block size does not divide are stored as f16
(as llama.cpp does) and the report says so.

The report lists, per tensor: the stored type, bits per weight, size, rmse and SQNR against the input, and
the totals; --json prints it as one JSON document.`;

const DEFAULT_SKIP = /norm|embed|token_embd/i;
// llama_ftype of a file quantized to one type (the K types as their _S variants).
const FILE_TYPES: Partial<Record<GgmlType, number>> = { q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q4_k: 14, q5_k: 16, q6_k: 18 };

interface Row {
  name: string;
  shape: number[];
  stored: string;
  bitsPerWeight: number;
  bytes: number;
  rmse?: number;
  sqnrDb?: number;
  note?: string;
}

/** What happens to each tensor: quantized to `type`, kept, or stored as f16 because of its row length. */
function decide(f: WeightFile, name: string, type: GgmlType, include?: RegExp, exclude?: RegExp): { action: 'quantize' | 'keep' | 'f16'; note?: string } {
  const info = f.info(name);
  if (info.ggmlType && GGML_BLOCKS[info.ggmlType]) return { action: 'keep', note: `already ${info.ggmlType}` };
  if (!dtypeInfo(info.dtype)!.float) return { action: 'keep' };
  if (exclude?.test(name)) return { action: 'keep', note: 'excluded' };
  if (include ? !include.test(name) : info.shape.length < 2 || DEFAULT_SKIP.test(name)) return { action: 'keep' };
  const row = info.shape.length ? info.shape[info.shape.length - 1] : 1;
  if (row % GGML_BLOCKS[type]!.size !== 0) return { action: 'f16', note: `rows of ${row} are not a multiple of ${GGML_BLOCKS[type]!.size}: stored as f16` };
  return { action: 'quantize' };
}

export async function quantizeCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    scheme: { type: 'string' }, type: { type: 'string' }, include: { type: 'string' }, exclude: { type: 'string' },
    format: { type: 'string' }, io: { type: 'string' }, json: { type: 'boolean' },
    bits: { type: 'string' }, 'group-size': { type: 'string' }, asym: { type: 'boolean' }, method: { type: 'string' }, calib: { type: 'string' },
    'double-quant': { type: 'boolean' },
  });
  if (positionals.length !== 2) throw new UsageError('expected <in> and <out>');
  const scheme = values.scheme ?? (values.type ? 'ggml' : undefined);
  if (scheme === undefined) throw new UsageError('--scheme is required');
  if (!['ggml', 'int', 'nf4', 'fp4', 'fp8'].includes(scheme)) throw new UsageError(`--scheme must be ggml, int, nf4, fp4 or fp8, not '${scheme}'`);
  const bnb = scheme === 'nf4' || scheme === 'fp4';
  if (values['double-quant'] && !bnb) throw new UsageError('--double-quant applies to --scheme nf4 and fp4');
  const native = scheme === 'ggml' ? 'gguf' : bnb ? 'bitsandbytes' : 'compressed-tensors';
  const format = values.format ?? native;
  const intFormats = ['pack-quantized', 'int-quantized'];
  if (format !== native && format !== 'safetensors' && !(scheme === 'int' && intFormats.includes(format)))
    throw new UsageError(`--scheme ${scheme} writes ${native}${scheme === 'int' ? ' (pack-quantized, or int-quantized for int8 codes)' : ''} or dequantized safetensors: --format must be ${native}${scheme === 'int' ? ', int-quantized' : ''} or safetensors, not '${format}'`);
  if (format === 'int-quantized' && Number(values.bits ?? 4) > 8) throw new UsageError('int-quantized stores int8 codes: --bits must be at most 8');
  const dense = format === 'safetensors';
  if (scheme !== 'ggml' || dense) {
    if (scheme !== 'ggml' && values.type !== undefined) throw new UsageError('--type applies to --scheme ggml');
    if (positionals[1].endsWith('.gguf')) throw new UsageError(`--format ${format} writes a safetensors folder (or a .safetensors file), not GGUF`);
    if ((values.method ?? 'rtn') !== 'rtn' || values.calib !== undefined) throw new UsageError('only --method rtn is available (GPTQ comes later)');
    let spec: IntSpec | Fp8Spec | Bnb4Spec | GgmlSpec;
    if (scheme === 'ggml') {
      if (values.bits !== undefined || values['group-size'] !== undefined || values.asym) throw new UsageError('--bits, --group-size and --asym apply to other schemes; ggml types fix their own layout');
      const type = values.type as GgmlType | undefined;
      if (type === undefined) throw new UsageError('--type is required with --scheme ggml');
      if (!QUANTIZABLE_GGML_TYPES.includes(type)) throw new UsageError(`--type must be one of ${QUANTIZABLE_GGML_TYPES.join(', ')}, not '${type}'`);
      spec = { scheme: 'ggml', type };
    } else if (bnb) {
      if (values.bits !== undefined && values.bits !== '4') throw new UsageError(`${scheme} has 4 bits`);
      if (values.asym) throw new UsageError(`${scheme} is symmetric`);
      const bs = Number(values['group-size'] ?? 64);
      if (![32, 64, 128, 256, 512, 1024, 2048, 4096].includes(bs)) throw new UsageError(`--group-size (the ${scheme} block size) must be 32, 64, 128 ... 4096, not '${values['group-size']}'`);
      spec = { scheme, blockSize: bs, ...(values['double-quant'] ? { doubleQuant: true } : {}) };
    } else if (scheme === 'int') {
      const bits = Number(values.bits ?? 4);
      if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new UsageError(`--bits must be 1 to 8, not '${values.bits}'`);
      const g = values['group-size'] ?? '128';
      const groupSize = g === 'channel' || g === 'tensor' ? g : Number(g);
      if (typeof groupSize === 'number' && !(Number.isInteger(groupSize) && groupSize >= 1)) throw new UsageError(`--group-size must be a positive integer, channel or tensor, not '${g}'`);
      spec = { scheme: 'int', bits, symmetric: !values.asym, groupSize };
    } else {
      if (values.bits !== undefined && values.bits !== '8') throw new UsageError('fp8 has 8 bits');
      if (values.asym) throw new UsageError('fp8 is symmetric');
      const g = values['group-size'] ?? 'channel';
      if (!['tensor', 'channel', 'block'].includes(g)) throw new UsageError(`--group-size for fp8 must be tensor, channel or block, not '${g}'`);
      spec = { scheme: 'fp8', format: 'e4m3', granularity: g as 'tensor' | 'channel' | 'block' };
    }
    const ioMode = values.io ?? 'auto';
    if (!['auto', 'mmap', 'pread'].includes(ioMode)) throw new UsageError(`--io must be auto, mmap or pread, not '${ioMode}'`);
    return quantizeCompressedTensors({
      input: positionals[0], output: positionals[1], spec, dense, intFormat: format === 'int-quantized' ? 'int-quantized' : 'pack-quantized', include: regexFlag(values.include, '--include'), exclude: regexFlag(values.exclude, '--exclude'),
      io: ioMode as 'auto', json: Boolean(values.json),
    }, io);
  }
  if (values.bits !== undefined || values['group-size'] !== undefined || values.asym || values.calib !== undefined || (values.method ?? 'rtn') !== 'rtn')
    throw new UsageError('--bits, --group-size, --asym, --method and --calib apply to other schemes; ggml types fix their own layout');
  const type = values.type as GgmlType | undefined;
  if (type === undefined) throw new UsageError('--type is required with --scheme ggml');
  if (!QUANTIZABLE_GGML_TYPES.includes(type)) throw new UsageError(`--type must be one of ${QUANTIZABLE_GGML_TYPES.join(', ')}, not '${type}'`);
  const ioMode = values.io ?? 'auto';
  if (!['auto', 'mmap', 'pread'].includes(ioMode)) throw new UsageError(`--io must be auto, mmap or pread, not '${ioMode}'`);
  const include = regexFlag(values.include, '--include');
  const exclude = regexFlag(values.exclude, '--exclude');
  const [input, output] = positionals;
  const outFile = output.endsWith('.gguf') ? output : path.join(output, 'model.gguf');

  const started = Date.now();
  const f = await open(input, { io: ioMode as 'auto' });
  try {
    fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
    const names = f.names();
    const decisions = new Map(names.map((n) => [n, decide(f, n, type, include, exclude)]));
    const plan: PlanEntry[] = names.map((name) => {
      const info = f.info(name);
      const d = decisions.get(name)!;
      if (d.action === 'quantize') return { name, ggmlType: type, shape: info.shape };
      if (d.action === 'f16') return { name, dtype: 'f16', shape: info.shape };
      return info.ggmlType && GGML_BLOCKS[info.ggmlType] ? { name, ggmlType: info.ggmlType, shape: info.shape } : { name, dtype: info.dtype, shape: info.shape };
    });
    const metadata: Record<string, MetadataValue> = { ...f.metadata };
    const metadataTypes: Record<string, string> = f.format === 'gguf' ? { ...f.metadataTypes } : {};
    if ([...decisions.values()].some((d) => d.action === 'quantize')) {
      metadata['general.quantization_version'] = 2;
      metadataTypes['general.quantization_version'] = 'u32';
      if (FILE_TYPES[type] !== undefined && 'general.file_type' in metadata) {
        metadata['general.file_type'] = FILE_TYPES[type]!;
        metadataTypes['general.file_type'] = 'u32';
      }
    }
    const w = createWriter(outFile, { format: 'gguf', plan, metadata, metadataTypes });
    const progress = new Progress(names.length, 'quantize');
    const rows: Row[] = [];
    let sse = 0;
    let count = 0;
    try {
      for (const [i, name] of names.entries()) {
        const d = decisions.get(name)!;
        const src = f.get(name);
        let stored: Tensor | QuantizedTensor = src;
        let storedName: string = src instanceof QuantizedTensor ? (src.spec.scheme === 'ggml' ? src.spec.type : 'fp8') : src.dtype;
        if (src instanceof Tensor && d.action === 'quantize') {
          stored = await quantize(src, { scheme: 'ggml', type });
          storedName = type;
        } else if (src instanceof Tensor && d.action === 'f16') {
          stored = src.to('f16');
          storedName = 'f16';
        }
        await w.write(name, stored);
        const numel = src.shape.reduce((a, b) => a * b, 1);
        const bytes = stored instanceof QuantizedTensor ? stored.byteLength : stored.byteLength;
        const row: Row = { name, shape: [...src.shape], stored: storedName, bitsPerWeight: numel ? (bytes * 8) / numel : 0, bytes };
        if (stored !== src && src instanceof Tensor) {
          const c = compare(src, stored instanceof QuantizedTensor ? dequantizeSync(stored) : stored);
          row.rmse = c.rmse;
          row.sqnrDb = c.sqnrDb;
          sse += c.mse * numel;
          count += numel;
        }
        if (d.note) row.note = d.note;
        rows.push(row);
        progress.update(i + 1, name);
      }
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    } finally {
      progress.done();
    }
    const params = rows.reduce((a, r) => a + r.shape.reduce((x, y) => x * y, 1), 0);
    const bytesOut = rows.reduce((a, r) => a + r.bytes, 0);
    const bytesIn = names.reduce((a, n) => a + f.info(n).byteLength, 0);
    const totals = {
      tensors: rows.length, quantized: rows.filter((r) => r.stored === type).length, parameters: params, bytesIn, bytesOut,
      bitsPerWeight: params ? (bytesOut * 8) / params : 0, rmse: count ? Math.sqrt(sse / count) : 0, seconds: (Date.now() - started) / 1000,
    };
    if (values.json) {
      io.out(`${JSON.stringify({ input, output: outFile, scheme: 'ggml', type, tensors: rows, totals }, (_k, v) => (v === Infinity ? 'Infinity' : v), 2)}\n`);
      return 0;
    }
    const fmt = (x: number | undefined, digits: number) => (x === undefined ? '-' : x === Infinity ? 'inf' : x.toPrecision(digits));
    io.out(`${table([['name', 'stored', 'shape', 'bpw', 'size', 'rmse', 'SQNR dB', 'note'],
      ...rows.map((r) => [r.name, r.stored, `[${r.shape.join(', ')}]`, r.bitsPerWeight.toFixed(2), formatBytes(r.bytes), fmt(r.rmse, 3), fmt(r.sqnrDb, 3), r.note ?? ''])],
    [false, false, false, true, true, true, true, false])}\n\n`);
    io.out(`${groupDigits(totals.quantized)} of ${groupDigits(totals.tensors)} tensors quantized to ${type}: ${formatBytes(bytesIn)} -> ${formatBytes(bytesOut)}, ` +
      `${totals.bitsPerWeight.toFixed(2)} bits per weight, rmse ${fmt(totals.rmse, 3)} over the changed tensors, ${totals.seconds.toFixed(2)} s\n`);
    io.out(`wrote ${outFile}\n`);
    return 0;
  } finally {
    f.close();
  }
}
