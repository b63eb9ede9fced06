// SPDX-License-Identifier: MIT
/** `weightsmith lowrank` and `weightsmith extract-lora`. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomicSync } from '../atomic';
import { moduleOf } from '../compressed-tensors';
import { dtypeInfo, DType } from '../dtype';
import { open, WeightFile } from '../file';
import { extractLora, lowRank, LowRankOptions } from '../lowrank';
import { Tensor } from '../tensor';
import { createWriter, PlanEntry } from '../writer';
import { copySideFiles, NOT_LINEAR, parseCommand, regexFlag, safetensorsOutput, UsageError, type Io } from './args';
import { formatBytes, groupDigits, Progress, table } from './format';

const RANK_OPTIONS = `--rank R keeps R singular triplets (capped at min(rows, cols)); --energy E keeps the fewest whose squared
singular values reach the fraction E of the total (0 < E <= 1). The SVD is the exact thin one; --randomized uses
the randomized SVD (Halko-Martinsson-Tropp: --oversample 10, --power-iters 2, --seed 0), much faster for ranks
far below the matrix size, and needs --rank.`;

export const LOWRANK_HELP = `Usage: weightsmith lowrank <in> <out-dir> --rank R | --energy E [--randomized [--oversample P] [--power-iters Q] [--seed S]]
                         [--include RE] [--exclude RE] [--force] [--io auto|mmap|pread] [--json]

Replaces 2-D weights of <in> (safetensors file, index or folder) by low-rank factors, tensor by tensor, and writes
<out-dir>/model.safetensors (or <out> ending in .safetensors) with the input folder's other files. A weight
<module>.weight [out, in] becomes <module>.up [out, r] and <module>.down [r, in] with weight ~= up @ down, the
scale split as sqrt(S) on both factors, stored in the weight's dtype; other tensors are copied. The metadata key
weightsmith.lowrank lists the rank of every factored module.

${RANK_OPTIONS}

By default the 2-D .weight tensors except embeddings, norms and lm_head are factored; --include/--exclude select
by regular expression. A weight whose factors would not be smaller than itself is kept as it is (the report says
so) unless --force. The report lists, per tensor, the rank, the relative error ||W - up @ down|| / ||W|| measured
on the product, and the stored size; --json prints it as one JSON document.`;

export const EXTRACT_LORA_HELP = `Usage: weightsmith extract-lora --base <dir> --tuned <dir> <out-dir> --rank R | --energy E [--sv-epsilon X]
                              [--randomized [--oversample P] [--power-iters Q] [--seed S]] [--embed-lora]
                              [--no-distribute-scale] [--include RE] [--exclude RE] [--json]

Extracts a PEFT LoRA adapter from the difference of a fine-tuned model and its base, as mergekit's extract_lora
does: for every linear weight that differs, the SVD of delta = tuned - base (f32), a rank of min(R, number of
singular values > X) (X = --sv-epsilon, default 0), and lora_A = sqrt(S) Vt [r, in], lora_B = U sqrt(S) [out, r]
(--no-distribute-scale: lora_A = S Vt, lora_B = U), stored in the tuned weight's dtype.

${RANK_OPTIONS}

Writes <out-dir>/adapter_model.safetensors with keys base_model.model.<module>.lora_A.weight / .lora_B.weight
(embeddings with --embed-lora: .lora_embedding_A / .lora_embedding_B of the transposed delta) and
<out-dir>/adapter_config.json with r = lora_alpha = the largest rank, target_modules, and rank_pattern /
alpha_pattern for modules of smaller rank. Linear weights are the 2-D .weight tensors other than embeddings and
norms; --include/--exclude select by regular expression. Weights equal in both models are skipped; 1-D tensors
(norms, biases) that differ are listed in the report, since a LoRA adapter cannot carry them.`;

const RANK_FLAGS = {
  rank: { type: 'string' }, energy: { type: 'string' }, randomized: { type: 'boolean' }, oversample: { type: 'string' },
  'power-iters': { type: 'string' }, seed: { type: 'string' }, include: { type: 'string' }, exclude: { type: 'string' }, json: { type: 'boolean' },
} as const;

function integerFlag(value: string | undefined, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(v) || v < min || v > max) throw new UsageError(`${flag} must be an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}, not '${value}'`);
  return v;
}

/** The options of lowRank / extractLora from the shared flags. */
function rankOptions(values: { [k: string]: string | boolean | undefined }): Omit<LowRankOptions, 'signal'> {
  const str = (k: string) => values[k] as string | undefined;
  if ((str('rank') === undefined) === (str('energy') === undefined)) throw new UsageError('give exactly one of --rank and --energy');
  const o: Omit<LowRankOptions, 'signal'> = {};
  if (str('rank') !== undefined) o.rank = integerFlag(str('rank'), '--rank', 1);
  if (str('energy') !== undefined) {
    const e = Number(str('energy'));
    if (!/^\d*\.?\d+(e-?\d+)?$/i.test(str('energy')!) || !(e > 0 && e <= 1)) throw new UsageError(`--energy must be a fraction in (0, 1], not '${str('energy')}'`);
    o.energy = e;
  }
  if (values.randomized) {
    if (o.energy !== undefined) throw new UsageError('--randomized needs --rank (--energy needs the full spectrum)');
    o.method = 'randomized';
    const os = integerFlag(str('oversample'), '--oversample', 0);
    const pi = integerFlag(str('power-iters'), '--power-iters', 0, 1000);
    const sd = integerFlag(str('seed'), '--seed', 0);
    if (os !== undefined) o.oversample = os;
    if (pi !== undefined) o.powerIters = pi;
    if (sd !== undefined) o.seed = sd;
  } else if (['oversample', 'power-iters', 'seed'].some((k) => values[k] !== undefined)) {
    throw new UsageError('--oversample, --power-iters and --seed apply to --randomized');
  }
  return o;
}

