// SPDX-License-Identifier: MIT
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bitsandbytesEntries, compare, dequantizeSync, openSync, QuantizedTensor, quantizeSync, readBitsandbytes, readCompressedTensor, saveSync,
  specFromConfig, tensor, version, zeros, type QuantSpec, applyMask, maskSync, decompress, readSparse,
} from '../../lib/index';
import { runCli } from '../helpers/cli';
import { repoRoot, tempDir } from '../helpers/paths';

const example = path.join(repoRoot, 'examples/stories260K');
const { dir, cleanup } = tempDir('ws-cli-');
afterAll(cleanup);

const run = runCli;

describe('weightsmith inspect', () => {
  it('--json on the bundled model reports 47 tensors and 260,032 parameters', async () => {
    const r = await run('inspect', '--json', example);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.valid).toBe(true);
    expect(doc.tensorCount).toBe(47);
    expect(doc.parameters).toBe(260_032);
    expect(doc.byDtype).toEqual({ f32: { tensors: 47, parameters: 260_032, bytes: 1_040_128 } });
    expect(doc.metadata.format).toBe('pt');
    expect(doc.tensors[0]).toEqual({ name: 'model.embed_tokens.weight', dtype: 'f32', shape: [512, 64], parameters: 32768, bytes: 131072 });
  });

  it('prints a human table with counts, dtypes, metadata and the validation result', async () => {
    const r = await run('inspect', path.join(example, 'model.safetensors'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('tensors: 47   parameters: 260,032');
    expect(r.out).toMatch(/model\.layers\.4\.mlp\.down_proj\.weight\s+f32\s+\[64, 172\]\s+11,008/);
    expect(r.out).toContain('validation: ok');
  });

  it('an invalid file exits 1 with its code on stderr (and valid:false in --json)', async () => {
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, Buffer.from([1, 2, 3]));
    const r = await run('inspect', bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error ERR_ST_HEADER_TOO_SMALL');
    const j = await run('inspect', '--json', bad);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out)).toMatchObject({ valid: false, error: { code: 'ERR_ST_HEADER_TOO_SMALL' } });
    const missing = await run('inspect', path.join(dir, 'nope.safetensors'));
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('error ENOENT');
  });
});

