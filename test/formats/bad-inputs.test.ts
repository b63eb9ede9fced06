// SPDX-License-Identifier: MIT
/**
 * BAD-INPUTS.md sections A (safetensors file level), C (filesystem, mmap) and D (API level): every input is
 * built here, each case asserts the exact `code`, and after every test the process proves it is healthy by
 * loading a valid file. Parse cases run through openSync and open, with io auto, mmap and pread.
 *
 * Cases that could kill or hang the process (SIGBUS, use after free, a blocking read of a FIFO) run in a
 * child process (runChild) so that one failure cannot take the other results down with it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  convert, convertSync, createWriter, getThreads, open, openSync, save, saveSync, setThreads, Tensor, tensor,
  WeightsmithError, zeros,
} from '../../lib/index';
import { native } from '../../lib/native';
import {
  bytesOf, entry, expectOpenCode, expectOpens, mkTemp, OPEN_MODES, openError, openFds, runChild, st, tempFiles, writeFile,
} from '../helpers/bad-inputs-helpers';

type Coded = Error & { code?: string; [k: string]: unknown };

/** Runs fn and returns what it threw (failing the test when it did not throw). */
function thrown(fn: () => unknown): Coded {
  try {
    fn();
  } catch (err) {
    return err as Coded;
  }
  throw new Error('expected the call to throw, but it returned');
}