/**
 * Factors computed before the output's plan is known (their rank depends on the spectrum) wait here: an unlinked-
 * on-close scratch file in the output folder, so that memory holds one tensor's factors at a time.
 */
class Spill {
  private readonly file: string;
  private fd: number;
  private end = 0;
  private readonly entries = new Map<string, { offset: number; shape: number[] }>();

  constructor(dir: string) {
    this.file = path.join(dir, `.weightsmith-spill-${process.pid}-${Date.now().toString(36)}.tmp`);
    this.fd = fs.openSync(this.file, 'wx+', 0o600);
  }

  put(key: string, t: Tensor): void {
    const b = t.bytes();
    let done = 0;
    while (done < b.length) done += fs.writeSync(this.fd, b, done, b.length - done, this.end + done);
    this.entries.set(key, { offset: this.end, shape: [...t.shape] });
    this.end += b.length;
  }

  take(key: string): Tensor {
    const e = this.entries.get(key)!;
    const n = e.shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    const view = new Uint8Array(data.buffer);
    let done = 0;
    while (done < view.length) {
      const r = fs.readSync(this.fd, view, done, view.length - done, e.offset + done);
      if (r === 0) throw Object.assign(new Error('the scratch file of factors was truncated'), { code: 'ERR_INTERNAL' });
      done += r;
    }
    return new Tensor('f32', e.shape, data);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    fs.rmSync(this.file, { force: true });
  }
}

const isFloat = (f: WeightFile, name: string) => {
  const info = f.info(name);
  return Boolean(dtypeInfo(info.dtype)?.float) && !info.ggmlType;
};

interface LowRankRow {
  name: string;
  shape: number[];
  dtype: string;
  factored: boolean;
  rank?: number;
  relError?: number;
  note?: string;
  bytesIn: number;
  bytesOut: number;
}

