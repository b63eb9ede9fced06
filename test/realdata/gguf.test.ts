// SPDX-License-Identifier: MIT
// Real GGUF files nobody in this project wrote: Karpathy's stories260K converted to GGUF v3 by llama.cpp's
// tools (../shared/realdata/stories260K/gguf/, see its README), in f32 and in F16. They must open with mmap and
// pread, their metadata must read through the typed accessors (and refuse the wrong element type), the
// vocabulary must equal llama2.c's own tokenizer file, and every tensor must equal the llama2.c-layout
// safetensors model: bit for bit in the f32 file, and in the F16 file bit for bit against our f32 -> f16
// conversion (round to nearest even, what ggml's converter does) for the f16 tensors, exactly for those kept
// in f32 (the 1-D norms).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, openSync, Tensor, WeightsmithError } from '../../lib/index';
import type { WeightFile } from '../../lib/index';

const REALDATA = path.resolve(__dirname, '../../../shared/realdata');
if (!fs.existsSync(path.join(REALDATA, 'SHA256SUMS'))) {
  throw new Error(`The real-data folder ${REALDATA} is missing: these tests need ../shared/realdata next to the ` +
    'repository (see ../shared/realdata/README.md). They are not skipped on purpose.');
}
const STORIES = path.join(REALDATA, 'stories260K');
const GGUF_F32 = path.join(STORIES, 'gguf/stories260K-f32.gguf');
const GGUF_F16 = path.join(STORIES, 'gguf/stories260K-F16.gguf');
const REFERENCE = path.join(STORIES, 'llama2c-native.safetensors');
const TOKENIZER = path.join(STORIES, 'tok512.bin');

const N_LAYERS = 5;

/** GGUF tensor name -> llama2.c tensor name (w1 = gate, w2 = down, w3 = up). */
function referenceName(gguf: string, refNames: Set<string>): string {
  if (gguf === 'token_embd.weight') return 'tok_embeddings.weight';
  if (gguf === 'output_norm.weight') return 'norm.weight';
  // stories260K ties the output projection to the embedding: no output.weight in the llama2.c file.
  if (gguf === 'output.weight') return refNames.has('output.weight') ? 'output.weight' : 'tok_embeddings.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(gguf);
  if (!m) throw new Error(`unexpected GGUF tensor name '${gguf}'`);
  const part: Record<string, string> = {
    attn_norm: 'attention_norm', attn_q: 'attention.wq', attn_k: 'attention.wk', attn_v: 'attention.wv',
    attn_output: 'attention.wo', ffn_norm: 'ffn_norm', ffn_gate: 'feed_forward.w1', ffn_down: 'feed_forward.w2',
    ffn_up: 'feed_forward.w3',
  };
  if (!part[m[2]]) throw new Error(`unexpected GGUF tensor name '${gguf}'`);
  return `layers.${m[1]}.${part[m[2]]}.weight`;
}

