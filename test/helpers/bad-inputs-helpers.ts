// SPDX-License-Identifier: MIT
/**
 * Helpers for test/formats/bad-inputs.test.ts: hand-built safetensors images, error assertions over every
 * open mode, temp-file checks, and a crash-isolated child process for cases that could take the test
 * process down (hangs, signals).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { open, openSync, WeightsmithError } from '../../lib/index';
import type { OpenOptions, WeightFile } from '../../lib/index';

/** The repository root. */
export const repoRoot = path.resolve(__dirname, '../..');

/** Options of {@link st}. */
export interface StOptions {
  /** Overrides the u64 little-endian length prefix (default: header bytes + pad). */
  n?: bigint;
  /** Bytes appended to the header JSON and counted in N (spaces by default in the reference writer). */
  pad?: string | Buffer;
}

/**
 * A safetensors image: u64 LE header length, header, data. `header` is an object (JSON.stringify'd), a
 * string (written as UTF-8, for JSON that JSON.stringify cannot produce: duplicate keys, big integers,
 * fractional offsets...), or raw bytes (non-UTF-8 headers).
 */
export function st(header: object | string | Buffer, data: Uint8Array | number[] = [], opts: StOptions = {}): Buffer {
  const h = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const pad = opts.pad === undefined ? Buffer.alloc(0) : Buffer.isBuffer(opts.pad) ? opts.pad : Buffer.from(opts.pad, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(opts.n ?? BigInt(h.length + pad.length));
  return Buffer.concat([prefix, h, pad, Buffer.from(data instanceof Uint8Array ? data : Uint8Array.from(data))]);
}

/** One tensor entry of a header object. */
export function entry(dtype: string, shape: number[], begin: number, end: number): object {
  return { dtype, shape, data_offsets: [begin, end] };
}

/** The raw bytes of a typed array. */
export function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

let counter = 0;

/** Writes `bytes` to a fresh file in `dir` and returns its path. */
export function writeFile(dir: string, bytes: Uint8Array, name?: string): string {
  const p = path.join(dir, name ?? `case-${++counter}.safetensors`);
  fs.writeFileSync(p, bytes);
  return p;
}

/** The open modes every parse case runs through. */
export const OPEN_MODES: { label: string; sync: boolean; io?: 'mmap' | 'pread' }[] = [
  { label: 'openSync', sync: true },
  { label: 'openSync io:mmap', sync: true, io: 'mmap' },
  { label: 'openSync io:pread', sync: true, io: 'pread' },
  { label: 'open', sync: false },
  { label: 'open io:mmap', sync: false, io: 'mmap' },
  { label: 'open io:pread', sync: false, io: 'pread' },
];

/** Opens `p` once in a mode and returns the error (or undefined, closing the file when it opened). */
export async function openError(p: string, mode: (typeof OPEN_MODES)[number], opts: Omit<OpenOptions, 'io' | 'signal'> = {}): Promise<unknown> {
  const o = mode.io ? { ...opts, io: mode.io } : opts;
  let f: WeightFile | undefined;
  try {
    f = mode.sync ? openSync(p, o) : await open(p, o);
  } catch (err) {
    return err;
  }
  f.close();
  return undefined;
}

/** A one-line description of an error for assertion messages. */
function describeErr(err: unknown): string {
  if (err === undefined) return 'no error (the file opened)';
  const e = err as { name?: string; code?: string; message?: string };
  return `${e.name}[${e.code}]: ${e.message}`;
}

/**
 * Asserts that opening `p` fails with `code` in every mode (sync and async; auto, mmap and pread), that the
 * error is a WeightsmithError naming the file, and runs `check` on each error for extra fields.
 */
export async function expectOpenCode(p: string, code: string, opts: Omit<OpenOptions, 'io' | 'signal'> = {},
  check?: (err: Record<string, unknown> & Error) => void, modes = OPEN_MODES): Promise<void> {
  for (const mode of modes) {
    const err = await openError(p, mode, opts);
    const what = `${mode.label} ${path.basename(p)}: got ${describeErr(err)}`;
    expect(err, what).toBeInstanceOf(WeightsmithError);
    expect((err as { code?: string }).code, what).toBe(code);
    expect((err as { path?: string }).path, `${what}: error.path`).toBe(p);
    check?.(err as Record<string, unknown> & Error);
  }
}

/** Asserts that `p` opens in every mode (sync and async; auto, mmap and pread). */
export async function expectOpens(p: string, opts: Omit<OpenOptions, 'io' | 'signal'> = {}): Promise<void> {
  for (const mode of OPEN_MODES) {
    const err = await openError(p, mode, opts);
    expect(describeErr(err), mode.label).toBe(describeErr(undefined));
  }
}

/** Files in `dir` whose names look like weightsmith temp files. */
export function tempFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /\.tmp-\d+-[0-9a-f]+$/.test(n));
}

/** Number of open file descriptors of this process. */
export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** A fresh temporary folder. */
export function mkTemp(prefix = 'ws-bad-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Result of {@link runChild}. */
export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `body` (CommonJS JavaScript, with `ws` bound to lib/index.ts, `fs` and `path` required, and `workDir` a
 * fresh folder for its files) in a child Node process, for cases that could hang or kill the process. The
 * TypeScript sources are transpiled on load with the project's own `typescript`. `body` may use `await`; what
 * it prints is returned. The child is killed (SIGKILL) after `timeoutMs`; `workDir` is removed afterwards
 * however the child ended.
 */
export function runChild(body: string, timeoutMs: number): Promise<ChildResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-child-'));
  const script = path.join(dir, 'child.js');
  fs.mkdirSync(path.join(dir, 'work'));
  fs.writeFileSync(script, `
const fs = require('node:fs');
const path = require('node:path');
const ts = require(${JSON.stringify(path.join(repoRoot, 'node_modules', 'typescript'))});
require.extensions['.ts'] = (m, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  }).outputText;
  m._compile(out, filename);
};
const ws = require(${JSON.stringify(path.join(repoRoot, 'lib', 'index.ts'))});
const workDir = ${JSON.stringify(path.join(dir, 'work'))};
(async () => {
${body}
})().then(() => process.exit(0), (err) => { console.log('UNCAUGHT ' + (err && err.code) + ' ' + (err && err.message)); process.exit(3); });
`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}