/** Awaits p and returns its rejection (failing the test when it resolved). */
async function rejection(p: Promise<unknown>): Promise<Coded> {
  try {
    await p;
  } catch (err) {
    return err as Coded;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

function expectWs(err: Coded, code: string): void {
  expect(err, `${err?.name}[${err?.code}]: ${err?.message}`).toBeInstanceOf(WeightsmithError);
  expect(err.code, err.message).toBe(code);
}

function expectArgError(err: Coded, kind: 'type' | 'range' | 'unknown'): void {
  const [ctor, code] = kind === 'type' ? [TypeError, 'ERR_INVALID_ARG_TYPE'] : kind === 'range' ? [RangeError, 'ERR_OUT_OF_RANGE'] : [TypeError, 'ERR_UNKNOWN_OPTION'];
  expect(err, `${err?.name}[${err?.code}]: ${err?.message}`).toBeInstanceOf(ctor);
  expect(err.code, err.message).toBe(code);
}

function expectAbort(err: Coded): void {
  expect(err.name, err.message).toBe('AbortError');
  expect(err.code).toBe('ABORT_ERR');
}

/** The elements of a tensor's data as a plain array (numbers or bigints). */
const list = (a: ArrayLike<number> | ArrayLike<bigint>): (number | bigint)[] => Array.from(a as ArrayLike<number | bigint>);

/** Tensor names of a file (opened and closed again). */
function namesOf(p: string): string[] {
  const f = openSync(p);
  try {
    return f.names();
  } finally {
    f.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const root = mkTemp('ws-bad-inputs-');
let caseDir = root;
/** A fresh file in this test's folder. */
const mk = (header: object | string | Buffer, data: Uint8Array | number[] = [], opts: Parameters<typeof st>[2] = {}) =>
  writeFile(caseDir, st(header, data, opts));

/** A raw header entry, for JSON that JSON.stringify cannot write. */
const raw = (dtype: string, shape: string, offsets: string) => `{"dtype":${JSON.stringify(dtype)},"shape":${shape},"data_offsets":${offsets}}`;

const HEALTHY_VALUES = Float32Array.from([1.5, -2, 3.25, 0, 1e-3, 65504]);
let healthy = '';

/** Proves the process still works: a valid file opens (sync mmap and async pread) with the right values. */
async function expectHealthy(): Promise<void> {
  const a = openSync(healthy, { io: 'mmap' });
  expect(Array.from(a.getTensor('w').data as Float32Array)).toEqual(Array.from(HEALTHY_VALUES));
  expect(a.metadata).toEqual({ format: 'pt' });
  a.close();
  const b = await open(healthy, { io: 'pread' });
  expect(Array.from(b.getTensor('w').data as Float32Array)).toEqual(Array.from(HEALTHY_VALUES));
  expect(b.info('w')).toEqual({ dtype: 'f32', shape: [2, 3], byteLength: 24 });
  b.close();
}

beforeAll(() => {
  healthy = writeFile(root, st({ __metadata__: { format: 'pt' }, w: entry('F32', [2, 3], 0, 24) }, bytesOf(HEALTHY_VALUES)), 'healthy.safetensors');
});

let n = 0;
beforeEach(() => {
  caseDir = path.join(root, `t${++n}`);
  fs.mkdirSync(caseDir);
});

afterEach(async () => {
  await expectHealthy();
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const F32x4 = entry('F32', [4], 0, 16);
const DATA16 = new Uint8Array(16);

// ------------------------------------------------------------------------------------------------------------
describe('A. safetensors file level', () => {
  it('A1: files of 0 to 7 bytes are ERR_ST_HEADER_TOO_SMALL; 8 bytes with N = 0 is a JSON error', async () => {
    const full = st({ a: F32x4 }, DATA16);
    for (let size = 0; size < 8; size++) {
      const p = writeFile(caseDir, full.subarray(0, size));
      await expectOpenCode(p, 'ERR_ST_HEADER_TOO_SMALL', {}, (e) => expect(e.size).toBe(size));
    }
    await expectOpenCode(mk(''), 'ERR_ST_HEADER_JSON');
  });

  it('A2: N above 100,000,000 is ERR_ST_HEADER_TOO_LARGE ("not a safetensors file or corrupt"), never allocated', async () => {
    const tail = Buffer.alloc(4096, 0x41);
    const cases: [string, Buffer, bigint][] = [
      ['N = 100,000,001', st('{}', [], { n: 100_000_001n }), 100_000_001n],
      ['N = 2^64 - 1', st('{}', [], { n: 2n ** 64n - 1n }), 2n ** 64n - 1n],
      ['N = 2^63', st('{}', [], { n: 2n ** 63n }), 2n ** 63n],
      // A PyTorch .ckpt (zip) renamed to .safetensors: local file header "PK\3\4", version 20, flags 0.
      ['zip / .ckpt', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00]), tail]), 0x0000001404034b50n],
      // A legacy pickle checkpoint: PROTO 2, LONG1 10 bytes (the torch magic number).
      ['pickle .ckpt', Buffer.concat([Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46]), tail]), 0x469cfc6c0a8a0280n],
      // A GGUF v3 file renamed.
      ['GGUF', Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), tail]), 0x0000000346554747n],
    ];
    for (const [label, bytes, declared] of cases) {
      const p = writeFile(caseDir, bytes);
      const rss = process.memoryUsage().rss;
      await expectOpenCode(p, 'ERR_ST_HEADER_TOO_LARGE', {}, (e) => {
        expect(e.message, label).toMatch(/not a safetensors file or corrupt/);
        expect(BigInt(e.declared as number | bigint), label).toBe(declared);
        expect(e.limit, label).toBe(100_000_000);
      });
      // "Never allocate N": six opens of a declared 100 MB+ header grow RSS by far less than 100 MB.
      expect(process.memoryUsage().rss - rss, label).toBeLessThan(50_000_000);
    }
    // Exactly the limit is not "too large": it is a header running past the end of the file.
    await expectOpenCode(mk('{}', [], { n: 100_000_000n }), 'ERR_ST_HEADER_LENGTH');
  });

  it('A3: 8 + N past the end of the file is ERR_ST_HEADER_LENGTH, with the actual file size', async () => {
    const full = st({ a: F32x4 }, DATA16);
    const cut = writeFile(caseDir, full.subarray(0, 8 + 20));
    await expectOpenCode(cut, 'ERR_ST_HEADER_LENGTH', {}, (e) => {
      expect(e.size).toBe(28);
      expect(e.declared).toBe(full.readUInt32LE(0));
      expect(e.message).toContain('28');
    });
    await expectOpenCode(mk('{}', [], { n: 3n }), 'ERR_ST_HEADER_LENGTH', {}, (e) => expect(e.message).toContain('10'));
    await expectOpenCode(writeFile(caseDir, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0])), 'ERR_ST_HEADER_LENGTH', {}, (e) => expect(e.size).toBe(8));
  });

  it('A4: a header that is not UTF-8 is ERR_ST_HEADER_UTF8 with the offending offset; valid UTF-8 names load', async () => {
    const pre = Buffer.from('{"w');
    const post = Buffer.from(`":${JSON.stringify(F32x4)}}`);
    const bad: [string, number[]][] = [
      ['0xFF byte', [0xff]],
      ['continuation byte alone', [0x80]],
      ['overlong "/"', [0xc0, 0xaf]],
      ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
      ['UTF-16 surrogate encoded', [0xed, 0xa0, 0x80]],
      ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['truncated sequence', [0xe2, 0x82]],
    ];
    for (const [label, seq] of bad) {
      const p = mk(Buffer.concat([pre, Buffer.from(seq), post]), DATA16);
      await expectOpenCode(p, 'ERR_ST_HEADER_UTF8', {}, (e) => expect(e.offset, label).toBe(3));
    }
    // Truncated multi-byte sequence at the very end of the header.
    await expectOpenCode(mk(Buffer.concat([Buffer.from('{}'), Buffer.from([0xf0, 0x9f])])), 'ERR_ST_HEADER_UTF8');
    const names = ['é', '日本語', '🦀', 'a\u0000b'];
    const hdr: Record<string, object> = {};
    names.forEach((nm, i) => { hdr[nm] = entry('U8', [1], i, i + 1); });
    const ok = mk(hdr, [1, 2, 3, 4]);
    await expectOpens(ok);
    const f = openSync(ok);
    expect(f.names()).toEqual(names);
    expect(list(f.getTensor('🦀').data)).toEqual([3]);
    f.close();
  });

  it('A5: not JSON, trailing garbage and NUL padding are ERR_ST_HEADER_JSON; JSON whitespace padding is accepted', async () => {
    const good = JSON.stringify({ a: F32x4 });
    const bad: [string, string | Buffer][] = [
      ['not JSON', 'hello world'],
      ['not JSON (single quotes)', `{'a': 1}`],
      ['truncated JSON', good.slice(0, -1)],
      ['trailing garbage', `${good}x`],
      ['two values', `${good} {}`],
      ['NUL padded', Buffer.concat([Buffer.from(good), Buffer.alloc(6)])],
      ['single trailing NUL', Buffer.concat([Buffer.from(good), Buffer.alloc(1)])],
      ['leading NUL', Buffer.concat([Buffer.alloc(1), Buffer.from(good)])],
      ['UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good)])],
      ['vertical tab / form feed padding', `${good}\v\f`],
      ['trailing comma', good.replace(/}$/, ',}')],
      ['control character in a string', good.replace('"a"', '"a\u0001"')],
      ['invalid escape', good.replace('"a"', '"a\\x41"')],
      ['lone surrogate escape', good.replace('"a"', '"a\\ud800"')],
      ['NaN literal', `{"a":${raw('F32', '[4]', '[0,NaN]')}}`],
      ['Infinity literal', `{"a":${raw('F32', '[Infinity]', '[0,16]')}}`],
    ];
    for (const [label, header] of bad) {
      await expectOpenCode(mk(header, DATA16), 'ERR_ST_HEADER_JSON', {}, (e) => expect(e.message, label).toMatch(/header/));
    }
    for (const [before, after] of [['', '        '], [' \t\r\n', ''], ['\n', '\r\n\t '], ['', '']]) {
      await expectOpens(mk(`${before}${good}${after}`, DATA16));
    }
    // The reference writer pads with spaces to a multiple of 8 bytes.
    await expectOpens(mk({ a: F32x4 }, DATA16, { pad: '   ' }));
  });

  it('A6: a header that is not an object, or nested too deeply, is ERR_ST_HEADER_JSON; no stack overflow', async () => {
    for (const header of ['[]', '"abc"', '42', 'null', 'true', `[${JSON.stringify(F32x4)}]`]) {
      await expectOpenCode(mk(header), 'ERR_ST_HEADER_JSON', {}, (e) => expect(e.message, header).toMatch(/object/));
    }
    const deep: [string, string][] = [
      ['100k [', '['.repeat(100_000)],
      ['100k [ closed', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
      ['100k {"a":', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`],
      ['100k inside a tensor entry', `{"w":${'['.repeat(100_000)}}`],
      ['129 levels', `{"w":${'['.repeat(128)}${']'.repeat(128)}}`],
    ];
    for (const [label, header] of deep) {
      await expectOpenCode(mk(header), 'ERR_ST_HEADER_JSON', {}, (e) => expect(e.message, label).toMatch(/depth/));
    }
    // 128 levels is within the limit: the syntax passes and the schema reports the entry instead.
    await expectOpenCode(mk(`{"w":${'['.repeat(127)}${']'.repeat(127)}}`), 'ERR_ST_TENSOR_INFO');
  });

  it('A7: duplicate keys are ERR_ST_DUPLICATE_KEY, including the same name with another dtype over the same bytes', async () => {
    const e16 = JSON.stringify(F32x4);
    const cases: [string, string, string | undefined][] = [
      ['same entry twice', `{"w":${e16},"w":${e16}}`, 'w'],
      ['same name, other dtype and shape, same bytes', `{"w":${e16},"w":${raw('I32', '[2,2]', '[0,16]')}}`, 'w'],
      ['same name, other bytes', `{"w":${raw('F32', '[2]', '[0,8]')},"w":${raw('F32', '[2]', '[8,16]')}}`, 'w'],
      ['same name spelled with an escape', `{"w":${e16},"\\u0077":${e16}}`, 'w'],
      ['__metadata__ twice', `{"__metadata__":{"a":"b"},"w":${e16},"__metadata__":{"c":"d"}}`, undefined],
      ['key twice inside __metadata__', `{"__metadata__":{"a":"b","a":"c"},"w":${e16}}`, undefined],
      ['field twice inside an entry', `{"w":{"dtype":"F32","dtype":"I32","shape":[4],"data_offsets":[0,16]}}`, 'w'],
    ];
    for (const [label, header, name] of cases) {
      await expectOpenCode(mk(header, DATA16), 'ERR_ST_DUPLICATE_KEY', {}, (e) => {
        if (name) expect(e.tensor, label).toBe(name);
      });
    }
    // The same tensor in two shards of a folder.
    const dir = path.join(caseDir, 'sharded');
    fs.mkdirSync(dir);
    writeFile(dir, st({ w: F32x4 }, DATA16), 'a.safetensors');
    writeFile(dir, st({ w: F32x4 }, DATA16), 'b.safetensors');
    for (const mode of OPEN_MODES) {
      const err = (mode.sync ? thrown(() => openSync(dir, { io: mode.io })) : await rejection(open(dir, { io: mode.io })));
      expectWs(err, 'ERR_ST_DUPLICATE_KEY');
      expect(err.tensor).toBe('w');
    }
  });

  it('A8: a __metadata__ value that is not a string is ERR_ST_METADATA_TYPE', async () => {
    const e16 = JSON.stringify(F32x4);
    for (const md of ['{"k":1}', '{"k":{"x":"y"}}', '{"k":["a"]}', '{"k":null}', '{"k":true}', '{"a":"ok","k":2.5}',
      '"text"', '["a","b"]', '42', 'null']) {
      await expectOpenCode(mk(`{"__metadata__":${md},"w":${e16}}`, DATA16), 'ERR_ST_METADATA_TYPE');
    }
    const ok = mk(`{"__metadata__":{"a":"1","b":""},"w":${e16}}`, DATA16);
    await expectOpens(ok);
    const f = openSync(ok);
    expect(f.metadata).toEqual({ a: '1', b: '' });
    f.close();
  });

  it('A9: unknown or mis-cased dtypes are ERR_ST_DTYPE, naming the tensor', async () => {
    for (const d of ['"F128"', '"f32"', '""', '"F32 "', '" F32"', '"bf16"', '"Float32"', '"F8_E4M3FN"', '"Q4_0"', '"F32\\u0000"', '32', 'null', '["F32"]']) {
      await expectOpenCode(mk(`{"w":{"dtype":${d},"shape":[4],"data_offsets":[0,16]}}`, DATA16), 'ERR_ST_DTYPE', {}, (e) => {
        expect(e.tensor, d).toBe('w');
      });
    }
    // Every documented header name is accepted, as its own-sized tensor.
    const names: [string, number][] = [['F64', 8], ['F32', 4], ['F16', 2], ['BF16', 2], ['F8_E4M3', 1], ['F8_E5M2', 1], ['F8_E8M0', 1],
      ['F8_E4M3FNUZ', 1], ['F8_E5M2FNUZ', 1], ['F6_E2M3', 3], ['F6_E3M2', 3], ['F4', 2], ['C64', 8], ['I64', 8], ['I32', 4], ['I16', 2],
      ['I8', 1], ['U64', 8], ['U32', 4], ['U16', 2], ['U8', 1], ['BOOL', 1]];
    const hdr: Record<string, object> = {};
    let off = 0;
    for (const [d, bytes] of names) {
      // F6: 4 elements = 3 bytes; F4: 4 elements = 2 bytes; others: 1 element.
      const shape = ['F6_E2M3', 'F6_E3M2', 'F4'].includes(d) ? [4] : [1];
      hdr[`t_${d}`] = entry(d, shape, off, off + bytes);
      off += bytes;
    }
    const all = mk(hdr, new Uint8Array(off));
    await expectOpens(all);
    expect(namesOf(all).length).toBe(names.length);
  });

  it('A10: malformed data_offsets are ERR_ST_OFFSET (arity, sign, fraction, above 2^64 - 1, above 2^53 - 1)', async () => {
    const offs = ['[0]', '[0,16,32]', '[]', '[-1,15]', '[-0,16]', '[0,-16]', '[0.5,16]', '[0,16.0]', '[0,1.6e1]', '[0,16e0]', '[0,16E+0]',
      '[0,18446744073709551616]', '[0,99999999999999999999999999999]', '[18446744073709551616,18446744073709551632]',
      '[0,18446744073709551615]', '[0,9007199254740992]', '[9007199254740992,9007199254741008]',
      '["0",16]', '[0,"16"]', '[null,16]', '[[0],16]', '5', 'null', '"0,16"', '{"0":0,"1":16}'];
    for (const o of offs) {
      await expectOpenCode(mk(`{"w":${raw('F32', '[4]', o)}}`, DATA16), 'ERR_ST_OFFSET', {}, (e) => expect(e.tensor, o).toBe('w'));
    }
    await expectOpenCode(mk(`{"w":{"dtype":"F32","shape":[4]}}`, DATA16), 'ERR_ST_OFFSET');
    // 2^53 - 1 itself is a representable offset: it then fails the contiguity check, still as ERR_ST_OFFSET.
    await expectOpenCode(mk(`{"w":${raw('U8', '[0]', '[9007199254740991,9007199254740991]')}}`), 'ERR_ST_OFFSET');
  });

  it('A11: begin > end is ERR_ST_OFFSET naming the tensor', async () => {
    for (const [shape, o] of [['[4]', '[16,0]'], ['[0]', '[16,0]'], ['[0]', '[1,0]']]) {
      await expectOpenCode(mk(`{"ok":${raw('U8', '[0]', '[0,0]')},"bad_one":${raw('F32', shape, o)}}`, DATA16), 'ERR_ST_OFFSET', {}, (e) => {
        expect(e.tensor).toBe('bad_one');
        expect(e.message).toContain('bad_one');
      });
    }
  });

  it('A12: overlapping offsets, gaps, and many tensors over the same bytes are ERR_ST_OFFSET', async () => {
    const e = (b: number, en: number) => entry('U8', [en - b], b, en);
    const cases: [string, object, number][] = [
      ['overlap [0,16] [8,24]', { a: e(0, 16), b: e(8, 24) }, 24],
      ['same range twice', { a: e(0, 16), b: e(0, 16) }, 16],
      ['contained', { a: e(0, 16), b: e(4, 8) }, 16],
      ['gap [0,16] [20,36]', { a: e(0, 16), b: e(20, 36) }, 36],
      ['gap at the start', { a: e(4, 20) }, 20],
      ['zero-size tensor inside another', { a: e(0, 16), z: entry('U8', [0], 8, 8) }, 16],
    ];
    const many: Record<string, object> = {};
    for (let i = 0; i < 1000; i++) many[`t${i}`] = e(0, 16);
    cases.push(['1000 tensors at [0,16]', many, 16]);
    for (const [label, hdr, size] of cases) {
      await expectOpenCode(mk(hdr, new Uint8Array(size)), 'ERR_ST_OFFSET', {}, (err) => expect(typeof err.tensor, label).toBe('string'));
    }
  });

  it('A13: a byte span that differs from shape x dtype is ERR_ST_TENSOR_INFO; malformed shapes too', async () => {
    for (const [d, shape, o, size, need] of [['F32', '[4]', '[0,12]', 12, 16], ['F32', '[4]', '[0,20]', 20, 16], ['U8', '[3]', '[0,4]', 4, 3],
      ['BF16', '[2,3]', '[0,6]', 6, 12], ['F64', '[]', '[0,4]', 4, 8], ['F32', '[0]', '[0,4]', 4, 0]] as const) {
      await expectOpenCode(mk(`{"w":${raw(d, shape, o)}}`, new Uint8Array(size)), 'ERR_ST_TENSOR_INFO', {}, (e) => {
        expect(e.tensor).toBe('w');
        expect(e.expected).toBe(need);
      });
    }
    for (const shape of ['[-1]', '[1.5]', '[4.0]', '[4e0]', '["4"]', '[null]', '[[4]]', '4', 'null', '"4"', '{}', '[18446744073709551616]']) {
      await expectOpenCode(mk(`{"w":${raw('F32', shape, '[0,16]')}}`, DATA16), 'ERR_ST_TENSOR_INFO', {}, (e) => expect(e.tensor, shape).toBe('w'));
    }
    for (const bad of [`{"w":{"shape":[4],"data_offsets":[0,16]}}`, `{"w":{"dtype":"F32","data_offsets":[0,16]}}`,
      `{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":1}}`, '{"w":[]}', '{"w":"F32"}', '{"w":null}']) {
      await expectOpenCode(mk(bad, DATA16), 'ERR_ST_TENSOR_INFO');
    }
  });

  it('A14: shape products that overflow are ERR_ST_OVERFLOW, including products that wrap to exactly 0', async () => {
    const cases: [string, string, string][] = [
      ['[2^32, 2^32] wraps to 0', '[4294967296,4294967296]', '[0,0]'],
      ['[2^63, 2] wraps to 0', '[9223372036854775808,2]', '[0,0]'],
      ['[2^16 x 4] wraps to 0', '[65536,65536,65536,65536]', '[0,0]'],
      ['[2^64-1, 2^64-1] wraps to 1', '[18446744073709551615,18446744073709551615]', '[0,1]'],
      ['[2^40, 2^40, 0]: overflows before the 0', '[1099511627776,1099511627776,0]', '[0,0]'],
    ];
    for (const [label, shape, o] of cases) {
      const size = o === '[0,1]' ? 1 : 0;
      await expectOpenCode(mk(`{"w":${raw('U8', shape, o)}}`, new Uint8Array(size)), 'ERR_ST_OVERFLOW', {}, (e) => expect(e.tensor, label).toBe('w'));
    }
    // The element count fits but the byte size does not (wrapping would give 0 bytes).
    await expectOpenCode(mk(`{"w":${raw('F32', '[4611686018427387904]', '[0,0]')}}`), 'ERR_ST_OVERFLOW');
    await expectOpenCode(mk(`{"w":${raw('U8', '[18446744073709551615]', '[0,0]')}}`), 'ERR_ST_OVERFLOW');
    await expectOpenCode(mk(`{"w":${raw('F64', '[2305843009213693952]', '[0,0]')}}`), 'ERR_ST_OVERFLOW');
  });

  it('A15: sub-byte dtypes that do not fill whole bytes are ERR_ST_MISALIGNED; F4 byte-size overflow is ERR_ST_OVERFLOW', async () => {
    for (const [d, shape, size] of [['F4', '[3]', 2], ['F4', '[1]', 1], ['F4', '[3,3]', 5], ['F6_E2M3', '[3]', 3], ['F6_E3M2', '[2]', 2],
      ['F6_E2M3', '[5]', 4]] as const) {
      await expectOpenCode(mk(`{"w":${raw(d, shape, `[0,${size}]`)}}`, new Uint8Array(size)), 'ERR_ST_MISALIGNED', {},
        (e) => expect(e.tensor, `${d} ${shape}`).toBe('w'));
    }
    // F4: 2^62 elements x 4 bits = 2^64 bits; 2^63 x 4 too; a wrapping implementation would see 0 bytes.
    for (const shape of ['[4611686018427387904]', '[9223372036854775808]', '[2,2305843009213693952]', '[1,4611686018427387904]']) {
      await expectOpenCode(mk(`{"w":${raw('F4', shape, '[0,0]')}}`), 'ERR_ST_OVERFLOW', {}, (e) => expect(e.tensor, shape).toBe('w'));
    }
    // Whole bytes are fine, and read back as packed bytes.
    const ok = mk({ f4: entry('F4', [3, 2], 0, 3), f6: entry('F6_E3M2', [4], 3, 6) }, [0x21, 0x43, 0x65, 0xaa, 0xbb, 0xcc]);
    await expectOpens(ok);
    const f = openSync(ok);
    expect(f.info('f4')).toEqual({ dtype: 'f4', shape: [3, 2], byteLength: 3 });
    expect(list(f.getTensor('f4').data)).toEqual([0x21, 0x43, 0x65]);
    expect(list(f.getTensor('f6').data)).toEqual([0xaa, 0xbb, 0xcc]);
    f.close();
  });

  it('A16: trailing or missing data bytes are ERR_ST_INCOMPLETE_BUFFER with the declared and actual sizes', async () => {
    const base = st({ a: F32x4, b: entry('U8', [4], 16, 20) }, new Uint8Array(20));
    const full = base.length;
    const zip = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);  // an empty zip: a polyglot tail
    const cases: [string, Buffer][] = [
      ['one trailing byte', Buffer.concat([base, Buffer.from([0])])],
      ['a zip appended (polyglot)', Buffer.concat([base, zip])],
      ['one byte missing', base.subarray(0, full - 1)],
      ['no data at all', base.subarray(0, full - 20)],
    ];
    for (const [label, bytes] of cases) {
      await expectOpenCode(writeFile(caseDir, bytes), 'ERR_ST_INCOMPLETE_BUFFER', {}, (e) => {
        expect(e.declared, label).toBe(full);
        expect(e.size, label).toBe(bytes.length);
        expect(e.message, label).toContain(String(bytes.length));
      });
    }
    // Only zero-size tensors (no data), plus one stray byte.
    await expectOpenCode(mk({ z: entry('F32', [0], 0, 0) }, [7]), 'ERR_ST_INCOMPLETE_BUFFER');
    await expectOpenCode(mk('{}', [7]), 'ERR_ST_INCOMPLETE_BUFFER');
  });

  it('A17: zero-size tensors, alone or sharing an offset with a non-empty tensor, are accepted as empty views in a stable order', async () => {
    await expectOpens(mk('{}'));
    const alone = mk({ e: entry('U8', [0], 0, 0), f: entry('F32', [3, 0, 2], 0, 0), __metadata__: { k: 'v' } });
    await expectOpens(alone);
    const vals = Float32Array.from([1, 2, 3, 4]);
    const shared = mk({
      b: entry('F32', [0], 0, 0), w: entry('F32', [4], 0, 16), a: entry('BF16', [2, 0], 0, 0), z: entry('I64', [0, 5], 16, 16),
      c: entry('U8', [0], 0, 0),
    }, bytesOf(vals));
    await expectOpens(shared);
    for (const mode of OPEN_MODES) {
      const f = mode.sync ? openSync(shared, { io: mode.io }) : await open(shared, { io: mode.io });
      expect(f.names(), mode.label).toEqual(['b', 'a', 'c', 'w', 'z']);
      for (const nm of ['b', 'a', 'c', 'z']) {
        const t = f.getTensor(nm);
        expect(t.numel, nm).toBe(0);
        expect(t.data.length, nm).toBe(0);
        expect(t.data.byteLength, nm).toBe(0);
        expect(f.getTensor(nm), nm).toBe(t);
        expect(f.info(nm).byteLength).toBe(0);
        expect(f.readInto(nm, 0, new Uint8Array(4))).toBe(0);
      }
      expect(f.getTensor('a').shape).toEqual([2, 0]);
      expect(f.getTensor('z').data).toBeInstanceOf(BigInt64Array);
      expect(Array.from(f.getTensor('w').data as Float32Array)).toEqual([1, 2, 3, 4]);
      expect(f.getTensor('b').to('f16').numel).toBe(0);
      expect((await convert(f.getTensor('a'), 'f32')).shape).toEqual([2, 0]);
      f.close();
    }
    const one = openSync(alone);
    expect(one.names()).toEqual(['e', 'f']);
    expect(one.getTensor('f').shape).toEqual([3, 0, 2]);
    one.close();
    // A dimension next to a 0 can be any u64; JavaScript numbers hold it exactly only up to 2^53 - 1 (C10).
    for (const shape of ['[9007199254740992,0]', '[0,18446744073709551615]']) {
      await expectOpenCode(mk(`{"z":${raw('U8', shape, '[0,0]')}}`), 'ERR_FILE_TOO_LARGE', {}, (e) => expect(e.tensor, shape).toBe('z'));
    }
    const edge = mk(`{"z":${raw('U8', '[9007199254740991,0]', '[0,0]')}}`);
    await expectOpens(edge);
    const ef = openSync(edge);
    expect(ef.info('z').shape).toEqual([9007199254740991, 0]);
    expect(ef.getTensor('z').numel).toBe(0);
    ef.close();
  });

  it('A18: data not aligned to its element size (BF16 at an odd offset) is accepted and read exactly', async () => {
    // bf16 bit patterns of 1, -2, 0.5, 3.140625, -65280, NaN.
    const bits = Uint16Array.from([0x3f80, 0xc000, 0x3f00, 0x4049, 0xc77f, 0x7fc0]);
    const floats = [1, -2, 0.5, 3.140625, -65280, NaN];
    const f64 = Float64Array.from([Math.PI, -1e300]);
    const i64 = BigInt64Array.from([-5n, 2n ** 62n]);
    const f32 = Float32Array.from([0.1, -7]);
    // Header length odd, so the data buffer itself starts at an odd file offset; then one byte of u8 first.
    const hdr = { u: entry('U8', [1], 0, 1), h: entry('BF16', [6], 1, 13), d: entry('F64', [2], 13, 29), i: entry('I64', [2], 29, 45),
      s: entry('F32', [2], 45, 53) };
    const data = Buffer.concat([Buffer.from([9]), bytesOf(bits), bytesOf(f64), bytesOf(i64), bytesOf(f32)]);
    const json = JSON.stringify(hdr);
    for (const padLen of [0, 1, 2, 3]) {
      const p = mk(json, data, { pad: ' '.repeat(padLen) });
      for (const mode of OPEN_MODES) {
        const f = mode.sync ? openSync(p, { io: mode.io }) : await open(p, { io: mode.io });
        const h = f.getTensor('h');
        expect(list(h.data), mode.label).toEqual(Array.from(bits));
        expect(Buffer.compare(Buffer.from(h.bytes()), bytesOf(bits)), mode.label).toBe(0);
        expect(f.getTensor('h')).toBe(h);
        expect(list(h.to('f32').data)).toEqual(floats);
        expect(list((await convert(h, 'f32')).data)).toEqual(floats);
        expect(list(f.getTensor('d').data)).toEqual(Array.from(f64));
        expect(list(f.getTensor('i').data)).toEqual(Array.from(i64));
        expect(list(f.getTensor('s').data)).toEqual(Array.from(f32));
        expect(list(f.getTensor('u').data)).toEqual([9]);
        const chunk = new Uint8Array(5);
        expect(f.readInto('h', 3, chunk)).toBe(5);
        expect(Buffer.from(chunk)).toEqual(bytesOf(bits).subarray(3, 8));
        f.close();
        expect(h.data.byteLength).toBe(0);
      }
    }
  });

  it('A19: more tensors than maxTensors, or a rank above maxRank, is ERR_LIMIT_EXCEEDED', async () => {
    const four: Record<string, object> = { __metadata__: { a: 'b' } };
    for (let i = 0; i < 4; i++) four[`t${i}`] = entry('U8', [1], i, i + 1);
    const p4 = mk(four, [1, 2, 3, 4]);
    for (const limit of [1, 3]) {
      await expectOpenCode(p4, 'ERR_LIMIT_EXCEEDED', { maxTensors: limit }, (e) => expect(e.limit).toBe(limit));
    }
    await expectOpens(p4, { maxTensors: 4 });
    await expectOpens(mk({ __metadata__: { a: 'b' }, w: F32x4 }, DATA16), { maxTensors: 1 });

    // Many tiny tensors against a small limit: refused at the limit, without parsing the rest.
    const manyParts: string[] = [];
    for (let i = 0; i < 200_000; i++) manyParts.push(`"${i.toString(36)}":${raw('U8', '[0]', '[0,0]')}`);
    await expectOpenCode(mk(`{${manyParts.join(',')}}`), 'ERR_LIMIT_EXCEEDED', { maxTensors: 1000 }, (e) => expect(e.limit).toBe(1000));

    const rank = (r: number) => `[${new Array(r).fill(1).join(',')}]`;
    await expectOpenCode(mk(`{"w":${raw('U8', rank(65), '[0,1]')}}`, [1]), 'ERR_LIMIT_EXCEEDED', {}, (e) => {
      expect(e.limit).toBe(64);
      expect(e.tensor).toBe('w');
    });
    await expectOpenCode(mk(`{"w":${raw('U8', rank(100_000), '[0,1]')}}`, [1]), 'ERR_LIMIT_EXCEEDED');
    await expectOpens(mk(`{"w":${raw('U8', rank(64), '[0,1]')}}`, [1]));
    await expectOpenCode(mk(`{"w":${raw('U8', rank(3), '[0,1]')}}`, [1]), 'ERR_LIMIT_EXCEEDED', { maxRank: 2 }, (e) => expect(e.limit).toBe(2));
    await expectOpens(mk(`{"w":${raw('U8', rank(2), '[0,1]')}}`, [1]), { maxRank: 2 });
    await expectOpens(mk(`{"w":${raw('F32', '[]', '[0,4]')}}`, [0, 0, 0, 0]), { maxRank: 0 });
    await expectOpenCode(mk(`{"w":${raw('U8', '[1]', '[0,1]')}}`, [1]), 'ERR_LIMIT_EXCEEDED', { maxRank: 0 });
    await expectOpenCode(mk(`{"w":${raw('U8', rank(1025), '[0,1]')}}`, [1]), 'ERR_LIMIT_EXCEEDED', { maxRank: 1024 });
  });

  it('A19: the default limit refuses a header of 1,000,001 zero-size tensors (about 50 MB)', async () => {
    const parts: string[] = [];
    for (let i = 0; i <= 1_000_000; i++) parts.push(`"${i.toString(36)}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`);
    const p = mk(`{${parts.join(',')}}`);
    parts.length = 0;
    await expectOpenCode(p, 'ERR_LIMIT_EXCEEDED', {}, (e) => expect(e.limit).toBe(1_000_000),
      OPEN_MODES.filter((m) => m.label === 'openSync io:mmap' || m.label === 'open io:pread'));
  }, 60_000);

  it('failed opens leak no file descriptors', async () => {
    const files = [mk('', []), mk('{}', [], { n: 2n ** 64n - 1n }), mk('[[[['), mk(`{"w":${raw('F32', '[4]', '[0,12]')}}`, new Uint8Array(12)),
      mk({ a: F32x4 }, new Uint8Array(17))];
    const before = openFds();
    for (let round = 0; round < 20; round++) {
      for (const p of files) {
        for (const mode of OPEN_MODES) expect(await openError(p, mode), mode.label).toBeInstanceOf(WeightsmithError);
      }
    }
    expect(openFds()).toBe(before);
  });
});