describe('weightsmith convert', () => {
  it('converts the bundled model folder to bf16, copying config.json (torch_dtype updated) and the tokenizer', async () => {
    const out = path.join(dir, 'bf16');
    const r = await run('convert', example, out, '--dtype', 'bf16');
    expect(r.code).toBe(0);
    expect(r.out).toContain('converted 47 of 47 tensors to bf16');
    expect(fs.readdirSync(out).sort()).toEqual(['LICENSE', 'config.json', 'model.safetensors', 'tok512.bin']);
    const cfg = fs.readFileSync(path.join(out, 'config.json'), 'utf8');
    expect(JSON.parse(cfg).torch_dtype).toBe('bfloat16');
    expect(cfg.replace('bfloat16', 'float32')).toBe(fs.readFileSync(path.join(example, 'config.json'), 'utf8'));
    const src = openSync(example);
    const dst = openSync(out);
    for (const name of src.names()) {
      const want = src.getTensor(name).to('bf16');
      expect(Buffer.from(dst.getTensor(name).bytes()).equals(Buffer.from(want.bytes())), name).toBe(true);
    }
    src.close();
    dst.close();
  });

  it('keeps integer tensors, shards on request, and reports --json', async () => {
    const input = path.join(dir, 'mixed.safetensors');
    saveSync(input, { w: tensor(new Float32Array([1.5, -2, 3e-8, 70000]), [4]), ids: tensor(new Int32Array([1, 2, 3]), [3]) });
    const out = path.join(dir, 'mixed-out', 'mixed-f16.safetensors');
    const r = await run('convert', input, out, '--dtype', 'f16', '--json', '--shard-size', '8B');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ tensors: 2, converted: 1, bytesIn: 28, bytesOut: 20 });
    expect(doc.files.length).toBe(3);
    const f = openSync(path.join(dir, 'mixed-out'));
    expect(f.info('ids').dtype).toBe('i32');
    expect([...(f.getTensor('w').data as Uint16Array)]).toEqual([0x3e00, 0xc000, 0x0001, 0x7c00]);
    f.close();
  });

  it('gives the same bytes with --io pread, and copies pass-through and integer tensors byte for byte', async () => {
    const input = path.join(dir, 'passthrough.safetensors');
    const f4 = zeros([3, 5, 2], 'f4');
    (f4.data as Uint8Array).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const big = tensor(new Float32Array(3_000_001).map((_, i) => Math.sin(i) * 100), [3_000_001]);
    saveSync(input, { f4, big, n: tensor(new BigInt64Array([1n, -2n]), [2]) });
    const outs = [] as Buffer[];
    for (const io of ['mmap', 'pread']) {
      const out = path.join(dir, `pt-${io}.safetensors`);
      expect((await run('convert', input, out, '--dtype', 'f16', '--io', io)).code).toBe(0);
      outs.push(fs.readFileSync(out));
    }
    expect(outs[1].equals(outs[0])).toBe(true);
    const f = openSync(path.join(dir, 'pt-mmap.safetensors'));
    expect(Buffer.from(f.getTensor('f4').bytes()).equals(Buffer.from(f4.bytes()))).toBe(true);
    expect([...(f.getTensor('n').data as BigInt64Array)]).toEqual([1n, -2n]);
    expect(Buffer.from(f.getTensor('big').bytes()).equals(Buffer.from(big.to('f16').bytes()))).toBe(true);
    f.close();
  });

  it('usage errors exit 2; --help and --version exit 0', async () => {
    expect((await run('convert', example, path.join(dir, 'x'))).code).toBe(2);
    expect((await run('convert', example, path.join(dir, 'x'), '--dtype', 'i8')).code).toBe(2);
    expect((await run('convert', example, path.join(dir, 'x'), '--dtype', 'bf16', '--bogus')).code).toBe(2);
    expect((await run('frobnicate')).code).toBe(2);
    expect((await run()).code).toBe(2);
    const h = await run('--help');
    expect(h.code).toBe(0);
    expect(h.out).toContain('inspect <file|dir>');
    expect((await run('convert', '--help')).out).toContain('--dtype');
    const v = await run('--version');
    expect(v.out.trim()).toBe(version);
  });
});