export async function lowrankCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...RANK_FLAGS, force: { type: 'boolean' }, io: { type: 'string' } });
  if (positionals.length !== 2) throw new UsageError('expected <in> and <out>');
  const options = rankOptions(values);
  const ioMode = values.io ?? 'auto';
  if (!['auto', 'mmap', 'pread'].includes(ioMode)) throw new UsageError(`--io must be auto, mmap or pread, not '${ioMode}'`);
  const include = regexFlag(values.include, '--include');
  const exclude = regexFlag(values.exclude, '--exclude');
  const [input, output] = positionals;
  if (output.endsWith('.gguf')) throw new UsageError('lowrank writes safetensors (a folder or a .safetensors file)');
  const { outDir, outFile } = safetensorsOutput(output);

  const started = Date.now();
  const f = await open(input, { io: ioMode as 'auto' });
  let spill: Spill | undefined;
  try {
    const names = f.names();
    const selected = new Set(names.filter((name) => {
      const info = f.info(name);
      if (!isFloat(f, name) || info.shape.length !== 2 || exclude?.test(name)) return false;
      return include ? include.test(name) : !NOT_LINEAR.test(name) && name.endsWith('.weight');
    }));
    for (const name of selected) {
      const up = `${moduleOf(name)}.up`, down = `${moduleOf(name)}.down`;
      if (f.has(up) || f.has(down)) throw Object.assign(new Error(`'${name}': the input already has a tensor named '${f.has(up) ? up : down}'`), { code: 'ERR_SHAPE' });
    }
    fs.mkdirSync(path.resolve(outDir), { recursive: true });
    spill = new Spill(outDir);
    const progress = new Progress(names.length, 'lowrank');
    const rows = new Map<string, LowRankRow>();
    // Pass 1: factor every selected weight; factors go to the scratch file.
    let done = 0;
    try {
      for (const name of names) {
        const info = f.info(name);
        const row: LowRankRow = { name, shape: [...info.shape], dtype: info.dtype, factored: false, bytesIn: info.byteLength, bytesOut: info.byteLength };
        if (selected.has(name)) {
          const w = f.getTensor(name);
          const r = await lowRank(w, options);
          const [m, n] = info.shape;
          const size = dtypeInfo(info.dtype)!.bits / 8;
          const factorBytes = r.rank * (m + n) * size;
          row.rank = r.rank;
          row.relError = r.relError;
          if (factorBytes < info.byteLength || values.force) {
            row.factored = true;
            row.bytesOut = factorBytes;
            spill.put(`${name}:up`, r.up);
            spill.put(`${name}:down`, r.down);
          } else {
            row.note = `kept: rank ${r.rank} factors would take ${formatBytes(factorBytes)}`;
          }
        }
        rows.set(name, row);
        progress.update(++done, name);
      }
    } finally {
      progress.done();
    }
    // Pass 2: the output, in the input's order.
    const plan: PlanEntry[] = [];
    for (const name of names) {
      const row = rows.get(name)!;
      const dtype = f.info(name).dtype as DType;
      if (!row.factored) plan.push({ name, dtype, shape: row.shape });
      else plan.push({ name: `${moduleOf(name)}.up`, dtype, shape: [row.shape[0], row.rank!] }, { name: `${moduleOf(name)}.down`, dtype, shape: [row.rank!, row.shape[1]] });
    }
    const metadata: Record<string, string> = Object.fromEntries(Object.entries(f.metadata).filter((kv): kv is [string, string] => typeof kv[1] === 'string'));
    metadata['weightsmith.lowrank'] = JSON.stringify(Object.fromEntries([...rows.values()].filter((r) => r.factored).map((r) => [moduleOf(r.name), r.rank])));
    const w = createWriter(outFile, { plan, metadata });
    try {
      for (const name of names) {
        const row = rows.get(name)!;
        if (!row.factored) {
          await w.write(name, f.getTensor(name));
          continue;
        }
        for (const side of ['up', 'down'] as const) {
          const t = spill.take(`${name}:${side}`);
          await w.write(`${moduleOf(name)}.${side}`, row.dtype === 'f32' ? t : t.to(row.dtype as DType));
        }
      }
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    }
    copySideFiles(input, outDir);
    const list = [...rows.values()];
    const totals = {
      tensors: list.length, factored: list.filter((r) => r.factored).length, selected: selected.size,
      bytesIn: list.reduce((a, r) => a + r.bytesIn, 0), bytesOut: list.reduce((a, r) => a + r.bytesOut, 0), seconds: (Date.now() - started) / 1000,
    };
    if (values.json) {
      io.out(`${JSON.stringify({ input, output: outFile, options, tensors: list, totals }, null, 2)}\n`);
      return 0;
    }
    const fmt = (x: number | undefined, d: number) => (x === undefined ? '-' : x.toPrecision(d));
    io.out(`${table([['name', 'shape', 'rank', 'rel. error', 'size', 'stored'],
      ...list.map((r) => [r.name, `[${r.shape.join(', ')}]`, r.rank === undefined ? '-' : String(r.rank), fmt(r.relError, 3),
        r.bytesIn === r.bytesOut ? formatBytes(r.bytesIn) : `${formatBytes(r.bytesIn)} -> ${formatBytes(r.bytesOut)}`, r.factored ? 'up, down' : (r.note ?? 'as is')])],
    [false, false, true, true, true, false])}\n\n`);
    io.out(`${totals.factored} of ${groupDigits(selected.size)} selected tensors factored (${options.rank !== undefined ? `rank ${options.rank}` : `energy ${options.energy}`}` +
      `${options.method === 'randomized' ? ', randomized' : ''}): ${formatBytes(totals.bytesIn)} -> ${formatBytes(totals.bytesOut)}, ${totals.seconds.toFixed(2)} s\n`);
    io.out(`wrote ${outFile}\n`);
    return 0;
  } finally {
    spill?.close();
    f.close();
  }
}