// ------------------------------------------------------------------------------------------------------------
describe('C. filesystem, mmap and environment', () => {
  const A = Float32Array.from({ length: 1024 }, (_, i) => i);
  const B = Float32Array.from({ length: 1024 }, (_, i) => -i);
  const twoTensors = () => st({ a: entry('F32', [1024], 0, 4096), b: entry('F32', [1024], 4096, 8192) }, Buffer.concat([bytesOf(A), bytesOf(B)]));

  const mutations: [string, (p: string) => Promise<void> | void][] = [
    ['truncated', (p) => fs.truncateSync(p, 100)],
    ['truncated to 0 bytes', (p) => fs.truncateSync(p, 0)],
    ['grown (bytes appended)', (p) => fs.appendFileSync(p, Buffer.alloc(64))],
    ['rewritten in place, same size, other bytes', async (p) => {
      await sleep(25);  // let the mtime tick on filesystems with coarse timestamps
      const fd = fs.openSync(p, 'r+');
      fs.writeSync(fd, Buffer.alloc(4096, 0x7f), 0, 4096, fs.statSync(p).size - 4096);
      fs.closeSync(fd);
    }],
    ['rewritten with different content', (p) => fs.writeFileSync(p, st({ x: entry('U8', [3], 0, 3) }, [1, 2, 3]))],
    ['replaced by rename', (p) => {
      const tmp = `${p}.new`;
      fs.writeFileSync(tmp, twoTensors());  // same size, same bytes: only the inode differs
      fs.renameSync(tmp, p);
    }],
    ['deleted', (p) => fs.unlinkSync(p)],
  ];

  for (const io of ['mmap', 'pread', 'auto'] as const) {
    for (const [label, mutate] of mutations) {
      it(`C1: io ${io}, file ${label} after open: the next get() / readInto() throws ERR_FILE_CHANGED`, async () => {
        const p = writeFile(caseDir, twoTensors());
        const handles = [openSync(p, { io }), await open(p, { io })];
        const views = handles.map((f) => f.getTensor('a'));
        for (const [i, f] of handles.entries()) {
          expect((views[i].data as Float32Array)[5]).toBe(5);
          expect(f.isMapped('a')).toBe(io !== 'pread');
        }
        await mutate(p);
        for (const [i, f] of handles.entries()) {
          for (const fn of [() => f.getTensor('b'), () => f.getTensor('a'), () => f.readInto('b', 0, new Uint8Array(8)), () => f.readInto('a', 4, new Uint8Array(8))]) {
            const err = thrown(fn);
            expectWs(err, 'ERR_FILE_CHANGED');
            expect(err.path).toBe(p);
          }
          // Metadata needs no file access and keeps working; close detaches the view.
          expect(f.names()).toEqual(['a', 'b']);
          f.close();
          expect(views[i].data.byteLength).toBe(0);
        }
      });
    }
  }

  // Operations on a view obtained before the change must check too ("before every operation"); a kernel
  // reading a truncated mapping would otherwise die of SIGBUS. Run in a child: a SIGBUS kills the process.
  for (const op of ['convert', 'to', 'save'] as const) {
    it.concurrent(`C1: io mmap, file truncated after get(): ${op}() of the old view gives ERR_FILE_CHANGED, not SIGBUS`, async ({ expect }) => {
      const body = `
const d = workDir;
const p = path.join(d, 'm.safetensors');
ws.saveSync(p, { w: ws.tensor(Float32Array.from({ length: 1 << 20 }, (_, i) => i), [1 << 20]) });
const f = ws.openSync(p, { io: 'mmap' });
const v = f.getTensor('w');
fs.truncateSync(p, 64);
try {
  ${op === 'convert' ? "await ws.convert(v, 'bf16');" : op === 'to' ? "v.to('bf16');" : "await ws.save(path.join(d, 'out.safetensors'), { w: v });"}
  console.log('RESULT resolved');
} catch (err) {
  console.log('RESULT ' + err.code);
}
console.log('LEFT ' + fs.readdirSync(d).sort().join(','));
`;
      const r = await runChild(body, 20_000);
      expect({ signal: r.signal, status: r.status, timedOut: r.timedOut }, r.stderr).toEqual({ signal: null, status: 0, timedOut: false });
      expect(r.stdout).toContain('RESULT ERR_FILE_CHANGED');
      expect(r.stdout).toContain('LEFT m.safetensors\n');
    });
  }

  it('C3: saving over a mapped input never truncates it: old views keep their values, the new file is complete', async () => {
    const p = writeFile(caseDir, twoTensors(), 'model.safetensors');
    const f = openSync(p, { io: 'mmap' });
    const a = f.getTensor('a');
    const b = f.getTensor('b');
    // 1. Save the input's own views back to the same path, plus a new tensor (the classic in-place rewrite).
    await save(p, { a, b, c: tensor(Float32Array.from([7, 8, 9]), [3]) });
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(A));
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(B));
    expectWs(thrown(() => f.getTensor('a')), 'ERR_FILE_CHANGED');  // the path now names another inode
    const g = openSync(p);
    expect(g.names().sort()).toEqual(['a', 'b', 'c']);
    expect(Array.from(g.getTensor('a').data as Float32Array)).toEqual(Array.from(A));
    expect(Array.from(g.getTensor('b').data as Float32Array)).toEqual(Array.from(B));
    expect(Array.from(g.getTensor('c').data as Float32Array)).toEqual([7, 8, 9]);
    const ga = g.getTensor('a');
    // 2. Save different, smaller content over it synchronously while both handles are open.
    saveSync(p, { z: tensor(Uint8Array.from([1, 2]), [2]) });
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(A));
    expect(Array.from(ga.data as Float32Array)).toEqual(Array.from(A));
    const h = openSync(p);
    expect(h.names()).toEqual(['z']);
    expect(list(h.getTensor('z').data)).toEqual([1, 2]);
    expect(tempFiles(caseDir)).toEqual([]);
    for (const x of [f, g, h]) x.close();
    expect(a.data.byteLength).toBe(0);
  });

  describe('C4: a failed write leaves no destination and no temp file', () => {
    let tiny = '';
    let mountError = '';
    beforeAll(() => {
      tiny = mkTemp('ws-enospc-');
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', tiny], { stdio: 'pipe' });
      } catch (err) {
        mountError = String((err as { stderr?: Buffer }).stderr ?? err).trim() || 'mount failed';
      }
    });
    afterAll(() => {
      if (!mountError) execFileSync('umount', ['-l', tiny]);
      fs.rmSync(tiny, { recursive: true, force: true });
    });

    it('ENOSPC on a full 64 KiB tmpfs: rejects with ENOSPC, temp unlinked and space returned, destination untouched', async (ctx) => {
      if (mountError) ctx.skip(`cannot mount a 64 KiB tmpfs to provoke ENOSPC (${mountError}); the cleanup paths are covered by the next tests`);
      const dest = path.join(tiny, 'out.safetensors');
      const old = st({ old: entry('U8', [4], 0, 4) }, [1, 2, 3, 4]);
      fs.writeFileSync(dest, old);
      const free = fs.statfsSync(tiny).bfree;
      const big = zeros([256 * 1024], 'u8');  // 256 KiB into 64 KiB
      const attempts: [string, () => Promise<unknown>][] = [
        ['save', () => save(dest, { big, small: zeros([4], 'f32') })],
        ['saveSync', async () => saveSync(dest, { big })],
        ['save with shards', () => save(dest, { big, b2: big }, { shardSize: 300 * 1024 })],
        ['createWriter + writeSync', async () => {
          const w = createWriter(dest, { plan: [{ name: 'big', dtype: 'u8', shape: [256 * 1024] }] });
          w.writeSync('big', big);
          w.closeSync();
        }],
        ['createWriter + writeBytes in chunks', async () => {
          const w = createWriter(dest, { plan: [{ name: 'big', dtype: 'u8', shape: [256 * 1024] }] });
          for (let off = 0; off < 256 * 1024; off += 16 * 1024) await w.writeBytes('big', off, new Uint8Array(16 * 1024).fill(1));
          await w.close();
        }],
      ];
      for (const [label, run] of attempts) {
        const err = await rejection(run());
        expect(err.code, `${label}: ${err.message}`).toBe('ENOSPC');
        expect(fs.readdirSync(tiny), label).toEqual(['out.safetensors']);
        expect(fs.readFileSync(dest), label).toEqual(old);
        // An unlinked temp file still open would keep its blocks: the fd must be closed too.
        expect(fs.statfsSync(tiny).bfree, label).toBe(free);
      }
      // The same folder still takes a file that fits.
      await save(dest, { s: tensor(Uint8Array.from([5]), [1]) });
      const f = openSync(dest);
      expect(list(f.getTensor('s').data)).toEqual([5]);
      f.close();
    });

    it('a tensor that fails mid-save (view of a closed file) rejects; nothing is left, an existing destination is untouched', async () => {
      const src = writeFile(caseDir, twoTensors(), 'src.safetensors');
      const f = openSync(src);
      const dead = f.getTensor('b');
      f.close();
      const dest = path.join(caseDir, 'out.safetensors');
      const good = tensor(Float32Array.from([1, 2]), [2]);
      expectWs(await rejection(save(dest, { good, dead })), 'ERR_HANDLE_CLOSED');
      expectWs(thrown(() => saveSync(dest, { good, dead })), 'ERR_HANDLE_CLOSED');
      expect(fs.readdirSync(caseDir)).toEqual(['src.safetensors']);
      const old = st({ o: entry('U8', [1], 0, 1) }, [9]);
      fs.writeFileSync(dest, old);
      expectWs(await rejection(save(dest, { good, dead })), 'ERR_HANDLE_CLOSED');
      expect(fs.readFileSync(dest)).toEqual(old);
      expect(fs.readdirSync(caseDir).sort()).toEqual(['out.safetensors', 'src.safetensors']);
    });

    it('writer abort, incomplete close, and a missing folder leave nothing behind', async () => {
      const dest = path.join(caseDir, 'w.safetensors');
      const plan = [{ name: 'a', dtype: 'f32' as const, shape: [2] }, { name: 'b', dtype: 'u8' as const, shape: [3] }];
      const w1 = createWriter(dest, { plan });
      expect(tempFiles(caseDir).length).toBe(1);
      await w1.write('a', tensor(Float32Array.from([1, 2]), [2]));
      w1.abort();
      w1.abort();
      expect(fs.readdirSync(caseDir)).toEqual([]);
      expectWs(await rejection(w1.write('b', zeros([3], 'u8'))), 'ERR_HANDLE_CLOSED');
      expectWs(await rejection(w1.close()), 'ERR_HANDLE_CLOSED');
      expect(fs.readdirSync(caseDir)).toEqual([]);

      const w2 = createWriter(dest, { plan });
      w2.writeSync('a', tensor(Float32Array.from([1, 2]), [2]));
      w2.writeBytesSync('b', 0, Uint8Array.from([1]));
      const err = await rejection(w2.close());
      expectWs(err, 'ERR_TENSOR_NOT_FOUND');
      expect(err.tensor).toBe('b');
      expect(fs.readdirSync(caseDir)).toEqual([]);

      const w3 = createWriter(dest, { plan });
      expectWs(thrown(() => w3.closeSync()), 'ERR_TENSOR_NOT_FOUND');
      expect(fs.readdirSync(caseDir)).toEqual([]);

      const missing = path.join(caseDir, 'no', 'such', 'dir', 'x.safetensors');
      expect((await rejection(save(missing, { a: zeros([1]) }))).code).toBe('ENOENT');
      expect(thrown(() => saveSync(missing, { a: zeros([1]) })).code).toBe('ENOENT');
      expect(fs.readdirSync(caseDir)).toEqual([]);
    });
  });

  describe('C9: non-regular paths are ERR_NOT_REGULAR_FILE', () => {
    it('/dev/null, symlinks to devices, and dangling symlinks', async () => {
      const dangling = path.join(caseDir, 'dangling.safetensors');
      fs.symlinkSync(path.join(caseDir, 'nowhere.safetensors'), dangling);
      const toNull = path.join(caseDir, 'null.safetensors');
      fs.symlinkSync('/dev/null', toNull);
      const loop = path.join(caseDir, 'loop.safetensors');
      fs.symlinkSync(loop, loop);
      for (const p of ['/dev/null', '/dev/zero', toNull, dangling]) await expectOpenCode(p, 'ERR_NOT_REGULAR_FILE');
      // A symlink loop and a missing file are system errors and keep their errno code.
      for (const mode of OPEN_MODES) {
        const err = mode.sync ? thrown(() => openSync(loop, { io: mode.io })) : await rejection(open(loop, { io: mode.io }));
        expect(['ELOOP', 'ERR_NOT_REGULAR_FILE']).toContain(err.code);
        const missing = path.join(caseDir, 'missing.safetensors');
        const e2 = mode.sync ? thrown(() => openSync(missing, { io: mode.io })) : await rejection(open(missing, { io: mode.io }));
        expect(e2.code).toBe('ENOENT');
        expect(e2.path).toBe(missing);
      }
      // A symlink to a valid file is fine.
      const link = path.join(caseDir, 'link.safetensors');
      fs.symlinkSync(healthy, link);
      await expectOpens(link);
    });

    it('a directory where a file is expected: a shard, the native open, a save destination', async () => {
      const folder = path.join(caseDir, 'ckpt');
      fs.mkdirSync(path.join(folder, 'model.safetensors'), { recursive: true });
      for (const mode of OPEN_MODES) {
        const err = mode.sync ? thrown(() => openSync(folder, { io: mode.io })) : await rejection(open(folder, { io: mode.io }));
        expectWs(err, 'ERR_NOT_REGULAR_FILE');
        expect(err.path).toBe(path.join(folder, 'model.safetensors'));
      }
      // Below the folder logic, the native open refuses a directory before any mmap.
      for (const io of ['auto', 'mmap', 'pread']) {
        expectWs(thrown(() => native.openFileSync(caseDir, io)), 'ERR_NOT_REGULAR_FILE');
        expectWs(await rejection(native.openFile(caseDir, io)), 'ERR_NOT_REGULAR_FILE');
      }
      // An empty folder is a checkpoint without shards (folders are valid inputs).
      const empty = path.join(caseDir, 'empty');
      fs.mkdirSync(empty);
      expectWs(thrown(() => openSync(empty)), 'ERR_CONFIG');
      // Saving onto a directory.
      const target = path.join(caseDir, 'target.safetensors');
      fs.mkdirSync(target);
      expectWs(await rejection(save(target, { a: zeros([1]) })), 'ERR_NOT_REGULAR_FILE');
      expectWs(thrown(() => saveSync(target, { a: zeros([1]) })), 'ERR_NOT_REGULAR_FILE');
      expect(fs.statSync(target).isDirectory()).toBe(true);
      expect(fs.readdirSync(target)).toEqual([]);
      expect(tempFiles(caseDir)).toEqual([]);
    });

    // FIFOs run in a child: a blocking open of a FIFO would hang this process with no way to time out.
    it.concurrent('a FIFO, opened directly (every mode) or as a shard: refused at once, no hang', async ({ expect }) => {
      const body = `
const d = workDir;
const fifo = path.join(d, 'f.safetensors');
require('node:child_process').execFileSync('mkfifo', [fifo]);
const json = path.join(d, 'x.safetensors.index.json');
require('node:child_process').execFileSync('mkfifo', [json]);
const out = [];
for (const p of [fifo, json, d]) {
  for (const io of ['auto', 'mmap', 'pread']) {
    try { ws.openSync(p, { io }); out.push('opened'); } catch (err) { out.push(err.code); }
    try { await ws.open(p, { io }); out.push('opened'); } catch (err) { out.push(err.code); }
  }
}
console.log('RESULT ' + out.join(','));
`;
      const r = await runChild(body, 15_000);
      expect({ signal: r.signal, status: r.status, timedOut: r.timedOut }, r.stderr).toEqual({ signal: null, status: 0, timedOut: false });
      expect(r.stdout).toContain(`RESULT ${new Array(18).fill('ERR_NOT_REGULAR_FILE').join(',')}`);
    });

    for (const [label, make] of [
      ['a FIFO', "require('node:child_process').execFileSync('mkfifo', [idx]);"],
      ['a symlink to /dev/zero', "fs.symlinkSync('/dev/zero', idx);"],
    ] as const) {
      it.concurrent(`a folder whose model.safetensors.index.json is ${label}: ERR_NOT_REGULAR_FILE, no hang`, async ({ expect }) => {
        const body = `
const d = workDir;
const idx = path.join(d, 'model.safetensors.index.json');
${make}
const out = [];
try { ws.openSync(d); out.push('opened'); } catch (err) { out.push(err.code); }
try { await ws.open(d); out.push('opened'); } catch (err) { out.push(err.code); }
console.log('RESULT ' + out.join(','));
`;
        const r = await runChild(body, 20_000);
        expect({ signal: r.signal, status: r.status, timedOut: r.timedOut }, r.stderr).toEqual({ signal: null, status: 0, timedOut: false });
        expect(r.stdout).toContain('RESULT ERR_NOT_REGULAR_FILE,ERR_NOT_REGULAR_FILE');
      });
    }
  });
});