/** The 48 GGUF names llama.cpp writes for this model. */
function expectedGgufNames(): string[] {
  const names = ['token_embd.weight', 'output_norm.weight', 'output.weight'];
  for (let i = 0; i < N_LAYERS; i++) {
    for (const p of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_down', 'ffn_up'])
      names.push(`blk.${i}.${p}.weight`);
  }
  return names.sort();
}

/** llama2.c's tokenizer file: i32 max length, then per token f32 score, i32 length, bytes. */
function readTok512(): { tokens: string[]; scores: number[] } {
  const b = fs.readFileSync(TOKENIZER);
  const tokens: string[] = [];
  const scores: number[] = [];
  for (let o = 4; o < b.length;) {
    scores.push(b.readFloatLE(o));
    const n = b.readInt32LE(o + 4);
    tokens.push(b.subarray(o + 8, o + 8 + n).toString('utf8'));
    o += 8 + n;
  }
  return { tokens, scores };
}

const bytes = (t: Tensor): Buffer => Buffer.from(t.bytes());

let ref: WeightFile;
let refNames: Set<string>;
beforeAll(() => {
  ref = openSync(REFERENCE);
  refNames = new Set(ref.names());
});
afterAll(() => ref?.close());

const MODES: { label: string; sync: boolean; io: 'mmap' | 'pread' | 'auto' }[] = [
  { label: 'openSync io:mmap', sync: true, io: 'mmap' },
  { label: 'openSync io:pread', sync: true, io: 'pread' },
  { label: 'open io:mmap', sync: false, io: 'mmap' },
  { label: 'open io:pread', sync: false, io: 'pread' },
  { label: 'open io:auto', sync: false, io: 'auto' },
];

async function withFile<T>(p: string, mode: (typeof MODES)[number], body: (f: WeightFile) => T): Promise<T> {
  const f = mode.sync ? openSync(p, { io: mode.io }) : await open(p, { io: mode.io });
  try {
    return body(f);
  } finally {
    f.close();
  }
}

function metadataError(call: () => unknown): { code?: string; message?: string } | undefined {
  try {
    call();
  } catch (err) {
    expect(err).toBeInstanceOf(WeightsmithError);
    return err as { code?: string; message?: string };
  }
  return undefined;
}

describe.each([
  ['stories260K-f32.gguf', GGUF_F32],
  ['stories260K-F16.gguf', GGUF_F16],
])('%s', (_label, file) => {
  it.each(MODES.map((m) => [m.label, m] as const))('opens with %s: 48 tensors, llama metadata, typed accessors', async (_l, mode) => {
    await withFile(file, mode, (f) => {
      expect(f.format).toBe('gguf');
      expect(f.names().length).toBe(48);
      expect([...f.names()].sort()).toEqual(expectedGgufNames());
      expect(f.getString('general.architecture')).toBe('llama');
      expect(f.getNumber('llama.block_count')).toBe(N_LAYERS);
      expect(f.getNumber('llama.embedding_length')).toBe(64);
      expect(f.getNumber('llama.feed_forward_length')).toBe(172);
      expect(f.getNumber('llama.attention.head_count')).toBe(8);
      expect(f.getNumber('llama.attention.head_count_kv')).toBe(4);
      expect(f.getNumber('llama.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-5));
      expect(f.metadataTypes['llama.block_count']).toBe('u32');
      expect(f.getString('tokenizer.ggml.model')).toBe('llama');
      expect(f.getNumber('tokenizer.ggml.bos_token_id')).toBe(1);
      expect(f.getNumber('tokenizer.ggml.eos_token_id')).toBe(2);
      expect(f.getArray('general.alignment')).toBeUndefined();

      const tokens = f.getArray('tokenizer.ggml.tokens', 'string') as string[];
      expect(Array.isArray(tokens)).toBe(true);
      expect(tokens.length).toBe(512);
      expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
      expect(f.metadataTypes['tokenizer.ggml.tokens']).toBe('array<string>');
      const scores = f.getArray('tokenizer.ggml.scores', 'f32');
      expect(scores).toBeInstanceOf(Float32Array);
      expect((scores as Float32Array).length).toBe(512);
      const types = f.getArray('tokenizer.ggml.token_type', 'i32');
      expect(types).toBeInstanceOf(Int32Array);
      expect(Array.from((types as Int32Array).subarray(0, 4))).toEqual([2, 3, 3, 6]);  // unknown, control, control, byte

      // B14: the wrong element type is refused, never reinterpreted.
      for (const [key, elem] of [['tokenizer.ggml.scores', 'u8'], ['tokenizer.ggml.scores', 'i32'], ['tokenizer.ggml.tokens', 'f32'],
        ['tokenizer.ggml.token_type', 'u32']]) {
        const err = metadataError(() => f.getArray(key, elem));
        expect(err?.code, `${key} as ${elem}: ${err?.message}`).toBe('ERR_GGUF_METADATA_TYPE');
      }
      expect(metadataError(() => f.getString('llama.block_count'))?.code).toBe('ERR_GGUF_METADATA_TYPE');
      expect(metadataError(() => f.getBigInt('llama.block_count'))?.code).toBe('ERR_GGUF_METADATA_TYPE');
      expect(metadataError(() => f.getNumber('general.architecture'))?.code).toBe('ERR_GGUF_METADATA_TYPE');
    });
  });

  it('the vocabulary equals llama2.c\'s tok512.bin (spaces as U+2581, control tokens without their newlines)', () => {
    const { tokens, scores } = readTok512();
    expect(tokens.length).toBe(512);
    const f = openSync(file);
    try {
      const gTokens = f.getArray('tokenizer.ggml.tokens', 'string') as string[];
      const gScores = f.getArray('tokenizer.ggml.scores', 'f32') as Float32Array;
      expect(gTokens).toEqual(tokens.map((t) => /^\n.*\n$/s.test(t) ? t.slice(1, -1) : t.replace(/ /g, '\u2581')));
      expect(Array.from(gScores)).toEqual(scores);
    } finally {
      f.close();
    }
  });

  it('info() agrees with get() and the shapes equal the llama2.c model\'s', () => {
    const f = openSync(file);
    try {
      for (const name of f.names()) {
        const r = ref.info(referenceName(name, refNames));
        const info = f.info(name);
        const t = f.get(name);
        expect(t, name).toBeInstanceOf(Tensor);
        const tt = t as Tensor;
        expect(info.shape, name).toEqual(r.shape);
        expect(tt.shape, name).toEqual(r.shape);
        expect(info.dtype, name).toBe(tt.dtype);
        expect(info.ggmlType, name).toBe(tt.dtype);
        expect(info.byteLength, name).toBe(tt.byteLength);
        expect(info.byteLength, name).toBe(r.byteLength / (tt.dtype === 'f16' ? 2 : 1));
      }
    } finally {
      f.close();
    }
  });
});

describe('tensor values equal the llama2.c safetensors model', () => {
  it.each(MODES.map((m) => [m.label, m] as const))('stories260K-f32.gguf, bit for bit (%s)', async (_l, mode) => {
    await withFile(GGUF_F32, mode, (f) => {
      expect(f.metadataTypes['general.file_type'] === undefined || f.getNumber('general.file_type') === 0).toBe(true);
      let checked = 0;
      for (const name of f.names()) {
        const r = ref.getTensor(referenceName(name, refNames));
        const t = f.getTensor(name);
        expect(t.dtype, name).toBe('f32');
        expect(t.shape, name).toEqual(r.shape);
        expect(bytes(t).equals(bytes(r)), `${name} differs from ${referenceName(name, refNames)}`).toBe(true);
        checked++;
      }
      expect(checked).toBe(48);
    });
  });

  it.each(MODES.map((m) => [m.label, m] as const))('stories260K-F16.gguf: f16 tensors equal f32 -> f16 bit for bit, f32 ones exactly (%s)', async (_l, mode) => {
    await withFile(GGUF_F16, mode, (f) => {
      expect(f.getNumber('general.file_type')).toBe(1);  // LLAMA_FTYPE_MOSTLY_F16
      let f16 = 0;
      for (const name of f.names()) {
        const r = ref.getTensor(referenceName(name, refNames));
        const t = f.getTensor(name);
        expect(t.shape, name).toEqual(r.shape);
        expect(['f16', 'f32'], name).toContain(t.dtype);
        if (t.dtype === 'f32') {
          expect(r.shape.length, `${name} is kept in f32 but is not 1-D`).toBe(1);
          expect(bytes(t).equals(bytes(r)), name).toBe(true);
          continue;
        }
        f16++;
        const want = r.to('f16');
        const got = t.data as Uint16Array;
        const exp = want.data as Uint16Array;
        let diffs = 0;
        let first = -1;
        for (let i = 0; i < got.length; i++) {
          if (got[i] !== exp[i]) {
            if (first < 0) first = i;
            diffs++;
          }
        }
        expect(diffs, `${name}: ${diffs} f16 values differ; first at ${first}: file 0x${got[first]?.toString(16)}, ` +
          `ours 0x${exp[first]?.toString(16)} from f32 ${(r.data as Float32Array)[first]}`).toBe(0);
      }
      // Every matrix is f16 in a MOSTLY_F16 file: the embedding, the output and 7 per layer.
      expect(f16).toBe(2 + 7 * N_LAYERS);
    });
  });

  it('the two GGUFs carry the same vocabulary and model metadata', () => {
    const a = openSync(GGUF_F32);
    const b = openSync(GGUF_F16);
    try {
      for (const key of Object.keys(a.metadata)) {
        if (key === 'general.file_type') continue;
        expect(b.metadataTypes[key], key).toBe(a.metadataTypes[key]);
        expect(b.metadata[key], key).toEqual(a.metadata[key]);
      }
    } finally {
      a.close();
      b.close();
    }
  });
});
