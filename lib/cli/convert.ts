// SPDX-License-Identifier: MIT
/** `weightsmith convert`. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DType, dtypeInfo, isDType } from '../dtype';
import { open } from '../file';
import { convertBytes, ownersOf } from '../tensor';
import { dequantize, QuantizedTensor } from '../quantized';
import { createWriter, referenceOrder } from '../writer';
import { writeFileAtomicSync } from '../atomic';
import { UsageError, parseCommand, type Io } from './args';
import { formatBytes, groupDigits, parseSize, Progress } from './format';

const FLOAT_TARGETS = ['f64', 'f32', 'f16', 'bf16', 'f8_e4m3', 'f8_e5m2'];

export const CONVERT_HELP = `Usage: weightsmith convert <in> <out> --dtype <dtype> [--format safetensors|gguf] [--shard-size SIZE]
                         [--io auto|mmap|pread] [--json]

Converts every floating-point tensor (f64, f32, f16, bf16, fp8) of <in> to <dtype>, one of
${FLOAT_TARGETS.join(', ')}; integer and bool tensors are copied unchanged. Rounds to nearest even;
f16/bf16 overflow becomes +-Inf; fp8 saturates. Streams tensor by tensor in bounded memory and writes
atomically.

<in>   a .safetensors file, a model.safetensors.index.json, a model folder, or a .gguf file (ggml-quantized
       tensors are dequantized exactly as ggml does, then converted)
<out>  a .safetensors / .gguf file, or a folder: then model.safetensors (or shards with an index) or
       model.gguf is written there and the other files of an input folder (config.json, tokenizer...) are
       copied, with config.json's torch_dtype updated.
--format safetensors|gguf   the output format (default: from <out>'s extension, else safetensors); GGUF keeps
                    a GGUF input's typed metadata and tensor order, and stores no fp8
--shard-size SIZE   split safetensors output into shards of at most SIZE (e.g. 2GB, 500MB)`;

/** The string-valued metadata entries (safetensors metadata holds only strings). */
function stringMetadata(md: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(Object.entries(md).filter((kv): kv is [string, string] => typeof kv[1] === 'string'));
}

const TORCH_DTYPE: Partial<Record<DType, string>> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16', f64: 'float64' };
const CHUNK_BYTES = 1 << 26;

function copySidecars(inDir: string, outDir: string, target: DType): string[] {
  const copied: string[] = [];
  for (const name of fs.readdirSync(inDir)) {
    if (name.endsWith('.safetensors') || name === 'model.safetensors.index.json' || name.startsWith('.')) continue;
    const src = path.join(inDir, name);
    if (!fs.statSync(src).isFile()) continue;
    let data: Buffer = fs.readFileSync(src);
    if (name === 'config.json' && TORCH_DTYPE[target]) {
      // Edit the one value in place, keeping the rest of the file byte for byte (number formatting included).
      const text = data.toString('utf8');
      const edited = text.replace(/("torch_dtype"\s*:\s*)"[^"]*"/, `$1"${TORCH_DTYPE[target]}"`);
      data = Buffer.from(edited, 'utf8');
    }
    writeFileAtomicSync(path.join(outDir, name), data);
    copied.push(name);
  }
  return copied;
}

