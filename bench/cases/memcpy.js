// SPDX-License-Identifier: MIT
'use strict';
/** The baseline every memory-bound case is compared with: memcpy on the native pool, 2 threads. */
const { ws, native, timeSync, median, fmtBytes } = require('../harness');

const BYTES = 256 * 1024 * 1024;

module.exports = {
  cases: [
    {
      name: 'memcpy',
      baseline: true,
      async run() {
        const api = ws();
        const addon = native();
        api.setThreads(2);
        const src = new Uint8Array(BYTES).fill(1);
        const dst = new Uint8Array(BYTES);
        const samples = timeSync(() => addon.memcpyParallel(dst, src), { warmup: 2, reps: 11 });
        // libc memcpy on one thread, for scale: shows how much a second thread adds on this machine.
        const one = timeSync(() => Buffer.from(dst.buffer).set(src), { warmup: 1, reps: 5 });
        const oneGbps = (2 * BYTES) / median(one) / 1e9;
        return {
          size: `${fmtBytes(BYTES)} -> ${fmtBytes(BYTES)}`,
          bytes: 2 * BYTES,
          samples,
          notes: [`1 thread (TypedArray.set): ${oneGbps.toFixed(1)} GB/s`],
          metrics: { oneThreadGbps: oneGbps, threads: api.getThreads(), cpu: api.cpuInfo() },
        };
      },
    },
  ],
};