interface LoraRow {
  module: string;
  tensor: string;
  shape: number[];
  embedding: boolean;
  rank: number;
  relError: number;
  bytes: number;
}

export async function extractLoraCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    ...RANK_FLAGS, base: { type: 'string' }, tuned: { type: 'string' }, 'sv-epsilon': { type: 'string' },
    'embed-lora': { type: 'boolean' }, 'no-distribute-scale': { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('expected one <out-dir>');
  if (values.base === undefined || values.tuned === undefined) throw new UsageError('--base <dir> and --tuned <dir> are required');
  const options: Parameters<typeof extractLora>[2] = { ...rankOptions(values), distributeScale: !values['no-distribute-scale'] };
  if (values['sv-epsilon'] !== undefined) {
    const e = Number(values['sv-epsilon']);
    if (!Number.isFinite(e) || e < 0 || values['sv-epsilon'].trim() === '') throw new UsageError(`--sv-epsilon must be a number >= 0, not '${values['sv-epsilon']}'`);
    options.svEpsilon = e;
  }
  const include = regexFlag(values.include, '--include');
  const exclude = regexFlag(values.exclude, '--exclude');
  const outDir = positionals[0];
  const started = Date.now();
  const base = await open(values.base);
  let tuned: WeightFile | undefined;
  let spill: Spill | undefined;
  try {
    tuned = await open(values.tuned);
    const isEmbedding = (name: string) => /embed|token_embd|wte\b/i.test(name);
    const linear = (file: WeightFile, name: string) => {
      const info = file.info(name);
      return isFloat(file, name) && info.shape.length === 2 && name.endsWith('.weight') && !/norm/i.test(name);
    };
    const candidates = tuned.names().filter((name) => {
      if (!linear(tuned!, name) || exclude?.test(name)) return false;
      if (include && !include.test(name)) return false;
      return !isEmbedding(name) || Boolean(values['embed-lora']);
    });
    for (const name of candidates) {
      if (!base.has(name)) throw Object.assign(new Error(`'${name}' is in the tuned model but not in the base model`), { code: 'ERR_TENSOR_NOT_FOUND' });
      const a = base.info(name).shape, b = tuned.info(name).shape;
      if (a.join() !== b.join()) throw Object.assign(new Error(`'${name}': base [${a.join(', ')}] and tuned [${b.join(', ')}] differ in shape`), { code: 'ERR_SHAPE' });
    }
    fs.mkdirSync(path.resolve(outDir), { recursive: true });
    spill = new Spill(outDir);
    const rows: LoraRow[] = [];
    const unchanged: string[] = [];
    const progress = new Progress(candidates.length, 'extract-lora');
    try {
      for (const [i, name] of candidates.entries()) {
        const embedding = isEmbedding(name);
        let b = base.getTensor(name), t = tuned.getTensor(name);
        if (embedding) {  // PEFT's embedding LoRA factors the transposed delta: [dim, vocab]
          b = transpose(b);
          t = transpose(t);
        }
        const r = await extractLora(b, t, options);
        if (r.rank === 0) {
          unchanged.push(name);
        } else {
          spill.put(`${name}:A`, r.loraA);
          spill.put(`${name}:B`, r.loraB);
          const size = dtypeInfo(tuned.info(name).dtype)!.bits / 8;
          rows.push({ module: moduleOf(name), tensor: name, shape: [...tuned.info(name).shape], embedding, rank: r.rank, relError: r.relError,
            bytes: (r.loraA.numel + r.loraB.numel) * size });
        }
        progress.update(i + 1, name);
      }
    } finally {
      progress.done();
    }
    if (rows.length === 0) throw Object.assign(new Error('no linear weight differs between the base and the tuned model: there is nothing to extract'), { code: 'ERR_CONFIG' });
    // 1-D tensors (norms, biases) and excluded weights that differ: reported, not carried.
    const differing: string[] = [];
    for (const name of tuned.names()) {
      if (candidates.includes(name) || !base.has(name) || !isFloat(tuned, name)) continue;
      const a = base.getTensor(name), b = tuned.getTensor(name);
      if (a.shape.join() === b.shape.join() && !Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()))) differing.push(name);
    }
    const key = (row: LoraRow, side: 'A' | 'B') => `base_model.model.${row.module}.${row.embedding ? `lora_embedding_${side}` : `lora_${side}.weight`}`;
    const plan: PlanEntry[] = [];
    for (const row of rows) {
      const dtype = tuned.info(row.tensor).dtype as DType;
      const [out, inn] = row.embedding ? [row.shape[1], row.shape[0]] : row.shape;
      plan.push({ name: key(row, 'A'), dtype, shape: [row.rank, inn] }, { name: key(row, 'B'), dtype, shape: [out, row.rank] });
    }
    const file = path.join(outDir, 'adapter_model.safetensors');
    const w = createWriter(file, { plan, metadata: { format: 'pt' } });
    try {
      for (const row of rows) {
        const dtype = tuned.info(row.tensor).dtype as DType;
        for (const side of ['A', 'B'] as const) {
          const t = spill.take(`${row.tensor}:${side}`);
          await w.write(key(row, side), dtype === 'f32' ? t : t.to(dtype));
        }
      }
      await w.close();
    } catch (err) {
      w.abort();
      throw err;
    }
    // adapter_config.json: short module names when they name exactly the extracted modules.
    const maxRank = Math.max(...rows.map((r) => r.rank));
    const allLinear = tuned.names().filter((n) => linear(tuned!, n)).map(moduleOf);
    const extracted = new Set(rows.map((r) => r.module));
    const short = (m: string) => m.slice(m.lastIndexOf('.') + 1);
    const shortNames = [...new Set(rows.map((r) => short(r.module)))].sort();
    const shortExact = allLinear.every((m) => extracted.has(m) || !shortNames.includes(short(m)));
    const targetModules = shortExact ? shortNames : [...extracted].sort();
    const pattern = Object.fromEntries(rows.filter((r) => r.rank < maxRank).map((r) => [r.module, r.rank]));
    let baseName = path.resolve(values.base);
    const baseConfig = path.join(values.base, 'config.json');
    if (fs.existsSync(baseConfig)) {
      const c = JSON.parse(fs.readFileSync(baseConfig, 'utf8')) as { _name_or_path?: unknown };
      if (typeof c._name_or_path === 'string' && c._name_or_path !== '') baseName = c._name_or_path;
    }
    const config = {
      alpha_pattern: pattern, auto_mapping: null, base_model_name_or_path: baseName, bias: 'none', fan_in_fan_out: false,
      inference_mode: true, init_lora_weights: true, layers_pattern: null, layers_to_transform: null, lora_alpha: maxRank,
      lora_dropout: 0.0, modules_to_save: null, peft_type: 'LORA', r: maxRank, rank_pattern: pattern, revision: null,
      target_modules: targetModules, task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false,
    };
    writeFileAtomicSync(path.join(outDir, 'adapter_config.json'), Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
    const seconds = (Date.now() - started) / 1000;
    const bytes = rows.reduce((a, r) => a + r.bytes, 0);
    if (values.json) {
      io.out(`${JSON.stringify({ base: values.base, tuned: values.tuned, output: outDir, options, r: maxRank, modules: rows, unchanged, notCarried: differing, bytes, seconds }, null, 2)}\n`);
      return 0;
    }
    io.out(`${table([['module', 'shape', 'rank', 'rel. error', 'size'],
      ...rows.map((r) => [r.module + (r.embedding ? ' (embedding)' : ''), `[${r.shape.join(', ')}]`, String(r.rank), r.relError.toPrecision(3), formatBytes(r.bytes)])],
    [false, false, true, true, true])}\n\n`);
    io.out(`${rows.length} modules extracted (r = lora_alpha = ${maxRank}${Object.keys(pattern).length ? `, ${Object.keys(pattern).length} with a smaller rank in rank_pattern` : ''}), ` +
      `${unchanged.length} unchanged, ${formatBytes(bytes)}, ${seconds.toFixed(2)} s\n`);
    if (differing.length) io.out(`not carried by the adapter (they differ too): ${differing.join(', ')}\n`);
    io.out(`wrote ${file} and adapter_config.json\n`);
    return 0;
  } finally {
    spill?.close();
    tuned?.close();
    base.close();
  }
}

function transpose(t: Tensor): Tensor {
  const x = t.dtype === 'f32' ? t : t.to('f32');
  const [r, c] = x.shape;
  const src = x.data as Float32Array;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j];
  return new Tensor('f32', [c, r], out);
}
