// SPDX-License-Identifier: MIT
'use strict';
/**
 * Helpers shared by the cases. Every case runs in its own fresh node process (see run.js); these helpers
 * run inside that process.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const repoRoot = path.resolve(__dirname, '..');

/** The public API, as a user gets it. */
function ws() {
  return require(path.join(repoRoot, 'dist', 'cjs', 'index.js'));
}

/** The internal addon object (convertSync with a backend, memcpyParallel). */
function native() {
  return require(path.join(repoRoot, 'dist', 'cjs', 'native.js')).native;
}

/** The scratch folder of this run; run.js creates it and removes it afterwards. */
function tmpDir() {
  const dir = process.env.WEIGHTSMITH_BENCH_TMP;
  if (!dir) throw new Error('WEIGHTSMITH_BENCH_TMP is not set: run the cases through bench/run.js');
  return dir;
}

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * Runs `fn` `warmup` times untimed, then up to `reps` times timed; returns the timed samples in seconds.
 * Slow kernels get fewer runs: after a warm-up longer than `budget / minReps` seconds no further warm-up
 * is done, and the timed runs are cut to what fits in `budget` seconds (at least `minReps`).
 */
function timeSync(fn, { warmup = 1, reps = 5, minReps = 3, budget = 2, between } = {}) {
  let last = 0;
  for (let i = 0; i < warmup && last <= budget / minReps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    last = seconds(t0);
  }
  const n = Math.max(minReps, Math.min(reps, last > 0 ? Math.floor(budget / last) : reps));
  const samples = [];
  for (let i = 0; i < n; i++) {
    if (between) between();
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(seconds(t0));
  }
  return samples;
}

/** Async twin of {@link timeSync}. */
async function timeAsync(fn, { warmup = 1, reps = 5, minReps = 3, budget = 2, between } = {}) {
  let last = 0;
  for (let i = 0; i < warmup && last <= budget / minReps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    last = seconds(t0);
  }
  const n = Math.max(minReps, Math.min(reps, last > 0 ? Math.floor(budget / last) : reps));
  const samples = [];
  for (let i = 0; i < n; i++) {
    if (between) await between();
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(seconds(t0));
  }
  return samples;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Collects garbage when node runs with --expose-gc (run.js starts cases that way). */
function gc() {
  if (global.gc) global.gc();
}

// 64 Ki samples of N(0, 1) from Box-Muller; elements pick one and jitter its mantissa, so every rounding
// case of a narrowing conversion occurs while filling 256 MiB stays far under a second.
let normals;
function normalTable() {
  if (normals) return normals;
  normals = new Float64Array(1 << 16);
  let s = 0x9e3779b9;
  const uniform = () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < normals.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const a = 2 * Math.PI * uniform();
    normals[i] = r * Math.cos(a);
    normals[i + 1] = r * Math.sin(a);
  }
  return normals;
}

/** Fills a Float32Array with weight-like values, about N(0, std^2), deterministic for a seed. */
function fillWeights(out, seed = 1, std = 0.02) {
  const t = normalTable();
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const r = s >>> 0;
    out[i] = t[r & 0xffff] * std * (1 + ((r >>> 16) - 32768) * 2 ** -22);
  }
  return out;
}

const DATA_TENSORS = 16;
const DATA_SHAPE = [4096, 4096];

/**
 * The ~1 GiB real-data file shared by the read and streaming cases (16 f32 tensors of [4096, 4096]),
 * written once per run with the public writer. Returns its path and data byte count.
 */
function ensureDataFile() {
  const file = path.join(tmpDir(), 'data-1g-f32.safetensors');
  const dataBytes = DATA_TENSORS * DATA_SHAPE[0] * DATA_SHAPE[1] * 4;
  if (fs.existsSync(file)) return { file, dataBytes, created: false };
  const { createWriter, tensor } = ws();
  const names = Array.from({ length: DATA_TENSORS }, (_, i) => `model.layers.${String(i).padStart(2, '0')}.weight`);
  const w = createWriter(file, { plan: names.map((name) => ({ name, dtype: 'f32', shape: DATA_SHAPE })) });
  const buf = new Float32Array(DATA_SHAPE[0] * DATA_SHAPE[1]);
  try {
    names.forEach((name, i) => w.writeSync(name, tensor(fillWeights(buf, i + 1), DATA_SHAPE)));
    w.closeSync();
  } catch (err) {
    w.abort();
    throw err;
  }
  return { file, dataBytes, created: true };
}

/** Fraction of a file's bytes in the page cache, from util-linux `fincore`, or null when unavailable. */
function residentFraction(file) {
  try {
    const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [res, size] = out.trim().split(/\s+/).map(Number);
    return size > 0 ? res / size : null;
  } catch {
    return null;
  }
}

/** The page-cache state of a file, in words. */
function cacheState(file) {
  const f = residentFraction(file);
  return f === null ? 'page cache state unknown (no fincore)' : `${(f * 100).toFixed(0)}% of the file in page cache (warm)`;
}

/** Sums one byte per 4 KiB page, so every page of `u8` is faulted in. */
function touchPages(u8) {
  let sum = 0;
  for (let i = 0; i < u8.length; i += 4096) sum += u8[i];
  return sum;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Bytes for humans, in binary units. */
function fmtBytes(n) {
  if (n >= GiB) return `${+(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${+(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Element counts for humans (64M = 64 * 2^20). */
function fmtCount(n) {
  if (n % MiB === 0) return `${n / MiB}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}

// Check samples: a case writes the data its numpy peer checks against ours into the run's scratch folder; the peer
// runs after it in its own process, and run.js (the parent of both) finds the file by its pid in the name.
const sampleFileName = (tag, runPid) => `sample-${runPid}-${tag.replace(/[^a-z0-9.-]+/gi, '_')}.bin`;

/** Writes a check sample (the buffers concatenated) from a case's process. */
function writeSample(tag, buffers) {
  const bytes = buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  fs.writeFileSync(path.join(tmpDir(), sampleFileName(tag, process.ppid)), Buffer.concat(bytes));
}

/** The check sample a case wrote for `tag`, looked up from run.js's process (when it starts the peer), or null. */
function findSample(tag) {
  const name = sampleFileName(tag, process.pid);
  try {
    for (const d of fs.readdirSync(os.tmpdir())) {
      if (!d.startsWith('weightsmith-bench-')) continue;
      const f = path.join(os.tmpdir(), d, name);
      if (fs.existsSync(f)) return f;
    }
  } catch {
    // no readable tmpdir: no check
  }
  return null;
}

module.exports = {
  writeSample, findSample,
  repoRoot, ws, native, tmpDir, timeSync, timeAsync, median, gc, fillWeights, ensureDataFile, cacheState,
  touchPages, fmtBytes, fmtCount, MiB, GiB,
};
