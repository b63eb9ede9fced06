// SPDX-License-Identifier: MIT
/** `weightsmith quantize --scheme int|fp8|nf4|fp4`: compressed-tensors or bitsandbytes output. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../atomic';
import { compare } from '../compare';
import { bitsandbytesConfig, bitsandbytesEntries, bitsandbytesPlan } from '../bitsandbytes';
import { compressedTensorsEntries, compressedTensorsPlan, IntFormat, quantizationConfig } from '../compressed-tensors';
import { dtypeInfo } from '../dtype';
import { open } from '../file';
import { Bnb4Spec, dequantizeSync, Fp8Spec, GGML_BLOCKS, GgmlSpec, IntSpec, QuantizedTensor, quantize } from '../quantized';
import { createWriter, PlanEntry } from '../writer';
import { NOT_LINEAR, safetensorsOutput, type Io } from './args';
import { formatBytes, groupDigits, Progress, table } from './format';

export interface CtOptions {
  input: string;
  output: string;
  spec: IntSpec | Fp8Spec | Bnb4Spec | GgmlSpec;
  /** Write the dequantized weights in their own dtype (plain safetensors) instead of the stored parts. */
  dense?: boolean;
  /** How int codes are stored (default pack-quantized). */
  intFormat?: IntFormat;
  include?: RegExp;
  exclude?: RegExp;
  io: 'auto' | 'mmap' | 'pread';
  json: boolean;
}

/**
 * Quantizes the 2-D weights of a checkpoint to compressed-tensors (int, fp8) or the bitsandbytes 4-bit layout
 * (nf4, fp4): safetensors + config.json, tensor by tensor. With `dense`, any scheme (ggml types too) and the
 * weights are written dequantized, in their own dtype, with the input's config.json.
 */
