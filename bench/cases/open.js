// SPDX-License-Identifier: MIT
'use strict';
/**
 * open() of a 4 GiB safetensors file. The file is sparse (header, then ftruncate to the full size), so it
 * takes no disk space and no page cache: open() must read only the header, and RSS must not grow with the
 * file size.
 */
const fs = require('node:fs');
const path = require('node:path');
const { ws, tmpDir, timeSync, timeAsync, median, gc, fmtBytes, GiB, MiB } = require('../harness');

const TOTAL = 4 * GiB;
const REPS = 20;

/** A header in the writer's layout: compact JSON padded with spaces to a multiple of 8 bytes. */
function header(count) {
  const each = TOTAL / count;
  const width = String(count - 1).length;
  const parts = ['"__metadata__":{"format":"pt"}'];
  for (let i = 0; i < count; i++) {
    const name = `model.layers.${String(i).padStart(width, '0')}.weight`;
    parts.push(`"${name}":{"dtype":"F32","shape":[${each / 4 / 1024},1024],"data_offsets":[${i * each},${(i + 1) * each}]}`);
  }
  const json = Buffer.from(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

function writeSparse(file, count) {
  const h = header(count);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, h, 0, h.length, 0);
    fs.ftruncateSync(fd, h.length + TOTAL);
  } finally {
    fs.closeSync(fd);
  }
  return h.length;
}

const rss = () => process.memoryUsage.rss();

function openCase(count) {
  return {
    name: `open 4 GiB, ${count} tensors`,
    unit: 'ms',
    targets: { maxMs: 20, rssSlack: 1 * MiB },
    async run() {
      const api = ws();
      const file = path.join(tmpDir(), `sparse-4g-${count}.safetensors`);
      const headerBytes = writeSparse(file, count);
      try {
        const tFirst = process.hrtime.bigint();
        const first = await api.open(file);
        const firstMs = Number(process.hrtime.bigint() - tFirst) / 1e6;
        const names = first.names();
        if (names.length !== count) throw new Error(`open() found ${names.length} tensors, expected ${count}`);
        const mapped = first.isMapped(names[0]);
        first.close();

        // RSS growth of each open, measured around the open alone with the handle still open.
        const growth = [];
        const samples = await timeAsync(async () => {
          const before = rss();
          const f = await api.open(file);
          growth.push(rss() - before);
          f.close();
        }, { warmup: 3, reps: REPS, between: gc });
        // The timed region above includes two rss reads and close(); time open() alone as well, and keep
        // the lower-overhead figure as the result.
        let handle;
        const openOnly = await timeAsync(async () => { handle = await api.open(file); }, {
          warmup: 1, reps: REPS, between: () => { if (handle) handle.close(); handle = undefined; gc(); },
        });
        if (handle) handle.close();
        const syncSamples = timeSync(() => api.openSync(file).close(), { warmup: 3, reps: REPS });

        // A view of one tensor maps it but reads nothing until it is touched.
        gc();
        const f = await api.open(file);
        const before = rss();
        const t = f.getTensor(names[0]);
        const viewGrowth = rss() - before;
        const viewBytes = t.byteLength;
        f.close();

        const maxGrowth = Math.max(...growth);
        return {
          size: `${fmtBytes(TOTAL)} file, ${fmtBytes(headerBytes)} header`,
          samples: openOnly,
          notes: [
            `RSS growth per open: median ${fmtBytes(Math.max(0, median(growth)))}, max ${fmtBytes(Math.max(0, maxGrowth))}`,
            `openSync ${(median(syncSamples) * 1e3).toFixed(2)} ms`,
            `first open in process ${firstMs.toFixed(2)} ms`,
            `get() of a ${fmtBytes(viewBytes)} view: RSS +${fmtBytes(Math.max(0, viewGrowth))}`,
            mapped ? 'mmap' : 'pread (not mapped)',
          ],
          metrics: {
            headerBytes, rssGrowthBytes: growth, medianRssGrowthBytes: median(growth), maxRssGrowthBytes: maxGrowth, openWithRssSamples: samples,
            openSyncSamples: syncSamples, firstOpenMs: firstMs, viewRssGrowthBytes: viewGrowth, mapped,
          },
        };
      } finally {
        fs.rmSync(file, { force: true });
      }
    },
  };
}

module.exports = { cases: [openCase(8), openCase(4096)] };