describe('the installed bin', () => {
  it('runs as a process with the documented exit codes', () => {
    const bin = path.join(repoRoot, 'bin/weightsmith.js');
    const distCli = path.join(repoRoot, 'dist/cjs/cli/index.js');
    expect(fs.existsSync(distCli), 'dist/ is built (npm run build:ts)').toBe(true);
    const ok = JSON.parse(execFileSync(process.execPath, [bin, 'inspect', '--json', example], { encoding: 'utf8' }));
    expect(ok.parameters).toBe(260_032);
    expect(spawnSync(process.execPath, [bin, 'nope']).status).toBe(2);
    const empty = path.join(dir, 'empty-folder');
    fs.mkdirSync(empty);
    const bad = spawnSync(process.execPath, [bin, 'inspect', empty], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('ERR_CONFIG');
  });
});

describe('examples', () => {
  it('examples/quickstart.mjs (the README example) runs and prints what the README says', () => {
    const out = execFileSync(process.execPath, [path.join(repoRoot, 'examples/quickstart.mjs')], { encoding: 'utf8' });
    expect(out).toContain('47 pt');
    expect(out).toContain("f32 [ 64, 172 ] 0.1350");
    expect(out).toContain("dtype: 'bf16', shape: [ 64, 172 ], byteLength: 22016");
  });
});

describe('weightsmith quantize (ggml types to GGUF)', () => {
  for (const type of ['q8_0', 'q4_0'] as const) {
    it(`quantizes the bundled model to ${type} GGUF, reads back, and reports rmse per tensor`, async () => {
      const out = path.join(dir, `stories-${type}.gguf`);
      const r = await run('quantize', example, out, '--scheme', 'ggml', '--type', type, '--json');
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.out);
      expect(doc.totals).toMatchObject({ tensors: 47, quantized: 30, parameters: 260_032 });
      const byName = new Map<string, { stored: string; rmse?: number; note?: string; bitsPerWeight: number }>(doc.tensors.map((t: { name: string }) => [t.name, t]));
      const q = byName.get('model.layers.0.self_attn.q_proj.weight')!;
      expect(q.stored).toBe(type);
      expect(q.bitsPerWeight).toBe(type === 'q8_0' ? 8.5 : 4.5);
      expect(q.rmse).toBeGreaterThan(0);
      expect(byName.get('model.layers.0.mlp.down_proj.weight')).toMatchObject({ stored: 'f16', note: expect.stringContaining('172') });
      expect(byName.get('model.embed_tokens.weight')!.stored).toBe('f32');
      expect(byName.get('model.norm.weight')!.stored).toBe('f32');
      const f = openSync(out);
      const src = openSync(example);
      expect(f.getNumber('general.quantization_version')).toBe(2);
      const back = f.get('model.layers.0.self_attn.q_proj.weight') as QuantizedTensor;
      expect(back.spec).toEqual({ scheme: 'ggml', type });
      const want = quantizeSync(src.getTensor('model.layers.0.self_attn.q_proj.weight'), { scheme: 'ggml', type });
      expect(Buffer.from(back.parts.blocks.bytes()).equals(Buffer.from(want.parts.blocks.bytes()))).toBe(true);
      const c = compare(src.getTensor('model.layers.0.self_attn.q_proj.weight'), back);
      expect(c.rmse).toBeCloseTo(q.rmse!, 12);
      f.close();
      src.close();
      const human = await run('quantize', example, path.join(dir, `h-${type}.gguf`), '--type', type);
      expect(human.out).toMatch(new RegExp(`model\\.layers\\.0\\.self_attn\\.q_proj\\.weight\\s+${type}\\s+\\[64, 64\\]`));
      expect(human.out).toContain(`30 of 47 tensors quantized to ${type}`);
    });
  }

  it('--include/--exclude select tensors; other schemes and bad types are refused', async () => {
    const out = path.join(dir, 'sel.gguf');
    const r = await run('quantize', example, out, '--type', 'q8_0', '--include', 'q_proj', '--exclude', 'layers\\.4\\.', '--json');
    expect(JSON.parse(r.out).totals.quantized).toBe(4);
    expect((await run('quantize', example, out, '--type', 'q9_0')).code).toBe(2);
    expect((await run('quantize', example, out, '--scheme', 'ggml', '--type', 'q8_0', '--format', 'safetensors')).code).toBe(2);
    expect((await run('quantize', example, path.join(dir, 'fp4-out'), '--scheme', 'fp4', '--format', 'gguf')).code).toBe(2);
    expect((await run('quantize', example, path.join(dir, 'int-dq'), '--scheme', 'int', '--double-quant')).code).toBe(2);
    expect((await run('quantize', example, out, '--scheme', 'int', '--bits', '4')).code).toBe(2);  // a .gguf output for int
  });

  it('convert reads quantized GGUF (dequantized exactly) and writes GGUF', async () => {
    const q4 = path.join(dir, 'stories-q4_0.gguf');
    const deq = path.join(dir, 'deq.safetensors');
    expect((await run('convert', q4, deq, '--dtype', 'f32')).code).toBe(0);
    const g = openSync(q4);
    const d = openSync(deq);
    const q = g.get('model.layers.2.mlp.up_proj.weight') as QuantizedTensor;
    expect(Array.from(d.getTensor('model.layers.2.mlp.up_proj.weight').data as Float32Array)).toEqual(Array.from(dequantizeSync(q).data as Float32Array));
    g.close();
    d.close();
    const gg = path.join(dir, 'st-f16.gguf');
    expect((await run('convert', example, gg, '--dtype', 'f16')).code).toBe(0);
    const f = openSync(gg);
    expect(f.format).toBe('gguf');
    expect(f.info('model.embed_tokens.weight')).toMatchObject({ dtype: 'f16', shape: [512, 64] });
    f.close();
    expect((await run('convert', example, path.join(dir, 'x.gguf'), '--dtype', 'f8_e4m3')).code).toBe(2);
  });
});

