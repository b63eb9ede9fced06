// SPDX-License-Identifier: MIT
/** `weightsmith inspect`. @internal */
import * as fs from 'node:fs';
import { open, WeightFile } from '../file';
import { UsageError, parseCommand, type Io } from './args';
import { formatBytes, groupDigits, table } from './format';

export const INSPECT_HELP = `Usage: weightsmith inspect <file|dir> [--json] [--io auto|mmap|pread]

Lists the tensors of a safetensors file, a sharded checkpoint (index JSON) or a model folder: dtypes,
shapes, parameter counts by dtype, byte sizes, metadata, and the result of strict validation of every
header. Reads only the headers. --json prints one JSON document to stdout.`;

interface Summary {
  path: string;
  format: string;
  valid: boolean;
  files: { path: string; bytes: number }[];
  tensorCount: number;
  parameters: number;
  bytes: number;
  byDtype: Record<string, { tensors: number; parameters: number; bytes: number }>;
  metadata: Record<string, string>;
  metadataTypes?: Record<string, string>;
  tensors: { name: string; dtype: string; shape: number[]; parameters: number; bytes: number }[];
}

/** A metadata value as text: scalars as they are, arrays summarized (tokenizer vocabularies are long). */
function describeValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  const arr = v as ArrayLike<unknown>;
  const head = Array.from({ length: Math.min(arr.length, 8) }, (_, i) => String(arr[i])).join(', ');
  return `[${head}${arr.length > 8 ? `, ... (${arr.length} items)` : ''}]`;
}

function summarize(p: string, f: WeightFile): Summary {
  const byDtype: Summary['byDtype'] = {};
  let parameters = 0;
  let bytes = 0;
  const tensors = f.names().map((name) => {
    const info = f.info(name);
    const params = info.shape.reduce((a, b) => a * b, 1);
    parameters += params;
    bytes += info.byteLength;
    const label = info.ggmlType ?? info.dtype;  // GGUF: the ggml type (q4_0...), else the dtype
    const d = (byDtype[label] ??= { tensors: 0, parameters: 0, bytes: 0 });
    d.tensors++;
    d.parameters += params;
    d.bytes += info.byteLength;
    return { name, dtype: label, shape: info.shape, parameters: params, bytes: info.byteLength };
  });
  return {
    path: p,
    format: f.format,
    valid: true,
    files: f.files.map((file) => ({ path: file, bytes: fs.statSync(file).size })),
    tensorCount: tensors.length,
    parameters,
    bytes,
    byDtype,
    metadata: Object.fromEntries(Object.entries(f.metadata).map(([k, v]) => [k, describeValue(v)])),
    ...(f.format === 'gguf' ? { metadataTypes: { ...f.metadataTypes } } : {}),
    tensors,
  };
}

export async function inspectCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { json: { type: 'boolean' }, io: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('expected exactly one <file|dir>');
  const io_ = values.io ?? 'auto';
  if (!['auto', 'mmap', 'pread'].includes(io_)) throw new UsageError(`--io must be auto, mmap or pread, not '${io_}'`);
  const p = positionals[0];
  let f: WeightFile;
  try {
    f = await open(p, { io: io_ as 'auto' });
  } catch (err) {
    if (values.json) {
      const e = err as { code?: string; message: string; tensor?: string };
      io.out(`${JSON.stringify({ path: p, valid: false, error: { code: e.code ?? 'ERR_INTERNAL', message: e.message, tensor: e.tensor } }, null, 2)}\n`);
    }
    throw err;
  }
  try {
    const s = summarize(p, f);
    if (values.json) {
      io.out(`${JSON.stringify(s, null, 2)}\n`);
      return 0;
    }
    const lines: string[] = [];
    lines.push(`${p}`);
    lines.push(`format: ${s.format}   files: ${s.files.length}   size on disk: ${formatBytes(s.files.reduce((a, b) => a + b.bytes, 0))}`);
    lines.push(`tensors: ${groupDigits(s.tensorCount)}   parameters: ${groupDigits(s.parameters)}   data: ${formatBytes(s.bytes)}`);
    lines.push('');
    lines.push(table([['dtype', 'tensors', 'parameters', 'bytes'],
      ...Object.entries(s.byDtype).map(([d, v]) => [d, groupDigits(v.tensors), groupDigits(v.parameters), formatBytes(v.bytes)])], [false, true, true, true]));
    if (Object.keys(s.metadata).length > 0) {
      lines.push('');
      lines.push('metadata:');
      for (const [k, v] of Object.entries(s.metadata)) lines.push(`  ${k}: ${v.length > 200 ? `${v.slice(0, 200)}...` : v}`);
    }
    lines.push('');
    lines.push(table([['name', 'dtype', 'shape', 'parameters', 'bytes'],
      ...s.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, groupDigits(t.parameters), formatBytes(t.bytes)])], [false, false, false, true, true]));
    lines.push('');
    lines.push(`validation: ok (headers strictly valid, data fully covered${s.files.length > 1 ? ', shards consistent with the index' : ''})`);
    io.out(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    f.close();
  }
}
