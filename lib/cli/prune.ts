// SPDX-License-Identifier: MIT
/** `weightsmith prune`. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../atomic';
import { compare } from '../compare';
import { moduleOf } from '../compressed-tensors';
import { dtypeInfo, DType } from '../dtype';
import { open, WeightFile } from '../file';
import { compress, sparseEntries, SparseFormat } from '../sparse-formats';
import { applyMaskAsync, mask, Mask, MaskOptions } from '../sparsity';
import { Tensor } from '../tensor';
import { createWriter, PlanEntry } from '../writer';
import { copySideFiles, NOT_LINEAR, parseCommand, regexFlag, safetensorsOutput, UsageError, type Io } from './args';
import { formatBytes, groupDigits, Progress, table } from './format';

export const PRUNE_HELP = `Usage: weightsmith prune <in> <out-dir> --method magnitude|wanda --sparsity 0.5|2:4
                       [--calib stats.safetensors] [--scope row|tensor] [--compress sparse-24-bitmask|sparse-bitmask]
                       [--include RE] [--exclude RE] [--io auto|mmap|pread] [--json]

Prunes the weights of <in> (safetensors file, index or folder) tensor by tensor and writes <out-dir>/model.safetensors
(or <out> ending in .safetensors) with the input folder's other files (config.json...).

--sparsity 0.5 prunes that fraction of every row (--scope row, the default: Wanda's comparison group) or of the
whole tensor (--scope tensor); --sparsity N:M keeps N of every M consecutive inputs of a row (2:4, 4:8, 1:4...).
Ties keep the lower index. --method wanda scores |W_ij| * ||X_j|| with the input norms of a calibration file
(keys <module>.input_norms, as weightsmith calibrate and Calibrator.save write them); every pruned weight needs
its module's norms.

By default the 2-D .weight tensors except embeddings, norms and lm_head are pruned. --compress writes the pruned
weights in compressed-tensors' legacy sparse formats (<module>.compressed, .bitmask, .shape [, .row_offsets]) with
a sparsity_config in config.json; sparse-24-bitmask needs a pattern with at most 2 of every 4 kept (2:4, 1:4).

The report lists, per tensor, the achieved sparsity and the relative error ||W - W'|| / ||W||; --json prints it
as one JSON document.`;

interface Row {
  name: string;
  shape: number[];
  dtype: string;
  pruned: boolean;
  sparsity: number;
  relError?: number;
  bytes: number;
  stored: string;
}

export async function pruneCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    method: { type: 'string' }, sparsity: { type: 'string' }, calib: { type: 'string' }, scope: { type: 'string' },
    compress: { type: 'string' }, include: { type: 'string' }, exclude: { type: 'string' }, io: { type: 'string' }, json: { type: 'boolean' },
  });
  if (positionals.length !== 2) throw new UsageError('expected <in> and <out>');
  const method = values.method ?? 'magnitude';
  if (method !== 'magnitude' && method !== 'wanda') throw new UsageError(`--method must be magnitude or wanda, not '${method}'`);
  if (values.sparsity === undefined) throw new UsageError('--sparsity is required (a fraction like 0.5, or N:M like 2:4)');
  const opts: Omit<MaskOptions, 'signal'> = { method };
  let nm: [number, number] | undefined;
  const m = /^(\d+):(\d+)$/.exec(values.sparsity);
  if (m) {
    nm = [Number(m[1]), Number(m[2])];
    if (!(nm[0] >= 1 && nm[0] < nm[1])) throw new UsageError(`--sparsity N:M needs 1 <= N < M, not ${values.sparsity}`);
    if (values.scope !== undefined) throw new UsageError('--scope applies to unstructured sparsity');
    opts.pattern = values.sparsity;
  } else {
    const s = Number(values.sparsity);
    if (!/^\d*\.?\d+$/.test(values.sparsity) || !(s >= 0 && s < 1)) throw new UsageError(`--sparsity must be a fraction in [0, 1) or N:M, not '${values.sparsity}'`);
    opts.sparsity = s;
    const scope = values.scope ?? 'row';
    if (scope !== 'row' && scope !== 'tensor') throw new UsageError(`--scope must be row or tensor, not '${scope}'`);
    opts.scope = scope;
  }
  const format = values.compress as SparseFormat | undefined;
  if (format !== undefined && format !== 'sparse-24-bitmask' && format !== 'sparse-bitmask')
    throw new UsageError(`--compress must be sparse-24-bitmask or sparse-bitmask, not '${format}'`);
  if (format === 'sparse-24-bitmask' && !(nm && nm[1] === 4 && nm[0] <= 2))
    throw new UsageError('--compress sparse-24-bitmask needs --sparsity 2:4 or 1:4');
  if (method === 'wanda' && values.calib === undefined) throw new UsageError('--method wanda needs --calib <statistics.safetensors> (input norms per module)');
  if (method !== 'wanda' && values.calib !== undefined) throw new UsageError('--calib applies to --method wanda');
  const ioMode = values.io ?? 'auto';
  if (!['auto', 'mmap', 'pread'].includes(ioMode)) throw new UsageError(`--io must be auto, mmap or pread, not '${ioMode}'`);
  const include = regexFlag(values.include, '--include');
  const exclude = regexFlag(values.exclude, '--exclude');
  const [input, output] = positionals;
  if (output.endsWith('.gguf')) throw new UsageError('prune writes safetensors (a folder or a .safetensors file)');
  const { outDir, outFile } = safetensorsOutput(output);

  const started = Date.now();
  const f = await open(input, { io: ioMode as 'auto' });
  let calib: WeightFile | undefined;
  try {
    if (values.calib !== undefined) calib = await open(values.calib);
    const names = f.names();
    const prunes = (name: string): boolean => {
      const info = f.info(name);
      if (!dtypeInfo(info.dtype)!.float || info.ggmlType) return false;
      if (exclude?.test(name)) return false;
      if (include ? !include.test(name) : info.shape.length !== 2 || NOT_LINEAR.test(name) || !name.endsWith('.weight')) return false;
      return true;
    };
    const normsOf = (name: string): Tensor => {
      const key = `${moduleOf(name)}.input_norms`;
      if (!calib!.has(key)) throw Object.assign(new Error(`--calib ${values.calib} has no '${key}': Wanda needs the input norms of every pruned module (weight '${name}')`), { code: 'ERR_TENSOR_NOT_FOUND' });
      return calib!.getTensor(key);
    };
    const selected = names.filter(prunes);
    if (method === 'wanda') for (const name of selected) normsOf(name);  // refuse before writing anything
    if (nm) {
      for (const name of selected) {
        const shape = f.info(name).shape;
        const cols = shape.reduce((a, b) => a * b, 1) / Math.max(shape[0] ?? 1, 1);
        if (cols % nm[1] !== 0) throw Object.assign(new Error(`'${name}': rows of ${cols} are not a multiple of M = ${nm[1]}`), { code: 'ERR_SHAPE' });
      }
    }
    const pruneOne = async (name: string): Promise<{ src: Tensor; m: Mask; out: Tensor }> => {
      const src = f.getTensor(name);
      const x = ['f32', 'f16', 'bf16'].includes(src.dtype) ? src : src.to('f32');
      const o: MaskOptions = { ...opts };
      if (method === 'wanda') o.inputNorms = normsOf(name);
      const mk = await mask(x, o);
      return { src, m: mk, out: await applyMaskAsync(src, mk) };
    };
    // sparse-bitmask stores only non-zeros: a first pass counts them for the writer's plan.
    const nonZeros = new Map<string, number>();
    if (format === 'sparse-bitmask') {
      for (const name of selected) nonZeros.set(name, (compress((await pruneOne(name)).out, { format }).parts.compressed.numel));
    }
    const plan: PlanEntry[] = [];
    for (const name of names) {
      const info = f.info(name);
      if (!format || !selected.includes(name)) {
        plan.push({ name, dtype: info.dtype as DType, shape: info.shape });
        continue;
      }
      const [rows, cols] = info.shape;
      const mod = moduleOf(name);
      if (format === 'sparse-24-bitmask') {
        plan.push({ name: `${mod}.shape`, dtype: 'i64', shape: [2, 1] }, { name: `${mod}.compressed`, dtype: info.dtype as DType, shape: [rows, cols / 2] },
          { name: `${mod}.bitmask`, dtype: 'u8', shape: [rows, Math.ceil(cols / 8)] });
      } else {
        plan.push({ name: `${mod}.shape`, dtype: 'i64', shape: [2] }, { name: `${mod}.compressed`, dtype: info.dtype as DType, shape: [nonZeros.get(name)!] },
          { name: `${mod}.bitmask`, dtype: 'u8', shape: [rows, Math.ceil(cols / 8)] }, { name: `${mod}.row_offsets`, dtype: 'i64', shape: [rows] });
      }
    }
    fs.mkdirSync(path.resolve(outDir), { recursive: true });
    const metadata = Object.fromEntries(Object.entries(f.metadata).filter((kv): kv is [string, string] => typeof kv[1] === 'string'));
    const w = createWriter(outFile, { plan, metadata });
    const progress = new Progress(names.length, 'prune');
    const rows: Row[] = [];
    let kept = 0;
    let total = 0;
    try {
      for (const [i, name] of names.entries()) {
        if (!selected.includes(name)) {
          const src = f.getTensor(name);
          await w.write(name, src);
          rows.push({ name, shape: [...src.shape], dtype: src.dtype, pruned: false, sparsity: 0, bytes: src.byteLength, stored: src.dtype });
        } else {
          const { src, m: mk, out } = await pruneOne(name);
          let bytes = out.byteLength;
          if (format) {
            const c = compress(out, { format });
            for (const [k, t] of Object.entries(sparseEntries(moduleOf(name), c))) await w.write(k, t);
            bytes = c.byteLength;
          } else {
            await w.write(name, out);
          }
          const rel = compare(src.dtype === 'f32' ? src : src.to('f32'), out.dtype === 'f32' ? out : out.to('f32')).relFrobenius;
          rows.push({ name, shape: [...src.shape], dtype: src.dtype, pruned: true, sparsity: mk.sparsity, relError: rel, bytes, stored: format ?? src.dtype });
          kept += mk.kept;
          total += mk.numel;
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
    // The input folder's other files, with a sparsity_config when compressed.
    copySideFiles(input, outDir, (name) => name === 'config.json');
    const inDir = fs.existsSync(input) && fs.statSync(input).isDirectory() ? input : undefined;
    const inConfig = inDir ? path.join(inDir, 'config.json') : undefined;
    if (inConfig && fs.existsSync(inConfig)) {
      const config = JSON.parse(fs.readFileSync(inConfig, 'utf8')) as Record<string, unknown>;
      if (format) {
        config.quantization_config = {
          quant_method: 'compressed-tensors', format: 'dense', config_groups: {}, quantization_status: 'compressed',
          sparsity_config: {
            format, targets: selected.map(moduleOf), ignore: [], global_sparsity: total ? 1 - kept / total : 0,
            sparsity_structure: nm ? `${nm[0]}:${nm[1]}` : 'unstructured',
          },
        };
      }
      writeFileAtomicSync(path.join(outDir, 'config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
    }
    const totals = {
      tensors: rows.length, pruned: selected.length, prunedParameters: total, keptParameters: kept, sparsity: total ? 1 - kept / total : 0,
      bytesIn: names.reduce((a, n) => a + f.info(n).byteLength, 0), bytesOut: rows.reduce((a, r) => a + r.bytes, 0), seconds: (Date.now() - started) / 1000,
    };
    if (values.json) {
      io.out(`${JSON.stringify({ input, output: outFile, method, sparsity: values.sparsity, scope: opts.scope ?? null, compress: format ?? null, tensors: rows, totals }, null, 2)}\n`);
      return 0;
    }
    const fmt = (x: number | undefined, d: number) => (x === undefined ? '-' : x.toPrecision(d));
    io.out(`${table([['name', 'shape', 'stored', 'sparsity', 'rel. error', 'size'],
      ...rows.map((r) => [r.name, `[${r.shape.join(', ')}]`, r.stored, r.pruned ? `${(r.sparsity * 100).toFixed(2)}%` : '-', fmt(r.relError, 3), formatBytes(r.bytes)])],
    [false, false, false, true, true, true])}\n\n`);
    io.out(`${groupDigits(selected.length)} of ${groupDigits(rows.length)} tensors pruned (${method}, ${values.sparsity}${opts.scope ? ` per ${opts.scope}` : ''}): ` +
      `${(totals.sparsity * 100).toFixed(2)}% of ${groupDigits(total)} parameters, ${formatBytes(totals.bytesIn)} -> ${formatBytes(totals.bytesOut)}, ${totals.seconds.toFixed(2)} s\n`);
    io.out(`wrote ${outFile}\n`);
    return 0;
  } finally {
    f.close();
    calib?.close();
  }
}