describe('weightsmith quantize --scheme int|fp8 (compressed-tensors)', () => {
  for (const [scheme, extra] of [['int', ['--bits', '4', '--group-size', '64', '--asym']], ['fp8', ['--group-size', 'channel']],
    ['int', ['--bits', '8', '--group-size', 'channel', '--format', 'int-quantized']], ['int', ['--bits', '5', '--group-size', '32', '--asym', '--format', 'int-quantized']],
  ] as [string, string[]][]) {
    it(`${scheme} ${extra.join(' ')}: writes model.safetensors + config.json and every module reads back as the same QuantizedTensor`, async () => {
      const out = path.join(dir, `ct-${scheme}-${extra.join('')}`);
      const plain = extra.includes('int-quantized');
      const r = await run('quantize', example, out, '--scheme', scheme, ...extra, '--json');
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.out);
      expect(doc.totals.quantized).toBe(extra.includes('64') || extra.includes('32') ? 30 : 35);  // 172-wide rows are kept
      const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect(config.model_type).toBe('llama');
      expect(config.quantization_config).toMatchObject({ quant_method: 'compressed-tensors', format: plain ? 'int-quantized' : scheme === 'int' ? 'pack-quantized' : 'float-quantized' });
      const spec = specFromConfig(config.quantization_config);
      const f = openSync(out);
      if (plain) {
        // One int8 per code, the zero points unpacked: [rows, groups].
        expect(f.info('model.layers.1.self_attn.q_proj.weight')).toMatchObject({ dtype: 'i8', shape: [64, 64] });
        expect(f.has('model.layers.1.self_attn.q_proj.weight_packed')).toBe(false);
        if (extra.includes('--asym')) expect(f.info('model.layers.1.self_attn.q_proj.weight_zero_point')).toMatchObject({ dtype: 'i8', shape: [64, 2] });
        const codes = f.getTensor('model.layers.1.self_attn.q_proj.weight').data as Int8Array;
        const bits = Number(extra[1]);
        expect(codes.every((v) => v >= -(2 ** (bits - 1)) && v < 2 ** (bits - 1))).toBe(true);
      }
      const src = openSync(example);
      const name = 'model.layers.1.self_attn.q_proj.weight';
      const back = readCompressedTensor(f, 'model.layers.1.self_attn.q_proj', spec);
      const direct = quantizeSync(src.getTensor(name), spec);
      expect(String(back)).toBe(String(direct));
      for (const [k, t] of Object.entries(direct.parts)) expect(Buffer.from(back.parts[k].bytes()).equals(Buffer.from(t.bytes())), k).toBe(true);
      expect(Array.from(dequantizeSync(back).data as Float32Array)).toEqual(Array.from(dequantizeSync(direct).data as Float32Array));
      expect(f.has('model.norm.weight')).toBe(true);
      f.close();
      src.close();
    });
  }
});

describe('weightsmith quantize --scheme nf4|fp4 (bitsandbytes layout)', () => {
  for (const [scheme, extra] of [['nf4', []], ['fp4', ['--double-quant']]] as const) {
    it(`${scheme} ${extra.join(' ')}: writes the 4-bit state-dict keys and BitsAndBytesConfig; weights read back as the same QuantizedTensor`, async () => {
      const out = path.join(dir, `${scheme}${extra.length ? '-dq' : ''}`);
      const r = await run('quantize', example, out, '--scheme', scheme, '--group-size', '64', ...extra, '--json');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ format: 'bitsandbytes', totals: { quantized: 35 } });
      const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect(config.quantization_config).toMatchObject({
        quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: scheme, bnb_4bit_use_double_quant: extra.length > 0,
      });
      const f = openSync(out);
      const src = openSync(example);
      const name = 'model.layers.2.mlp.down_proj.weight';
      expect(f.info(`${name}.quant_map`)).toMatchObject({ dtype: 'f32', shape: [16] });
      const back = readBitsandbytes(f, name);
      const direct = quantizeSync(src.getTensor(name), { scheme, blockSize: 64, ...(extra.length ? { doubleQuant: true } : {}) });
      expect(back.spec).toEqual(direct.spec);
      expect(back.shape).toEqual([64, 172]);
      expect(Object.keys(back.parts).sort()).toEqual(Object.keys(direct.parts).sort());
      for (const k of Object.keys(direct.parts)) expect(Buffer.from(back.parts[k].bytes()).equals(Buffer.from(direct.parts[k].bytes())), k).toBe(true);
      const state = JSON.parse(Buffer.from(f.getTensor(`${name}.quant_state.bitsandbytes__${scheme}`).bytes()).toString());
      expect(state).toMatchObject({ quant_type: scheme, blocksize: 64, dtype: 'float32', shape: [64, 172] });
      f.close();
      src.close();
    });
  }
});

