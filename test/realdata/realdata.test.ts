// SPDX-License-Identifier: MIT
// Real files nobody in this project wrote (../shared/realdata, see its README): Karpathy's stories260K
// (LLaMA layout and llama2.c layout) and two face-api CNNs. Every tensor's bytes and statistics must match
// what numpy read from the same files (test/fixtures/stories260K-expected.json, written by
// test/fixtures/make-fixtures.py), views must be zero-copy over the mapping and detached on close, and bf16
// conversion must match numpy's round-to-nearest-even and not depend on the thread count.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { convert, getThreads, open, openSync, saveSync, setThreads, Tensor, tensor, WeightFile } from '../../lib/index';

const REALDATA = path.resolve(__dirname, '../../../shared/realdata');
if (!fs.existsSync(path.join(REALDATA, 'SHA256SUMS'))) {
  throw new Error(`The real-data folder ${REALDATA} is missing: these tests need ../shared/realdata next to the ` +
    'repository (see ../shared/realdata/README.md). They are not skipped on purpose.');
}

interface TensorExpect {
  name: string;
  dtype: 'f32';
  shape: number[];
  data_offsets: [number, number];
  sha256: string;
  sum: number;
  abs_sum: number;
  min: number;
  max: number;
  bf16_sha256: string;
}
interface FileExpect {
  file_sha256: string;
  header_size: number;
  metadata: Record<string, string>;
  tensor_count: number;
  parameters: number;
  tensors: TensorExpect[];
  bf16_save?: { metadata: Record<string, string>; size: number; sha256: string; data_buffer_bf16_sha256: string };
}
const expected = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/stories260K-expected.json'), 'utf8')) as {
  files: Record<string, FileExpect>;
};

const STORIES = 'stories260K/model.safetensors';
const LLAMA2C = 'stories260K/llama2c-native.safetensors';
const FACE_TINY = 'face-api/tiny_face_detector_model.safetensors';
const FACE_AGE = 'face-api/age_gender_model.safetensors';
const ALL = [STORIES, LLAMA2C, FACE_TINY, FACE_AGE];
const real = (rel: string) => path.join(REALDATA, rel);

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// A real garbage collection before memory measurements (the flag is read when `gc` is first looked up), so
// garbage of earlier tests cannot be collected in the middle of one. Without it the check still works, noisier.
function getGc(): () => void {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return () => {};
  }
}
const gc = getGc();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-realdata-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function stats(a: Float32Array): { sum: number; absSum: number; min: number; max: number } {
  let sum = 0, absSum = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    sum += v;
    absSum += Math.abs(v);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { sum, absSum, min, max };
}

/** Checks every tensor of an open file against the numpy references. */
function checkAgainstNumpy(f: WeightFile, e: FileExpect): void {
  expect(f.names()).toEqual(e.tensors.map((t) => t.name));
  expect({ ...f.metadata }).toEqual(e.metadata);
  let params = 0;
  for (const x of e.tensors) {
    const info = f.info(x.name);
    expect(info, x.name).toEqual({ dtype: x.dtype, shape: x.shape, byteLength: x.data_offsets[1] - x.data_offsets[0] });
    const t = f.getTensor(x.name);
    expect(t.dtype).toBe('f32');
    expect(t.shape, x.name).toEqual(x.shape);
    expect(t.data).toBeInstanceOf(Float32Array);
    params += t.numel;
    expect(sha256(t.bytes()), x.name).toBe(x.sha256);
    const s = stats(t.data as Float32Array);
    expect(s.min, `${x.name} min`).toBe(x.min);
    expect(s.max, `${x.name} max`).toBe(x.max);
    // numpy's sums are exactly rounded; a plain f64 loop is within n * eps * sum|x| of them
    const tol = 1e-11 * x.abs_sum + 1e-300;
    expect(Math.abs(s.sum - x.sum), `${x.name} sum ${s.sum} vs ${x.sum}`).toBeLessThanOrEqual(tol);
    expect(Math.abs(s.absSum - x.abs_sum), `${x.name} abs sum`).toBeLessThanOrEqual(tol);
  }
  expect(params).toBe(e.parameters);
}