export async function convertCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    dtype: { type: 'string' }, 'shard-size': { type: 'string' }, io: { type: 'string' }, json: { type: 'boolean' }, format: { type: 'string' },
  });
  if (positionals.length !== 2) throw new UsageError('expected <in> and <out>');
  if (values.dtype === undefined) throw new UsageError('--dtype is required');
  if (!isDType(values.dtype) || !FLOAT_TARGETS.includes(values.dtype)) throw new UsageError(`--dtype must be one of ${FLOAT_TARGETS.join(', ')}, not '${values.dtype}'`);
  const format = values.format ?? (positionals[1]?.endsWith('.gguf') ? 'gguf' : 'safetensors');
  if (format !== 'safetensors' && format !== 'gguf') throw new UsageError(`--format must be safetensors or gguf, not '${format}'`);
  if (format === 'gguf' && values.dtype?.startsWith('f8')) throw new UsageError('GGUF has no fp8 type: choose f32, f16, bf16 or f64');
  if (format === 'gguf' && values['shard-size'] !== undefined) throw new UsageError('--shard-size applies to safetensors output only');
  const shardSize = values['shard-size'] === undefined ? undefined : parseSize(values['shard-size']);
  if (shardSize !== undefined && !(shardSize >= 1)) throw new UsageError(`--shard-size must be a size like 2GB, not '${values['shard-size']}'`);
  const ioMode = values.io ?? 'auto';
  if (!['auto', 'mmap', 'pread'].includes(ioMode)) throw new UsageError(`--io must be auto, mmap or pread, not '${ioMode}'`);
  const target = values.dtype as DType;
  const [input, output] = positionals;

  const inIsDir = fs.existsSync(input) && fs.statSync(input).isDirectory();
  const ext = format === 'gguf' ? '.gguf' : '.safetensors';
  const outIsDir = !output.endsWith(ext);
  const outFile = outIsDir ? path.join(output, `model${ext}`) : output;
  const started = Date.now();
  const f = await open(input, { io: ioMode as 'auto' });
  try {
    fs.mkdirSync(outIsDir ? output : path.dirname(path.resolve(output)), { recursive: true });
  } catch (err) {
    f.close();
    throw err;
  }
  let bytesIn = 0;
  let bytesOut = 0;
  let converted = 0;
  try {
    const plan = f.names().map((name) => {
      const info = f.info(name);
      // ggml-quantized input: dequantized to the target dtype.
      const dequant = info.ggmlType !== undefined && info.dtype === 'u8' && info.ggmlType !== 'i8';
      const conv = dequant || (dtypeInfo(info.dtype)!.float && info.dtype !== target);
      return { name, dtype: conv ? target : info.dtype, shape: info.shape, from: info.dtype, conv, dequant };
    });
    // GGUF keeps the input's order (llama.cpp's loaders expect their own); safetensors uses the reference order.
    const ordered = format === 'gguf' ? plan : referenceOrder(plan);
    const total = plan.reduce((a, e) => a + f.info(e.name).byteLength, 0);
    const w = format === 'gguf'
      ? createWriter(outFile, { format, plan, metadata: f.format === 'gguf' ? f.metadata : stringMetadata(f.metadata), metadataTypes: f.format === 'gguf' ? f.metadataTypes : undefined })
      : createWriter(outFile, { plan, metadata: stringMetadata(f.metadata), shardSize });
    const progress = new Progress(total, 'convert');
    // Ctrl-C or a kill: remove the temp files, then end as the signal would have.
    const onSignal = (sig: NodeJS.Signals) => {
      w.abort();
      progress.done();
      process.kill(process.pid, sig);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      // Two buffers each way: chunk k+1 is read and converted while chunk k is being written.
      const srcBufs = [new Uint8Array(CHUNK_BYTES), new Uint8Array(CHUNK_BYTES)];
      const dstBufs = [new Uint8Array(CHUNK_BYTES * 8), new Uint8Array(CHUNK_BYTES * 8)];
      let which = 0;
      let pending: Promise<void> | undefined;
      const emit = async (name: string, byteOffset: number, bytes: Uint8Array) => {
        if (pending) await pending;
        pending = w.writeBytes(name, byteOffset, bytes);
        which ^= 1;
      };
      for (const e of ordered) {
        const info = f.info(e.name);
        if (e.dequant) {
          const t = await dequantize(f.get(e.name) as QuantizedTensor, e.dtype);
          if (pending) await pending;
          pending = undefined;
          await w.write(e.name, t);
          bytesIn += info.byteLength;
          bytesOut += t.byteLength;
          converted++;
          progress.update(bytesIn, e.name);
          continue;
        }
        // Mapped input: read straight from the mapping (zero-copy); otherwise pread into a buffer.
        const view = f.isMapped(e.name) && info.byteLength > 0 ? f.getTensor(e.name) : undefined;
        const owners = view ? ownersOf(view) : [];
        const source = (byteOffset: number, length: number): Uint8Array => {
          if (view) return view.bytes().subarray(byteOffset, byteOffset + length);
          const buf = srcBufs[which].subarray(0, length);
          f.readInto(e.name, byteOffset, buf);
          return buf;
        };
        if (!e.conv) {
          for (let off = 0; off < info.byteLength; off += CHUNK_BYTES) {
            const len = Math.min(CHUNK_BYTES, info.byteLength - off);
            await emit(e.name, off, source(off, len));
            bytesIn += len;
            progress.update(bytesIn, e.name);
          }
          bytesOut += info.byteLength;
          continue;
        }
        const inSize = dtypeInfo(e.from)!.bits / 8;
        const outSize = dtypeInfo(e.dtype)!.bits / 8;
        const numel = info.byteLength / inSize;
        const perChunk = Math.floor(CHUNK_BYTES / inSize);
        for (let i = 0; i < numel; i += perChunk) {
          const n = Math.min(perChunk, numel - i);
          const src = source(i * inSize, n * inSize);
          const dst = dstBufs[which].subarray(0, n * outSize);
          await convertBytes(src, e.from, dst, e.dtype, n, undefined, owners);
          await emit(e.name, i * outSize, dst);
          bytesIn += n * inSize;
          progress.update(bytesIn, e.name);
        }
        converted++;
        bytesOut += numel * outSize;
      }
      if (pending) await pending;
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      progress.done();
    }
    const copied = inIsDir && outIsDir ? copySidecars(input, output, target) : [];
    const seconds = (Date.now() - started) / 1000;
    if (values.json) {
      io.out(`${JSON.stringify({ input, output, dtype: target, tensors: plan.length, converted, bytesIn, bytesOut, files: w.files, copied, seconds }, null, 2)}\n`);
    } else {
      io.out(`converted ${groupDigits(converted)} of ${groupDigits(plan.length)} tensors to ${target}: ${formatBytes(bytesIn)} -> ${formatBytes(bytesOut)} in ${seconds.toFixed(2)} s\n`);
      io.out(`wrote ${w.files.join(', ')}${copied.length ? `; copied ${copied.join(', ')}` : ''}\n`);
    }
    return 0;
  } finally {
    f.close();
  }
}