describe('weightsmith quantize --format safetensors (dequantized weights)', () => {
  for (const [args, spec] of [
    [['--scheme', 'nf4', '--double-quant'], { scheme: 'nf4', doubleQuant: true }],
    [['--scheme', 'ggml', '--type', 'q4_0'], { scheme: 'ggml', type: 'q4_0' }],
    [['--scheme', 'int', '--bits', '3', '--group-size', '32'], { scheme: 'int', bits: 3, groupSize: 32 }],
  ] as const) {
    it(`${args.join(' ')}: every quantized weight equals dequantize(quantize(w)) in its own dtype; the rest is copied`, async () => {
      const out = path.join(dir, `dense-${args[1]}`);
      const r = await run('quantize', example, out, ...args, '--format', 'safetensors', '--json');
      expect(r.code).toBe(0);
      const report = JSON.parse(r.out);
      expect(report.format).toBe('safetensors');
      const f = openSync(out);
      const src = openSync(example);
      try {
        expect(f.names().sort()).toEqual(src.names().sort());
        const name = 'model.layers.1.self_attn.q_proj.weight';
        const expected = dequantizeSync(quantizeSync(src.getTensor(name), spec as QuantSpec), 'f32');
        expect(Buffer.from(f.getTensor(name).bytes()).equals(Buffer.from(expected.bytes()))).toBe(true);
        expect(Buffer.from(f.getTensor('model.norm.weight').bytes()).equals(Buffer.from(src.getTensor('model.norm.weight').bytes()))).toBe(true);
        const row = report.tensors.find((t: { name: string }) => t.name === name);
        expect(row.note).toMatch(/^dequantized from /);
        expect(row.sqnrDb).toBeGreaterThan(5);
        const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
        expect(config.quantization_config).toBeUndefined();
      } finally {
        f.close();
        src.close();
      }
    });
  }

  it('refuses a format the scheme does not write', async () => {
    expect((await run('quantize', example, path.join(dir, 'x'), '--scheme', 'nf4', '--format', 'compressed-tensors')).code).toBe(2);
    expect((await run('quantize', example, path.join(dir, 'x.gguf'), '--scheme', 'int', '--format', 'safetensors')).code).toBe(2);
  });
});