describe('real files', () => {
  it('are the published files (SHA256SUMS) the references were computed from', () => {
    const sums = new Map<string, string>();
    for (const line of fs.readFileSync(path.join(REALDATA, 'SHA256SUMS'), 'utf8').split('\n')) {
      const m = /^([0-9a-f]{64})\s+\*?(?:\.\/)?(.+)$/.exec(line.trim());
      if (m) sums.set(m[2], m[1]);
    }
    for (const rel of ALL) {
      const h = sha256(fs.readFileSync(real(rel)));
      expect(h, `${rel} differs from SHA256SUMS`).toBe(sums.get(rel));
      expect(h, `${rel} differs from the file make-fixtures.py read`).toBe(expected.files[rel].file_sha256);
    }
  });

  it('stories260K has 47 tensors and 260,032 parameters', () => {
    const f = openSync(real(STORIES));
    try {
      const names = f.names();
      expect(names.length).toBe(47);
      expect(names.reduce((a, n) => a + f.getTensor(n).numel, 0)).toBe(260_032);
      expect(f.info('model.layers.0.mlp.down_proj.weight')).toEqual({ dtype: 'f32', shape: [64, 172], byteLength: 64 * 172 * 4 });
      expect(f.has('lm_head.weight')).toBe(false);  // tied embeddings
    } finally {
      f.close();
    }
    expect(expected.files[STORIES].tensor_count).toBe(47);
    expect(expected.files[STORIES].parameters).toBe(260_032);
    expect(expected.files[LLAMA2C].parameters).toBe(260_032);
    expect(expected.files[FACE_TINY].tensor_count).toBe(19);
    expect(expected.files[FACE_AGE].tensor_count).toBe(51);
  });

  for (const rel of ALL) {
    for (const io of ['mmap', 'pread'] as const) {
      it(`${rel} (${io}): every tensor's bytes, sum, min and max match numpy`, async () => {
        const e = expected.files[rel];
        const f = openSync(real(rel), { io });
        try {
          checkAgainstNumpy(f, e);
        } finally {
          f.close();
        }
        const g = await open(real(rel), { io });
        try {
          checkAgainstNumpy(g, e);
        } finally {
          g.close();
        }
      });
    }
  }
});

describe('zero-copy views', () => {
  const big = [STORIES, FACE_AGE];
  const totalBytes = big.reduce((a, rel) => a + expected.files[rel].tensors.reduce((b, t) => b + t.data_offsets[1] - t.data_offsets[0], 0), 0);

  /** Growth of the memory held by ArrayBuffers while getting every tensor of both files. */
  function arrayBufferGrowth(io: 'mmap' | 'pread'): { growth: number; tensors: Tensor[]; files: WeightFile[] } {
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const files = big.map((rel) => openSync(real(rel), { io }));
    const tensors = files.flatMap((f) => f.names().map((n) => f.getTensor(n)));
    return { growth: process.memoryUsage().arrayBuffers - before, tensors, files };
  }

  it('getting every tensor of a mapped file copies nothing (pread, which copies, is the control)', () => {
    expect(totalBytes).toBeGreaterThan(2_500_000);
    const mapped = arrayBufferGrowth('mmap');
    try {
      expect(mapped.files.every((f) => f.names().every((n) => f.isMapped(n)))).toBe(true);
      // Node counts the ArrayBuffers it allocates; external ones over the mapping cost nothing there
      expect(mapped.growth, `ArrayBuffer memory grew by ${mapped.growth} bytes for ${totalBytes} bytes of tensors`)
        .toBeLessThan(totalBytes / 10);
    } finally {
      for (const f of mapped.files) f.close();
    }
    const copied = arrayBufferGrowth('pread');
    try {
      expect(copied.growth, 'the control: pread copies must show up').toBeGreaterThanOrEqual(totalBytes * 0.9);
    } finally {
      for (const f of copied.files) f.close();
    }
  });

  it('every get() of a tensor returns the same data over one ArrayBuffer holding exactly that tensor', () => {
    const f = openSync(real(STORIES), { io: 'mmap' });
    try {
      const buffers = new Set<ArrayBufferLike>();
      for (const n of f.names()) {
        const a = f.getTensor(n);
        const b = f.getTensor(n);
        expect(b).toBe(a);
        expect(b.data.buffer).toBe(a.data.buffer);
        expect(a.data.byteOffset).toBe(0);
        expect(a.data.buffer.byteLength).toBe(a.byteLength);
        buffers.add(a.data.buffer);
        // a reshaped tensor is a view of the same memory, not a copy
        expect(a.reshape([a.numel]).data.buffer).toBe(a.data.buffer);
      }
      expect(buffers.size).toBe(47);
    } finally {
      f.close();
    }
  });

  it('views are copy-on-write: writing to one never changes the file or another handle\'s views', () => {
    const name = 'model.norm.weight';
    const f = openSync(real(STORIES), { io: 'mmap' });
    const g = openSync(real(STORIES), { io: 'mmap' });
    try {
      const want = expected.files[STORIES].tensors.find((t) => t.name === name)!.sha256;
      const a = f.getTensor(name).data as Float32Array;
      a.fill(42);
      expect(a[0]).toBe(42);
      expect(sha256(g.getTensor(name).bytes())).toBe(want);
      expect(sha256(fs.readFileSync(real(STORIES)))).toBe(expected.files[STORIES].file_sha256);
    } finally {
      f.close();
      g.close();
    }
  });

  for (const io of ['mmap', 'pread'] as const) {
    it(`close() detaches every view (${io})`, async () => {
      const f = await open(real(STORIES), { io });
      const tensors = f.names().map((n) => f.getTensor(n));
      const reshaped = tensors[0].reshape([tensors[0].numel]);
      expect(tensors.every((t) => t.data.byteLength > 0)).toBe(true);
      f.close();
      expect(f.closed).toBe(true);
      for (const t of tensors) {
        expect(t.data.byteLength).toBe(0);
        expect(t.data.length).toBe(0);
        expect(t.data.buffer.byteLength).toBe(0);
      }
      expect(reshaped.data.byteLength).toBe(0);
      expect(() => tensors[1].to('bf16')).toThrow(expect.objectContaining({ code: 'ERR_HANDLE_CLOSED' }));
      await expect(convert(tensors[1], 'bf16')).rejects.toMatchObject({ code: 'ERR_HANDLE_CLOSED' });
      expect(() => f.getTensor('model.norm.weight')).toThrow(expect.objectContaining({ code: 'ERR_HANDLE_CLOSED' }));
      expect(() => saveSync(path.join(tmp, 'closed.safetensors'), { t: tensors[1] }))
        .toThrow(expect.objectContaining({ code: 'ERR_HANDLE_CLOSED' }));
      expect(fs.existsSync(path.join(tmp, 'closed.safetensors'))).toBe(false);
      f.close();  // a second close does nothing
    });
  }
});