// ------------------------------------------------------------------------------------------------------------
describe('D. API level', () => {
  describe('D1: wrong argument types and out-of-range sizes', () => {
    it('open / openSync options and path', async () => {
      const cases: [unknown, unknown, 'type' | 'range' | 'unknown'][] = [
        [5, undefined, 'type'], [undefined, undefined, 'type'], [null, undefined, 'type'], [Buffer.from('x'), undefined, 'type'],
        ['p', 5, 'type'], ['p', 'mmap', 'type'], ['p', null, 'type'], ['p', [], 'type'],
        ['p', { io: 'MMAP' }, 'range'], ['p', { io: 'read' }, 'range'], ['p', { io: 1 }, 'type'],
        ...[NaN, Infinity, -Infinity, -1, 0, 1.5, 2 ** 53].map((v) => ['p', { maxTensors: v }, 'range'] as [unknown, unknown, 'range']),
        ...['5', null, {}, 5n].map((v) => ['p', { maxTensors: v }, 'type'] as [unknown, unknown, 'type']),
        ...[NaN, Infinity, -1, 0.5, 1025, 2 ** 31].map((v) => ['p', { maxRank: v }, 'range'] as [unknown, unknown, 'range']),
        ...['64', true, []].map((v) => ['p', { maxRank: v }, 'type'] as [unknown, unknown, 'type']),
        ['p', { signal: 'abort' }, 'type'], ['p', { signal: {} }, 'type'],
        ['p', { IO: 'mmap' }, 'unknown'], ['p', { maxTensor: 5 }, 'unknown'], ['p', { zzzzzzzz: 1 }, 'unknown'],
      ];
      for (const [p, opts, kind] of cases) {
        const real = p === 'p' ? healthy : p;
        const label = `${String(p)} ${JSON.stringify(opts, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`;
        if (!(opts && typeof opts === 'object' && 'signal' in opts)) {
          expectArgError(thrown(() => openSync(real as string, opts as object)), kind);
        }
        const err = await rejection(open(real as string, opts as object));
        expectArgError(err, kind);
        expect(err.message, label).toBeTruthy();
      }
      expect(thrown(() => openSync(healthy, { IO: 'mmap' } as object)).message).toContain('Did you mean "io"?');
      expect((await rejection(open(healthy, { maxTensor: 5 } as object))).message).toContain('Did you mean "maxTensors"?');
      expect((await rejection(open(healthy, { maxrank: 5 } as object))).message).toContain('Did you mean "maxRank"?');
      // The valid edges.
      openSync(healthy, { maxTensors: 1, maxRank: 2 }).close();
      openSync(healthy, { maxTensors: Number.MAX_SAFE_INTEGER, maxRank: 1024 }).close();
    });

    it('the native layer validates again', async () => {
      for (const v of [NaN, Infinity, -1, 1.5, 2 ** 53 + 2]) {
        expectArgError(thrown(() => native.openFileSync(healthy, 'mmap', v)), 'range');
        expectArgError(thrown(() => native.openFileSync(healthy, 'mmap', undefined, v)), 'range');
        expectArgError(thrown(() => native.setThreads(v)), 'range');
      }
      expectArgError(thrown(() => native.openFileSync(healthy, 'bogus')), 'range');
      expectArgError(thrown(() => native.openFileSync(5 as unknown as string)), 'type');
      expectArgError(thrown(() => native.setThreads(0)), 'range');
      expectArgError(thrown(() => native.setThreads(257)), 'range');
      expectArgError(thrown(() => native.setThreads('2' as unknown as number)), 'type');
      const src = new Float32Array(4);
      const dst = new Uint16Array(4);
      for (const nBad of [NaN, -1, 1.5, Infinity]) expectArgError(thrown(() => native.convertSync(src, 'f32', dst, 'f16', nBad)), 'range');
      expectArgError(thrown(() => native.convertSync(src, 'f32', dst, 'f16', 5)), 'range');
      expectArgError(thrown(() => native.convertSync(src, 'f32', new Uint16Array(2), 'f16', 4)), 'range');
      expectArgError(thrown(() => native.convertSync('x' as unknown as Float32Array, 'f32', dst, 'f16', 4)), 'type');
      expectArgError(thrown(() => native.convertSync(src, 'f32', src, 'f32', 4)), 'range');  // overlap
      expectWs(thrown(() => native.convertSync(src, 'f128', dst, 'f16', 4)), 'ERR_DTYPE');
      expectArgError(thrown(() => native.convertSync(src, 5 as unknown as string, dst, 'f16', 4)), 'type');
      expectArgError(thrown(() => native.convert(src, 'f32', dst, 'f16', -1, [], null)), 'range');
      const f = native.openFileSync(healthy);
      expectArgError(thrown(() => f.view(1)), 'range');
      expectArgError(thrown(() => f.view(-1)), 'range');
      expectArgError(thrown(() => f.readInto(0, NaN, new Uint8Array(4))), 'range');
      expectArgError(thrown(() => f.readInto(0, 0, 'x' as unknown as Uint8Array)), 'type');
      expectArgError(thrown(() => f.readInto(0, 25, new Uint8Array(4))), 'range');
      f.close();
      expectWs(thrown(() => f.view(0)), 'ERR_HANDLE_CLOSED');
    });

    it('tensor(), zeros() and reshape() shapes and data', () => {
      const badShapes: [unknown, 'type' | 'range'][] = [
        [[-1], 'range'], [[1.5], 'range'], [[NaN], 'range'], [[Infinity], 'range'], [[2 ** 53], 'range'], [[2, -0.5], 'range'],
        ['4', 'type'], [4, 'type'], [null, 'type'], [['4'], 'type'], [[4n], 'type'], [[[4]], 'type'],
      ];
      for (const [shape, kind] of badShapes) {
        expectArgError(thrown(() => tensor(new Float32Array(4), shape as number[])), kind);
        expectArgError(thrown(() => zeros(shape as number[], 'f32')), kind);
        expectArgError(thrown(() => zeros([4]).reshape(shape as number[])), kind);
      }
      // Products beyond 2^53 - 1 elements.
      expectArgError(thrown(() => zeros([2 ** 30, 2 ** 30], 'u8')), 'range');
      expectArgError(thrown(() => tensor(new Float32Array(4), [2 ** 27, 2 ** 27])), 'range');
      expectWs(thrown(() => tensor(new Float32Array(4), [3])), 'ERR_SHAPE');
      expectWs(thrown(() => tensor([1, 2, 3], [2, 2])), 'ERR_SHAPE');
      expectWs(thrown(() => zeros([4]).reshape([3])), 'ERR_SHAPE');
      expectArgError(thrown(() => tensor('abcd' as unknown as number[], [4])), 'type');
      expectArgError(thrown(() => tensor({ length: 4 } as unknown as number[], [4])), 'type');
      expectArgError(thrown(() => tensor(new Float32Array(4), [4], 'f16')), 'type');  // f16 needs a Uint16Array
      expectWs(thrown(() => zeros([2], 'float32' as 'f32')), 'ERR_DTYPE');
      expectWs(thrown(() => tensor([1], [1], 'F32' as 'f32')), 'ERR_DTYPE');
      expectArgError(thrown(() => zeros([2], 5 as unknown as 'f32')), 'type');
    });

    it('a shape within 2^53 elements but far beyond memory is a coded error, never an uncoded one', () => {
      for (const [shape, dtype] of [[[2 ** 20, 2 ** 20], 'u8'], [[2 ** 40], 'f32'], [[2 ** 26, 2 ** 26], 'bf16']] as const) {
        const err = thrown(() => zeros(shape, dtype));
        expect(['ERR_OUT_OF_RANGE', 'ERR_OUT_OF_MEMORY'], `zeros([${shape}], ${dtype}): ${err.name}: ${err.message}`).toContain(err.code);
      }
    });

    it('setThreads', () => {
      const before = getThreads();
      try {
        for (const v of [0, 1.5, NaN, -1, Infinity, 257]) expectArgError(thrown(() => setThreads(v)), 'range');
        for (const v of ['2', null, undefined, 2n]) expectArgError(thrown(() => setThreads(v as unknown as number)), 'type');
        expect(getThreads()).toBe(before);
        setThreads(1);
        expect(getThreads()).toBe(1);
        expect(list(tensor([1, 2], [2]).to('bf16').data)).toEqual([0x3f80, 0x4000]);
      } finally {
        setThreads(before);
      }
      expect(getThreads()).toBe(before);
    });

    it('createWriter plans and save arguments; nothing is created', async () => {
      const dest = path.join(caseDir, 'o.safetensors');
      const plan = (e: object) => ({ plan: [{ name: 'a', dtype: 'f32', shape: [2], ...e }] });
      const cases: [unknown, unknown, 'type' | 'range' | 'unknown' | string][] = [
        [5, { plan: [] }, 'type'], [dest, undefined, 'type'], [dest, 5, 'type'], [dest, {}, 'type'], [dest, { plan: 'x' }, 'type'],
        [dest, { plan: {} }, 'type'], [dest, { plan: [5] }, 'type'], [dest, { plan: [null] }, 'type'],
        ...[[-1], [1.5], [NaN], [Infinity], [2 ** 53], [2 ** 40, 2 ** 40]].map((s) => [dest, plan({ shape: s }), 'range'] as [unknown, unknown, 'range']),
        ...['x', 4, null, ['2']].map((s) => [dest, plan({ shape: s }), 'type'] as [unknown, unknown, 'type']),
        [dest, plan({ dtype: 'float32' }), 'ERR_DTYPE'], [dest, plan({ dtype: 'F32' }), 'ERR_DTYPE'], [dest, plan({ dtype: '' }), 'ERR_DTYPE'],
        [dest, plan({ name: 5 }), 'type'], [dest, plan({ name: '__metadata__' }), 'range'], [dest, plan({ name: 'x\ud800' }), 'range'],
        [dest, { ...plan({}), shardSize: 0 }, 'range'], [dest, { ...plan({}), shardSize: NaN }, 'range'], [dest, { ...plan({}), shardSize: -1 }, 'range'],
        [dest, { ...plan({}), shardSize: 1.5 }, 'range'], [dest, { ...plan({}), shardSize: '1' }, 'type'],
        [dest, { ...plan({}), metadata: { k: 1 } }, 'type'], [dest, { ...plan({}), metadata: 'x' }, 'type'], [dest, { ...plan({}), format: 'gguf2' }, 'range'],
        [dest, { ...plan({}), metdata: {} }, 'unknown'], [dest, { ...plan({}), shardsize: 1 }, 'unknown'],
        [dest, { plan: [{ name: 'a', dtype: 'f32', shape: [1] }, { name: 'a', dtype: 'u8', shape: [1] }] }, 'ERR_ST_DUPLICATE_KEY'],
        [dest, { plan: [{ name: 'a', dtype: 'f4', shape: [3] }] }, 'ERR_SHAPE'],
      ];
      for (const [p, opts, kind] of cases) {
        const err = thrown(() => createWriter(p as string, opts as { plan: [] }));
        const label = `createWriter(${String(p)}, ${JSON.stringify(opts)}) -> ${err.name}[${err.code}] ${err.message}`;
        if (kind.startsWith('ERR_')) {
          expect(err, label).toBeInstanceOf(WeightsmithError);
          expect(err.code, label).toBe(kind);
        } else {
          expect(err.code, label).toBe(kind === 'type' ? 'ERR_INVALID_ARG_TYPE' : kind === 'range' ? 'ERR_OUT_OF_RANGE' : 'ERR_UNKNOWN_OPTION');
          expect(err, label).toBeInstanceOf(kind === 'range' ? RangeError : TypeError);
        }
      }
      expect(thrown(() => createWriter(dest, { ...plan({}), metdata: {} } as unknown as { plan: [] })).message).toContain('Did you mean "metadata"?');
      expect(fs.readdirSync(caseDir)).toEqual([]);
      const t = zeros([2]);
      expectArgError(await rejection(save(5 as unknown as string, { t })), 'type');
      expectArgError(await rejection(save(dest, null as unknown as Record<string, Tensor>)), 'type');
      expectArgError(await rejection(save(dest, { t: 5 as unknown as Tensor })), 'type');
      expectArgError(await rejection(save(dest, { t: { dtype: 'f32', shape: [2], data: new Float32Array(2) } as unknown as Tensor })), 'type');
      expectArgError(await rejection(save(dest, { t }, { metadata: { k: 1 as unknown as string } })), 'type');
      expectArgError(await rejection(save(dest, { t }, { shardSize: NaN })), 'range');
      expectArgError(await rejection(save(dest, { t }, { signal: 'x' as unknown as AbortSignal })), 'type');
      const u = await rejection(save(dest, { t }, { shardsize: 1 } as object));
      expectArgError(u, 'unknown');
      expect(u.message).toContain('Did you mean "shardSize"?');
      expectArgError(thrown(() => saveSync(dest, { t }, { metadta: {} } as object)), 'unknown');
      expectArgError(thrown(() => saveSync(dest, { t }, { signal: new AbortController().signal } as object)), 'unknown');
      expect(fs.readdirSync(caseDir)).toEqual([]);
    });

    it('a plan dtype of the wrong type (not a string) is a TypeError like everywhere else', () => {
      const dest = path.join(caseDir, 'o.safetensors');
      for (const dtype of [5, undefined, null, { name: 'f32' }]) {
        expectArgError(thrown(() => createWriter(dest, { plan: [{ name: 'a', dtype: dtype as unknown as 'f32', shape: [2] }] })), 'type');
      }
      // For comparison: tensor(), zeros() and convert() already do this.
      expectArgError(thrown(() => zeros([2], 5 as unknown as 'f32')), 'type');
      expect(fs.readdirSync(caseDir)).toEqual([]);
    });

    it('convert dtype names and options; readInto and get arguments', async () => {
      const t = tensor([1, 2, 3], [3]);
      for (const d of ['float16', 'F16', 'fp16', '', 'f32 ', 'bfloat16']) {
        expectWs(await rejection(convert(t, d as 'f16')), 'ERR_DTYPE');
        expectWs(thrown(() => convertSync(t, d as 'f16')), 'ERR_DTYPE');
        expectWs(thrown(() => t.to(d as 'f16')), 'ERR_DTYPE');
      }
      for (const d of [5, null, undefined, {}]) {
        expectArgError(await rejection(convert(t, d as 'f16')), 'type');
        expectArgError(thrown(() => convertSync(t, d as 'f16')), 'type');
      }
      // Pass-through dtypes convert only to themselves.
      expectWs(await rejection(convert(t, 'f4')), 'ERR_DTYPE');
      expectWs(thrown(() => zeros([2], 'f4').to('f32')), 'ERR_DTYPE');
      expectArgError(await rejection(convert({} as Tensor, 'f16')), 'type');
      expectArgError(await rejection(convert(new Float32Array(3) as unknown as Tensor, 'f16')), 'type');
      expectArgError(await rejection(convert(t, 'f16', 5 as unknown as object)), 'type');
      expectArgError(await rejection(convert(t, 'f16', { signal: {} as AbortSignal })), 'type');
      const u = await rejection(convert(t, 'f16', { sigal: undefined } as object));
      expectArgError(u, 'unknown');
      expect(u.message).toContain('Did you mean "signal"?');

      const f = openSync(healthy);
      for (const off of [-1, 1.5, NaN, Infinity]) expectArgError(thrown(() => f.readInto('w', off, new Uint8Array(4))), 'range');
      expectArgError(thrown(() => f.readInto('w', '0' as unknown as number, new Uint8Array(4))), 'type');
      expectArgError(thrown(() => f.readInto('w', 0, 'x' as unknown as Uint8Array)), 'type');
      expectArgError(thrown(() => f.readInto('w', 25, new Uint8Array(4))), 'range');
      expect(f.readInto('w', 24, new Uint8Array(4))).toBe(0);
      expectArgError(thrown(() => f.getTensor(5 as unknown as string)), 'type');
      expectArgError(thrown(() => f.has(undefined as unknown as string)), 'type');
      const nf = thrown(() => f.getTensor('nope'));
      expectWs(nf, 'ERR_TENSOR_NOT_FOUND');
      expect(nf.tensor).toBe('nope');
      expectWs(thrown(() => f.info('__metadata__')), 'ERR_TENSOR_NOT_FOUND');
      f.close();
    });
  });

  describe('D3: use after close', () => {
    for (const io of ['mmap', 'pread'] as const) {
      it(`io ${io}: views detach, methods throw ERR_HANDLE_CLOSED, a second close() does nothing`, async () => {
        const p = mk({ w: entry('F32', [4], 0, 16), h: entry('BF16', [3], 16, 22), z: entry('U8', [0], 22, 22), u: entry('BF16', [1], 23, 25),
          b: entry('U8', [1], 22, 23) }, new Uint8Array(25).fill(0x3f));
        const f = io === 'mmap' ? openSync(p, { io }) : await open(p, { io });
        const views = ['w', 'h', 'z', 'u', 'b'].map((nm) => f.getTensor(nm));
        const wCopy = new Float32Array(views[0].data as Float32Array);
        const reshaped = views[0].reshape([2, 2]);
        f.close();
        expect(f.closed).toBe(true);
        for (const v of views) expect(v.data.byteLength, v.toString()).toBe(0);
        expect(reshaped.data.byteLength).toBe(0);
        for (const fn of [() => f.names(), () => f.has('w'), () => f.info('w'), () => f.getTensor('w'), () => f.getTensor('nope'),
          () => f.readInto('w', 0, new Uint8Array(4)), () => f.isMapped('w')]) {
          expectWs(thrown(fn), 'ERR_HANDLE_CLOSED');
        }
        expect(() => f.close()).not.toThrow();
        expect(() => f[Symbol.dispose]()).not.toThrow();
        // Using a detached view.
        const w = views[0];
        expectWs(thrown(() => w.to('f16')), 'ERR_HANDLE_CLOSED');
        expectWs(thrown(() => convertSync(w, 'bf16')), 'ERR_HANDLE_CLOSED');
        expectWs(await rejection(convert(w, 'bf16')), 'ERR_HANDLE_CLOSED');
        expectWs(await rejection(convert(reshaped, 'f32')), 'ERR_HANDLE_CLOSED');
        const dest = path.join(caseDir, 'out.safetensors');
        expectWs(await rejection(save(dest, { w })), 'ERR_HANDLE_CLOSED');
        expect(fs.existsSync(dest)).toBe(false);
        // Zero-size views stay usable: they never had bytes.
        expect(views[2].to('f32').numel).toBe(0);
        // Reopening gives the data back.
        const g = openSync(p);
        expect(Array.from(g.getTensor('w').data as Float32Array)).toEqual(Array.from(wCopy));
        g.close();
      });
    }

    for (const io of ['mmap', 'pread'] as const) {
      it(`io ${io}: bytes() of a detached view throws ERR_HANDLE_CLOSED like the other methods`, () => {
        const p = mk({ w: F32x4 }, DATA16);
        const f = openSync(p, { io });
        const w = f.getTensor('w');
        expect(w.bytes().byteLength).toBe(16);
        f.close();
        expectWs(thrown(() => w.bytes()), 'ERR_HANDLE_CLOSED');
      });
    }

    it('`using` and Symbol.dispose close the file, also when the block throws', () => {
      const p = mk({ w: F32x4 }, bytesOf(Float32Array.from([1, 2, 3, 4])));
      let view: Tensor | undefined;
      let handle: ReturnType<typeof openSync> | undefined;
      {
        using f = openSync(p);
        handle = f;
        view = f.getTensor('w');
        expect(view.data.byteLength).toBe(16);
      }
      expect(handle.closed).toBe(true);
      expect(view.data.byteLength).toBe(0);
      expect(() => {
        using g = openSync(p);
        handle = g;
        view = g.getTensor('w');
        throw new Error('boom');
      }).toThrow('boom');
      expect(handle.closed).toBe(true);
      expect(view.data.byteLength).toBe(0);
      const h = openSync(p);
      const v = h.getTensor('w');
      h[Symbol.dispose]();
      expect(h.closed).toBe(true);
      expect(v.data.byteLength).toBe(0);
      expectWs(thrown(() => h.getTensor('w')), 'ERR_HANDLE_CLOSED');
    });
  });

  describe('D4: close() while an async kernel reads the file', () => {
    const N = 16 * 1024 * 1024;  // 64 MB of f32
    let big = '';
    let expected: Uint16Array;
    beforeAll(() => {
      const src = new Float32Array(N);
      for (let i = 0; i < N; i++) src[i] = (i % 65537) * 0.37 - 9000;
      big = path.join(root, 'd4.safetensors');
      saveSync(big, { w: tensor(src, [N]) });
      expected = tensor(src, [N]).to('bf16').data as Uint16Array;
    });

    it('io mmap: convert(view) then close() at once resolves with the right values', async () => {
      for (let round = 0; round < 3; round++) {
        const f = openSync(big, { io: 'mmap' });
        const v = f.getTensor('w');
        expect(f.isMapped('w')).toBe(true);
        const pending = convert(v, 'bf16');
        f.close();
        expect(v.data.byteLength).toBe(0);
        let out: Tensor | undefined;
        try {
          out = await pending;
        } catch (err) {
          // A clean rejection is allowed too, but it must be a coded error, not garbage.
          expect((err as Coded).code).toMatch(/^(ERR_|ABORT_ERR)/);
        }
        if (out) expect(Buffer.compare(bytesOf(out.data), bytesOf(expected))).toBe(0);
      }
    });

    // Views that are copies (pread mode, or data not aligned to its element size) are detached by close()
    // too; the kernel must not read freed memory. In a child: a use after free can crash the process.
    const setups: [string, (bigPath: string) => string][] = [
      ['io pread', (b) => `const f = ws.openSync(${JSON.stringify(b)}, { io: 'pread' });`],
      ['io mmap, data at an odd offset (a copied view)', (b) => `
const d = workDir;
const p = path.join(d, 'odd.safetensors');
let json = JSON.stringify({ w: { dtype: 'F32', shape: [${N}], data_offsets: [0, ${N * 4}] } });
if (json.length % 2 === 0) json += ' ';  // 8 + N odd: the f32 data is not 4-byte aligned
const pre = Buffer.alloc(8);
pre.writeBigUInt64LE(BigInt(json.length));
const srcFile = ws.openSync(${JSON.stringify(b)});
fs.writeFileSync(p, Buffer.concat([pre, Buffer.from(json), srcFile.getTensor('w').bytes()]));
srcFile.close();
const f = ws.openSync(p, { io: 'mmap' });`],
    ];
    for (const [label, setup] of setups) {
      it.concurrent(`${label}: convert(view) then close() at once never reads freed memory`, async ({ expect }) => {
        const body = `
${setup(big)}
const expected = ws.openSync(${JSON.stringify(big)}, { io: 'pread' }).getTensor('w').to('bf16');
const v = f.getTensor('w');
const pending = ws.convert(v, 'bf16');
f.close();
try {
  const out = await pending;
  const same = Buffer.compare(Buffer.from(out.data.buffer), Buffer.from(expected.data.buffer)) === 0;
  console.log(same ? 'RESULT ok' : 'RESULT wrong values');
} catch (err) {
  console.log(/^(ERR_|ABORT_ERR)/.test(err.code) ? 'RESULT ok' : 'RESULT bad error ' + err.code + ' ' + err.message);
}`;
        const r = await runChild(body, 30_000);
        expect({ signal: r.signal, status: r.status, timedOut: r.timedOut }, r.stderr.slice(-2000)).toEqual({ signal: null, status: 0, timedOut: false });
        expect(r.stdout).toContain('RESULT ok');
      });
    }
  });

  describe('D5: AbortSignal', () => {
    it('aborted before open, save and convert: AbortError / ABORT_ERR, no destination', async () => {
      const signal = AbortSignal.abort();
      expectAbort(await rejection(open(healthy, { signal })));
      expectAbort(await rejection(open(healthy, { io: 'pread', signal })));
      const dest = path.join(caseDir, 'out.safetensors');
      expectAbort(await rejection(save(dest, { a: zeros([4]) }, { signal })));
      expectAbort(await rejection(save(dest, { a: zeros([4]) }, { signal, shardSize: 8 })));
      expectAbort(await rejection(convert(zeros([4]), 'bf16', { signal })));
      const withReason = AbortSignal.abort(new Error('stop'));
      expectAbort(await rejection(convert(zeros([4]), 'bf16', { signal: withReason })));
      expect(fs.readdirSync(caseDir)).toEqual([]);
      // An existing destination is untouched.
      fs.writeFileSync(dest, 'old');
      expectAbort(await rejection(save(dest, { a: zeros([4]) }, { signal })));
      expect(fs.readFileSync(dest, 'utf8')).toBe('old');
      expect(fs.readdirSync(caseDir)).toEqual(['out.safetensors']);
    });

    it('aborted during a ~200 MB save: rejects promptly, no destination, no temp file', async () => {
      const chunk = new Float32Array(2 * 1024 * 1024).fill(1.25);  // 8 MB
      const tensors: Record<string, Tensor> = {};
      for (let i = 0; i < 25; i++) tensors[`layer.${i}`] = tensor(chunk, [chunk.length]);
      const dest = path.join(caseDir, 'big.safetensors');
      for (const opts of [{}, { shardSize: 64 * 1024 * 1024 }]) {
        const ac = new AbortController();
        const t0 = Date.now();
        const pending = save(dest, tensors, { ...opts, signal: ac.signal });
        expect(tempFiles(caseDir).length).toBeGreaterThan(0);  // the save is under way
        ac.abort();
        expectAbort(await rejection(pending));
        expect(Date.now() - t0).toBeLessThan(5000);
        expect(fs.readdirSync(caseDir)).toEqual([]);
      }
      // A later save to the same path works (nothing stayed busy).
      await save(dest, { a: tensors['layer.0'] });
      const f = openSync(dest);
      expect(f.info('a').byteLength).toBe(8 * 1024 * 1024);
      f.close();
    });

    it('aborted during a convert of a 128 MB tensor: AbortError', async () => {
      const t = tensor(new Float32Array(32 * 1024 * 1024).fill(3.5), [32 * 1024 * 1024]);
      const ac = new AbortController();
      const pending = convert(t, 'bf16', { signal: ac.signal });
      ac.abort();
      expectAbort(await rejection(pending));
      // The pool is fine afterwards.
      expect(list((await convert(tensor([1, 2], [2]), 'bf16')).data)).toEqual([0x3f80, 0x4000]);
    });
  });

  describe('D14: concurrent saves and reads', () => {
    it('two concurrent saves to one path: ERR_DEST_BUSY or serialized; the result is complete and valid', async () => {
      const dest = path.join(caseDir, 'same.safetensors');
      const A = { x: tensor(Float32Array.from({ length: 4096 }, (_, i) => i), [4096]) };
      const B = { y: tensor(Int32Array.from({ length: 100 }, (_, i) => -i), [100]) };
      for (let round = 0; round < 3; round++) {
        const results = await Promise.allSettled([save(dest, A), save(dest, B)]);
        expect(results[0].status).toBe('fulfilled');
        if (results[1].status === 'rejected') {
          expectWs(results[1].reason as Coded, 'ERR_DEST_BUSY');
          expect((results[1].reason as Coded).path).toBe(dest);
        }
        const winner = results[1].status === 'fulfilled' ? B : A;
        const f = openSync(dest);
        expect(f.names()).toEqual(Object.keys(winner));
        const [nm, t] = Object.entries(winner)[0];
        expect(Buffer.compare(bytesOf(f.getTensor(nm).data), bytesOf(t.data))).toBe(0);
        f.close();
        expect(tempFiles(caseDir)).toEqual([]);
      }
      // saveSync and a writer while an async save is in flight.
      const pending = save(dest, A);
      const e1 = thrown(() => saveSync(dest, B));
      expectWs(e1, 'ERR_DEST_BUSY');
      expectWs(thrown(() => createWriter(`${caseDir}/./same.safetensors`, { plan: [] })), 'ERR_DEST_BUSY');  // same file, other spelling
      await pending;
      saveSync(dest, B);
      expect(namesOf(dest)).toEqual(['y']);
      const w = createWriter(dest, { plan: [{ name: 'y', dtype: 'i32', shape: [100] }] });
      expectWs(thrown(() => createWriter(dest, { plan: [] })), 'ERR_DEST_BUSY');
      w.abort();
      createWriter(dest, { plan: [] }).closeSync();
      expect(namesOf(dest)).toEqual([]);
      expect(tempFiles(caseDir)).toEqual([]);
    });

    it('concurrent reads and kernels on one handle are safe', async () => {
      const vals = Float32Array.from({ length: 65536 }, (_, i) => Math.sin(i));
      const hdr: Record<string, object> = {};
      for (let i = 0; i < 8; i++) hdr[`t${i}`] = entry('F32', [65536], i * 262144, (i + 1) * 262144);
      const p = mk(hdr, Buffer.concat(new Array(8).fill(bytesOf(vals))));
      const expected = tensor(vals, [65536]).to('bf16');
      for (const io of ['mmap', 'pread'] as const) {
        const f = await open(p, { io });
        const outs = await Promise.all([...f.names(), ...f.names()].map((nm) => convert(f.getTensor(nm), 'bf16')));
        for (const o of outs) expect(Buffer.compare(bytesOf(o.data), bytesOf(expected.data))).toBe(0);
        f.close();
      }
    });
  });
});
