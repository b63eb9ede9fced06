// SPDX-License-Identifier: MIT
'use strict';
/**
 * `weightsmith convert in out --dtype bf16` on the 1 GiB f32 file, in-process through the CLI's own entry
 * point: open, chunked read, conversion on the pool, streaming writer, fsync and rename. Compared with an
 * I/O floor that moves the same bytes without converting: chunked reads of the input and writes of an
 * output of the same size, then fsync and rename.
 */
const fs = require('node:fs');
const path = require('node:path');
const { repoRoot, ws, tmpDir, ensureDataFile, median, cacheState, fmtBytes } = require('../harness');

const CHUNK = 64 * 1024 * 1024;
const REPS = 5;

/** Reads `input` in chunks and writes `outBytes` bytes to `output` (fsync + rename), converting nothing. */
function ioFloor(input, output, inBytes, outBytes, fsyncSeconds) {
  const buf = Buffer.alloc(CHUNK);
  const fin = fs.openSync(input, 'r');
  const tmp = `${output}.tmp`;
  const fout = fs.openSync(tmp, 'w');
  try {
    let read = 0;
    let written = 0;
    while (read < inBytes) {
      const n = fs.readSync(fin, buf, 0, Math.min(CHUNK, inBytes - read), read);
      if (n <= 0) throw new Error('short read');
      read += n;
      // The converted chunk is half the size (f32 -> bf16).
      const w = Math.min(n / 2, outBytes - written);
      fs.writeSync(fout, buf, 0, w, written);
      written += w;
    }
    const t0 = process.hrtime.bigint();
    fs.fsyncSync(fout);
    fsyncSeconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    fs.closeSync(fin);
    fs.closeSync(fout);
  }
  fs.renameSync(tmp, output);
}

module.exports = {
  cases: [
    {
      name: 'stream convert 1 GiB f32->bf16',
      async run() {
        ws().setThreads(2);
        const { main } = require(path.join(repoRoot, 'dist', 'cjs', 'cli', 'index.js'));
        const { file, dataBytes } = ensureDataFile();
        const inBytes = fs.statSync(file).size;
        const out = path.join(tmpDir(), 'stream-out-bf16.safetensors');
        const floorOut = path.join(tmpDir(), 'stream-floor.bin');
        const cleanup = () => {
          fs.rmSync(out, { force: true });
          fs.rmSync(floorOut, { force: true });
        };
        const cache = cacheState(file);
        let outBytes = 0;
        const messages = [];
        const io = { out: (s) => messages.push(s), err: (s) => messages.push(s) };
        try {
          const convertOnce = async () => {
            const code = await main(['convert', file, out, '--dtype', 'bf16', '--json'], io);
            if (code !== 0) throw new Error(`weightsmith convert exited ${code}: ${messages.join('')}`);
            outBytes = fs.statSync(out).size;
          };
          const fsyncSeconds = [];
          const floorOnce = () => ioFloor(file, floorOut, inBytes, outBytes, fsyncSeconds);
          // Page-cache writes on this kind of machine stall now and then for hundreds of ms (fresh guest
          // memory, writeback): alternate the two so both see the same conditions, and take medians.
          const samples = [];
          const floor = [];
          for (let i = 0; i < 1 + REPS; i++) {
            cleanup();
            let t0 = process.hrtime.bigint();
            await convertOnce();
            if (i > 0) samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
            cleanup();
            t0 = process.hrtime.bigint();
            floorOnce();
            if (i > 0) floor.push(Number(process.hrtime.bigint() - t0) / 1e9);
          }
          const fsyncMedian = median(fsyncSeconds.slice(1));
          return {
            size: `${fmtBytes(inBytes)} -> ${fmtBytes(outBytes)}`,
            bytes: inBytes + outBytes,
            samples,
            peer: { label: 'read+write+fsync', bytes: inBytes + outBytes, samples: floor },
            notes: [
              `input ${cache}`,
              `I/O floor (same bytes, no conversion, fsync): ${((inBytes + outBytes) / median(floor) / 1e9).toFixed(2)} GB/s`,
              `fsync of ${fmtBytes(outBytes)} alone: ${(fsyncMedian * 1e3).toFixed(0)} ms (both include it)`,
            ],
            metrics: { dataBytes, inBytes, outBytes, floorSamples: floor, floorFsyncSeconds: fsyncSeconds.slice(1) },
          };
        } finally {
          cleanup();
        }
      },
    },
  ],
};
