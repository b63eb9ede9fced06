// SPDX-License-Identifier: MIT
'use strict';
/**
 * Reading every tensor of a 1 GiB file: open() + get() of each tensor + touching every 4 KiB page, against
 * fs.readFileSync of the same file (plus the same page touch). The file was just written by this run, so it
 * is in the page cache: this measures mapping and copying cost, not the disk.
 */
const fs = require('node:fs');
const { ws, ensureDataFile, timeSync, median, gc, touchPages, cacheState, fmtBytes } = require('../harness');

module.exports = {
  cases: [
    {
      name: 'read 1 GiB, get() all + touch',
      async run() {
        const api = ws();
        const { file, dataBytes } = ensureDataFile();
        const fileBytes = fs.statSync(file).size;
        // Read once untimed so the page-cache state is the same for every variant below.
        fs.readFileSync(file);
        gc();
        const cache = cacheState(file);

        const readAll = (io) => () => {
          const f = api.openSync(file, { io });
          let sum = 0;
          for (const name of f.names()) sum += touchPages(f.getTensor(name).bytes());
          f.close();
          return sum;
        };
        const mmap = timeSync(readAll('mmap'), { warmup: 1, reps: 5, budget: 3, between: gc });
        const pread = timeSync(readAll('pread'), { warmup: 1, reps: 3, between: gc });
        const readFile = timeSync(() => touchPages(fs.readFileSync(file)), { warmup: 1, reps: 5, budget: 3, between: gc });
        const gbps = (s, bytes) => bytes / median(s) / 1e9;
        return {
          size: `${fmtBytes(dataBytes)}, 16 tensors`,
          bytes: dataBytes,
          samples: mmap,
          peer: { label: 'readFileSync', bytes: fileBytes, samples: readFile },
          notes: [
            cache,
            'mmap: get() copies nothing, GB/s is bytes made readable per second',
            `io:'pread' get() (copies): ${gbps(pread, dataBytes).toFixed(2)} GB/s`,
            `readFileSync: ${gbps(readFile, fileBytes).toFixed(2)} GB/s`,
          ],
          metrics: { preadSamples: pread, readFileSyncSamples: readFile, fileBytes, pageCache: cache },
        };
      },
    },
  ],
};