describe('bf16 conversion of stories260K', () => {
  const e = expected.files[STORIES];
  const bf = e.bf16_save!;

  it('every tensor converts to numpy\'s bf16 codes and saves to the same bytes for 1, 2 and 3 threads', async () => {
    const saved = getThreads();
    const outputs: string[] = [];
    try {
      for (const threads of [1, 2, 3]) {
        setThreads(threads);
        expect(getThreads()).toBe(threads);
        const f = openSync(real(STORIES));
        try {
          const record: Record<string, Tensor> = {};
          for (const [i, n] of f.names().entries()) {
            // alternate the sync and async paths
            const b = i % 2 === 0 ? f.getTensor(n).to('bf16') : await convert(f.getTensor(n), 'bf16');
            expect(b.dtype).toBe('bf16');
            expect(sha256(b.bytes()), `${n} with ${threads} threads`).toBe(e.tensors[i].bf16_sha256);
            record[n] = b;
          }
          const out = path.join(tmp, `stories-bf16-${threads}.safetensors`);
          saveSync(out, record, { metadata: bf.metadata });
          const bytes = fs.readFileSync(out);
          expect(bytes.length).toBe(bf.size);
          outputs.push(sha256(bytes));
        } finally {
          f.close();
        }
      }
    } finally {
      setThreads(saved);
    }
    expect(getThreads()).toBe(saved);
    expect(outputs).toEqual([bf.sha256, bf.sha256, bf.sha256]);
  });

  it('all 260,032 parameters as one tensor (several chunks) convert identically for 1, 2 and 3 threads', async () => {
    const f = openSync(real(STORIES));
    const saved = getThreads();
    try {
      const all = new Float32Array(e.parameters);
      let off = 0;
      for (const n of f.names()) {
        const d = f.getTensor(n).data as Float32Array;
        all.set(d, off);
        off += d.length;
      }
      const t = tensor(all, [all.length]);
      for (const threads of [1, 2, 3]) {
        setThreads(threads);
        expect(sha256(t.to('bf16').bytes()), `to(), ${threads} threads`).toBe(bf.data_buffer_bf16_sha256);
        expect(sha256((await convert(t, 'bf16')).bytes()), `convert(), ${threads} threads`).toBe(bf.data_buffer_bf16_sha256);
      }
    } finally {
      setThreads(saved);
      f.close();
    }
    expect(getThreads()).toBe(saved);
  });

  it('f32 -> bf16 -> f32 stays within half a bf16 ulp of every original value', () => {
    const f = openSync(real(STORIES));
    try {
      let checked = 0;
      let exactlyEqual = 0;
      for (const n of f.names()) {
        const x = f.getTensor(n).data as Float32Array;
        const b = f.getTensor(n).to('bf16');
        const y = b.to('f32');
        expect(y.shape).toEqual(f.getTensor(n).shape);
        const yd = y.data as Float32Array;
        const ybits = new Uint32Array(yd.buffer, yd.byteOffset, yd.length);
        const bad: string[] = [];
        for (let i = 0; i < x.length; i++) {
          // bf16 keeps 8 significant bits: |error| <= half an ulp = 2^(floor(log2|x|) - 8) <= 2^-8 * |x|
          // (plus half the subnormal spacing, 2^-134, for tiny values)
          const err = Math.abs(yd[i] - x[i]);
          if (!(err <= Math.abs(x[i]) * 2 ** -8 + 2 ** -134) || (ybits[i] & 0xffff) !== 0) bad.push(`${n}[${i}]: ${x[i]} -> ${yd[i]}`);
          if (yd[i] === x[i]) exactlyEqual++;
        }
        expect(bad.slice(0, 10)).toEqual([]);
        // bf16 -> f32 -> bf16 gives the same codes back
        expect(sha256(y.to('bf16').bytes()), n).toBe(sha256(b.bytes()));
        checked += x.length;
      }
      expect(checked).toBe(260_032);
      expect(exactlyEqual).toBeLessThan(checked);  // the trip really rounds
    } finally {
      f.close();
    }
  });
});
