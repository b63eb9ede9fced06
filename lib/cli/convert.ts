// SPDX-License-Identifier: MIT
/** `weightsmith convert`. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DType, dtypeInfo, isDType } from '../dtype';
import { open } from '../file';
import { convertBytes } from '../tensor';
import { createWriter, referenceOrder } from '../writer';
import { AtomicFile } from '../atomic';
import { UsageError, parseCommand, type Io } from './args';
import { formatBytes, groupDigits, parseSize, Progress } from './format';

const FLOAT_TARGETS = ['f64', 'f32', 'f16', 'bf16', 'f8_e4m3', 'f8_e5m2'];

export const CONVERT_HELP = `Usage: weightsmith convert <in> <out> --dtype <dtype> [--shard-size SIZE] [--io auto|mmap|pread] [--json]

Converts every floating-point tensor (f64, f32, f16, bf16, fp8) of <in> to <dtype>, one of
${FLOAT_TARGETS.join(', ')}; integer and bool tensors are copied unchanged. Rounds to nearest even;
f16/bf16 overflow becomes +-Inf; fp8 saturates. Streams tensor by tensor in bounded memory and writes
atomically.

<in>   a .safetensors file, a model.safetensors.index.json, or a model folder
<out>  a .safetensors file, or a folder: then model.safetensors (or shards with an index) is written there
       and the other files of an input folder (config.json, tokenizer...) are copied, with config.json's
       torch_dtype updated.
--shard-size SIZE   split the output into shards of at most SIZE (e.g. 2GB, 500MB)
--format safetensors   the output format (the default and, for now, the only one)`;

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
    const f = AtomicFile.create(path.join(outDir, name));
    try {
      f.writeSync(data, 0);
      f.commitSync();
    } catch (err) {
      f.abort();
      throw err;
    }
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
  if (values.format !== undefined && values.format !== 'safetensors') throw new UsageError(`--format must be safetensors, not '${values.format}'`);
  const shardSize = values['shard-size'] === undefined ? undefined : parseSize(values['shard-size']);
  if (shardSize !== undefined && !(shardSize >= 1)) throw new UsageError(`--shard-size must be a size like 2GB, not '${values['shard-size']}'`);
  const ioMode = values.io ?? 'auto';
  if (!['auto', 'mmap', 'pread'].includes(ioMode)) throw new UsageError(`--io must be auto, mmap or pread, not '${ioMode}'`);
  const target = values.dtype as DType;
  const [input, output] = positionals;

  const inIsDir = fs.existsSync(input) && fs.statSync(input).isDirectory();
  const outIsDir = !output.endsWith('.safetensors');
  const outFile = outIsDir ? path.join(output, 'model.safetensors') : output;
  fs.mkdirSync(outIsDir ? output : path.dirname(path.resolve(output)), { recursive: true });

  const started = Date.now();
  const f = await open(input, { io: ioMode as 'auto' });
  let bytesIn = 0;
  let bytesOut = 0;
  let converted = 0;
  try {
    const plan = f.names().map((name) => {
      const info = f.info(name);
      const conv = dtypeInfo(info.dtype)!.float && info.dtype !== target;
      return { name, dtype: conv ? target : info.dtype, shape: info.shape, from: info.dtype, conv };
    });
    const ordered = referenceOrder(plan);
    const total = plan.reduce((a, e) => a + f.info(e.name).byteLength, 0);
    const w = createWriter(outFile, { plan, metadata: { ...f.metadata }, shardSize });
    const progress = new Progress(total, 'convert');
    try {
      const srcBuf = new Uint8Array(CHUNK_BYTES);
      const dstBuf = new Uint8Array(CHUNK_BYTES * 4);
      for (const e of ordered) {
        const info = f.info(e.name);
        const inSize = dtypeInfo(e.from)!.bits / 8;
        const outSize = dtypeInfo(e.dtype)!.bits / 8;
        const numel = info.shape.reduce((a, b) => a * b, 1);
        const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(inSize, outSize, 1)));
        for (let i = 0; i < Math.max(numel, 1) && info.byteLength > 0; i += perChunk) {
          const n = Math.min(perChunk, numel - i);
          const src = srcBuf.subarray(0, n * inSize);
          f.readInto(e.name, i * inSize, src);
          if (e.conv) {
            const dst = dstBuf.subarray(0, n * outSize);
            await convertBytes(src, e.from, dst, e.dtype, n);
            await w.writeBytes(e.name, i * outSize, dst);
          } else {
            await w.writeBytes(e.name, i * inSize, src);
          }
          bytesIn += n * inSize;
          progress.update(bytesIn, e.name);
        }
        if (e.conv) converted++;
        bytesOut += numel * outSize;
      }
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    } finally {
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