describe('weightsmith prune', () => {
  const linear = (n: string) => n.endsWith('.weight') && !/norm|embed|lm_head/.test(n);

  it('--method magnitude --sparsity 2:4 prunes every linear weight to exactly 50%; the output equals applyMask(mask(w))', async () => {
    const out = path.join(dir, 'pruned-24');
    const r = await run('prune', example, out, '--method', 'magnitude', '--sparsity', '2:4', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    const pruned = report.tensors.filter((t: { pruned: boolean }) => t.pruned);
    expect(pruned).toHaveLength(35);
    expect(pruned.every((t: { sparsity: number; relError: number }) => t.sparsity === 0.5 && t.relError > 0 && t.relError < 1)).toBe(true);
    expect(report.totals.sparsity).toBe(0.5);
    const f = openSync(out);
    const src = openSync(example);
    try {
      const name = 'model.layers.3.mlp.down_proj.weight';
      const w = src.getTensor(name);
      expect(Buffer.from(f.getTensor(name).bytes()).equals(Buffer.from(applyMask(w, maskSync(w, { method: 'magnitude', pattern: '2:4' })).bytes()))).toBe(true);
      expect(Buffer.from(f.getTensor('model.norm.weight').bytes()).equals(Buffer.from(src.getTensor('model.norm.weight').bytes()))).toBe(true);
      expect(fs.existsSync(path.join(out, 'config.json'))).toBe(true);
      expect(fs.existsSync(path.join(out, 'tok512.bin'))).toBe(true);
    } finally {
      f.close();
      src.close();
    }
  });

  for (const [sparsity, format] of [['2:4', 'sparse-24-bitmask'], ['0.6', 'sparse-bitmask']] as const) {
    it(`--compress ${format}: compressed-tensors keys and sparsity_config; decompressing gives the pruned weights`, async () => {
      const out = path.join(dir, `pruned-${format}`);
      const r = await run('prune', example, out, '--method', 'magnitude', '--sparsity', sparsity, '--compress', format);
      expect(r.code).toBe(0);
      const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect(config.quantization_config.sparsity_config).toMatchObject({ format, sparsity_structure: sparsity === '2:4' ? '2:4' : 'unstructured' });
      expect(config.quantization_config.sparsity_config.targets).toHaveLength(35);
      const f = openSync(out);
      const src = openSync(example);
      try {
        const name = 'model.layers.0.self_attn.q_proj.weight';
        expect(f.has(name)).toBe(false);
        const w = src.getTensor(name);
        const opts = sparsity === '2:4' ? { method: 'magnitude' as const, pattern: '2:4' } : { method: 'magnitude' as const, sparsity: 0.6 };
        const expected = applyMask(w, maskSync(w, opts));
        expect(Buffer.from(decompress(readSparse(f, 'model.layers.0.self_attn.q_proj')).bytes()).equals(Buffer.from(expected.bytes()))).toBe(true);
      } finally {
        f.close();
        src.close();
      }
    });
  }

  it('--method wanda uses the input norms of a calibration file, and names a missing module', async () => {
    const src = openSync(example);
    const stats: Record<string, ReturnType<typeof tensor>> = {};
    for (const n of src.names().filter(linear)) {
      const cols = src.info(n).shape[1];
      stats[`${n.slice(0, -'.weight'.length)}.input_norms`] = tensor(Float32Array.from({ length: cols }, (_v, j) => 1 + (j % 7)), [cols]);
    }
    const calib = path.join(dir, 'stats.safetensors');
    saveSync(calib, stats);
    const out = path.join(dir, 'pruned-wanda');
    const r = await run('prune', example, out, '--method', 'wanda', '--sparsity', '0.5', '--calib', calib, '--json');
    expect(r.code).toBe(0);
    const f = openSync(out);
    try {
      const name = 'model.layers.1.mlp.up_proj.weight';
      const w = src.getTensor(name);
      const m = maskSync(w, { method: 'wanda', sparsity: 0.5, inputNorms: stats['model.layers.1.mlp.up_proj.input_norms'] });
      expect(Buffer.from(f.getTensor(name).bytes()).equals(Buffer.from(applyMask(w, m).bytes()))).toBe(true);
    } finally {
      f.close();
    }
    const partial = path.join(dir, 'stats-partial.safetensors');
    const { ['model.layers.2.mlp.gate_proj.input_norms']: _drop, ...rest } = stats;
    saveSync(partial, rest);
    const bad = await run('prune', example, path.join(dir, 'pruned-bad'), '--method', 'wanda', '--sparsity', '0.5', '--calib', partial);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('model.layers.2.mlp.gate_proj.input_norms');
    expect(fs.existsSync(path.join(dir, 'pruned-bad', 'model.safetensors'))).toBe(false);
    src.close();
  });

  it('refuses bad arguments with usage errors', async () => {
    const out = path.join(dir, 'pruned-x');
    for (const args of [['--method', 'wanda', '--sparsity', '0.5'], ['--sparsity', '1.0'], ['--sparsity', '4:4'], ['--sparsity', '0.5', '--compress', 'sparse-24-bitmask'],
      ['--method', 'obs', '--sparsity', '0.5'], ['--sparsity', '2:4', '--scope', 'tensor'], ['--sparsity', 'half']]) {
      expect((await run('prune', example, out, ...args)).code, args.join(' ')).toBe(2);
    }
    const r = await run('prune', example, out, '--sparsity', '3:7');
    expect(r.code).toBe(1);
    expect(r.err).toContain('ERR_SHAPE');
  });
});