export async function quantizeCompressedTensors(o: CtOptions, io: Io): Promise<number> {
  const started = Date.now();
  const { outDir, outFile } = safetensorsOutput(o.output);
  const bnb = o.spec.scheme === 'nf4' || o.spec.scheme === 'fp4';
  const f = await open(o.input, { io: o.io });
  try {
    fs.mkdirSync(path.resolve(outDir), { recursive: true });
    const names = f.names();
    const row = (shape: number[]) => shape.reduce((a, b) => a * b, 1) / Math.max(shape[0] ?? 1, 1);
    // The group (int) or block (ggml) size rows must be a multiple of; fp8, nf4 and fp4 take any row.
    const unit = o.spec.scheme === 'int' ? (typeof o.spec.groupSize === 'number' ? o.spec.groupSize : typeof o.spec.groupSize === 'string' ? 0 : 128)
      : o.spec.scheme === 'ggml' ? GGML_BLOCKS[o.spec.type]!.size : 0;
    const divides = (shape: number[]) => !unit || row(shape) % unit === 0;
    const quantizes = (name: string): boolean => {
      const info = f.info(name);
      if (!dtypeInfo(info.dtype)!.float || info.ggmlType && info.ggmlType !== info.dtype) return false;
      if (o.exclude?.test(name)) return false;
      if (o.include ? !o.include.test(name) : info.shape.length !== 2 || NOT_LINEAR.test(name) || !name.endsWith('.weight')) return false;
      return divides(info.shape);
    };
    const plan: PlanEntry[] = [];
    const ignore: string[] = [];
    const notes = new Map<string, string>();
    for (const name of names) {
      const info = f.info(name);
      if (quantizes(name)) {
        const wd = ['f16', 'bf16'].includes(info.dtype) ? info.dtype : 'f32';
        const sp = o.spec;
        const entries = o.dense ? [{ name, dtype: info.dtype, shape: info.shape }]
          : sp.scheme === 'nf4' || sp.scheme === 'fp4' ? bitsandbytesPlan(name, info.shape, wd, sp)
            : sp.scheme === 'ggml' ? [] : compressedTensorsPlan(name, info.shape, wd, sp, o.intFormat);
        for (const e of entries) plan.push(e);
      } else {
        plan.push({ name, dtype: info.dtype, shape: info.shape });
        if (name.endsWith('.weight') && info.shape.length === 2) ignore.push(name.slice(0, -'.weight'.length));
        if (unit && info.shape.length === 2 && !divides(info.shape))
          notes.set(name, `rows of ${row(info.shape)} are not a multiple of the ${o.spec.scheme === 'int' ? 'group' : 'block'} size ${unit}: kept`);
      }
    }
    const metadata = Object.fromEntries(Object.entries(f.metadata).filter((kv): kv is [string, string] => typeof kv[1] === 'string'));
    const w = createWriter(outFile, { plan, metadata });
    const progress = new Progress(names.length, 'quantize');
    const rows: { name: string; stored: string; shape: number[]; bitsPerWeight: number; bytes: number; rmse?: number; sqnrDb?: number; note?: string }[] = [];
    let sse = 0;
    let count = 0;
    try {
      for (const [i, name] of names.entries()) {
        const src = f.getTensor(name);
        const numel = src.numel;
        if (quantizes(name)) {
          const x = ['f16', 'bf16', 'f32'].includes(src.dtype) ? src : src.to('f32');
          const q: QuantizedTensor = await quantize(x, o.spec);
          const kind = q.spec.scheme === 'int' ? `int${q.spec.bits}` : q.spec.scheme === 'ggml' ? q.spec.type : q.spec.scheme;
          const back = dequantizeSync(q, x.dtype);
          const c = compare(x, back);
          sse += c.mse * numel;
          count += numel;
          if (o.dense) {
            const out = back.dtype === src.dtype ? back : back.to(src.dtype);
            await w.write(name, out);
            rows.push({ name, stored: src.dtype, shape: [...src.shape], bitsPerWeight: dtypeInfo(src.dtype)!.bits, bytes: out.byteLength, rmse: c.rmse, sqnrDb: c.sqnrDb,
              note: `dequantized from ${kind} (${((q.byteLength * 8) / numel).toFixed(2)} bits per weight)` });
          } else {
            const entries = bnb ? bitsandbytesEntries(name, q, { padded: true }) : compressedTensorsEntries(name, q, { format: o.intFormat });
            for (const [k, t] of Object.entries(entries)) await w.write(k, t);
            rows.push({ name, stored: kind, shape: [...src.shape], bitsPerWeight: (q.byteLength * 8) / numel, bytes: q.byteLength, rmse: c.rmse, sqnrDb: c.sqnrDb });
          }
        } else {
          await w.write(name, src);
          const r = { name, stored: src.dtype, shape: [...src.shape], bitsPerWeight: dtypeInfo(src.dtype)!.bits, bytes: src.byteLength } as (typeof rows)[number];
          if (notes.has(name)) r.note = notes.get(name);
          rows.push(r);
        }
        progress.update(i + 1, name);
      }
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    } finally {
      progress.done();
    }
    // config.json: the input's (from a model folder) with quantization_config added, else a minimal one.
    const inDir = fs.existsSync(o.input) && fs.statSync(o.input).isDirectory() ? o.input : path.dirname(o.input);
    let config: Record<string, unknown> = {};
    const inConfig = path.join(inDir, 'config.json');
    if (fs.existsSync(inConfig)) config = JSON.parse(fs.readFileSync(inConfig, 'utf8'));
    const sp = o.spec;
    if (!o.dense) {
      config.quantization_config = sp.scheme === 'nf4' || sp.scheme === 'fp4'
        ? bitsandbytesConfig(['f16', 'bf16'].includes(String(config.torch_dtype)) ? (config.torch_dtype === 'float16' ? 'f16' : 'bf16') : 'f32', ignore, sp)
        : sp.scheme === 'ggml' ? {} : quantizationConfig(sp, ignore, o.intFormat);
    }
    const writeConfig = !o.dense || fs.existsSync(inConfig);
    if (writeConfig) {
      writeFileAtomicSync(path.join(outDir, 'config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
    }
    const params = rows.reduce((a, r) => a + r.shape.reduce((x, y) => x * y, 1), 0);
    const bytesOut = rows.reduce((a, r) => a + r.bytes, 0);
    const totals = {
      tensors: rows.length, quantized: rows.filter((r) => r.rmse !== undefined).length, parameters: params,
      bytesIn: names.reduce((a, n) => a + f.info(n).byteLength, 0), bytesOut, bitsPerWeight: params ? (bytesOut * 8) / params : 0,
      rmse: count ? Math.sqrt(sse / count) : 0, seconds: (Date.now() - started) / 1000,
    };
    if (o.json) {
      io.out(`${JSON.stringify({ input: o.input, output: outFile, spec: o.spec, format: o.dense ? 'safetensors' : bnb ? 'bitsandbytes' : 'compressed-tensors', tensors: rows, totals }, (_k, v) => (v === Infinity ? 'Infinity' : v), 2)}\n`);
      return 0;
    }
    const fmt = (x: number | undefined, d: number) => (x === undefined ? '-' : x === Infinity ? 'inf' : x.toPrecision(d));
    io.out(`${table([['name', 'stored', 'shape', 'bpw', 'size', 'rmse', 'SQNR dB', 'note'],
      ...rows.map((r) => [r.name, r.stored, `[${r.shape.join(', ')}]`, r.bitsPerWeight.toFixed(2), formatBytes(r.bytes), fmt(r.rmse, 3), fmt(r.sqnrDb, 3), r.note ?? ''])],
    [false, false, false, true, true, true, true, false])}\n\n`);
    io.out(`${groupDigits(totals.quantized)} of ${groupDigits(totals.tensors)} tensors quantized: ${formatBytes(totals.bytesIn)} -> ${formatBytes(bytesOut)}, ` +
      `${totals.bitsPerWeight.toFixed(2)} bits per weight, rmse ${fmt(totals.rmse, 3)} over the quantized tensors, ${totals.seconds.toFixed(2)} s\n`);
    io.out(`wrote ${outFile}${writeConfig ? ` and ${path.join(outDir, 'config.json')}` : ''}\n`);
    return 0;
  } finally {
    f.close();
  }
}

