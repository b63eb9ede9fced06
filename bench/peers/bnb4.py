# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/bnb4.js: bitsandbytes' 4-bit blockwise quantization, vectorized.

Usage: bnb4.py quantize nf4|fp4 BLOCKSIZE f32|bf16 N plain|dq [--check FILE]   (prints one JSON object)
       bnb4.py --version

The formula of bitsandbytes' torch backend (quantize_4bit): absmax per block, s = clip(x * (1 / absmax)),
q = searchsorted(midpoints of the sorted table, s) (the number of midpoints below s), the table index of the
q-th sorted value, two codes per byte with the first in the high nibble. bf16 input is widened to f32 by a
shift (numpy has no bf16), inside the timed call. dq adds double quantization of absmax (mean offset, blocks
of 256, bucketed among the midpoints of the case's dynamic map).

FILE (written by the case): [N inputs (f32, or bf16 as u16)][our packed codes][our absmax...]. The peer times
its code on that input and compares its output with ours byte for byte; a difference is reported in the
method string. Without FILE it times N(0, 0.02^2) weights.
"""
import json
import sys
import time

import numpy as np

F = np.float32
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=F)
FP4 = (np.array([0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0, -0.0625, -8, -12, -4, -6, -2, -3], dtype=F) / F(12)).astype(F)
MIN = F(1e-38)


def codebook(table):
    order = np.argsort(table, kind="stable")
    s = table[order]
    return order.astype(np.uint8), ((s[:-1] + s[1:]) / F(2)).astype(F)


def dynamic_map():
    data = []
    for i in range(7):
        steps = 2 ** i + 1
        start, end = F(0.1), F(1.0)
        step = F((end - start) / F(steps - 1))
        k = np.arange(steps)
        b = np.where(k < steps // 2, start + step * k.astype(F), end - step * (steps - 1 - k).astype(F)).astype(F)
        means = ((b[:-1] + b[1:]) / F(2)).astype(F)
        scale = F(10.0 ** (i - 6))
        data += list(scale * means) + list(-scale * means)
    return np.sort(np.array(data + [F(0), F(1)], dtype=F))


def blockwise(x, bs, bounds):
    xb = x.reshape(-1, bs)
    absmax = np.abs(xb).max(axis=1)
    s = np.clip(xb * (F(1) / np.maximum(absmax, MIN))[:, None], F(-1), F(1))
    return np.searchsorted(bounds, s.ravel(), side="left"), absmax


def quantize(x, bs, order, bounds, dq, dmap, dbounds):
    q, absmax = blockwise(x, bs, bounds)
    codes = order[q]
    packed = (codes[0::2] << 4) | codes[1::2]
    if not dq:
        return packed, absmax
    offset = F(absmax.mean(dtype=np.float64))
    centered = (absmax - offset).astype(F)
    pad = (-centered.size) % 256  # (absmax counts here are multiples of 256)
    q8, nested = blockwise(np.pad(centered, (0, pad)), 256, dbounds)
    return packed, q8[:centered.size].astype(np.uint8), nested, np.array([offset], dtype=F)


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    check = None
    if "--check" in args:
        k = args.index("--check")
        check = args[k + 1]
        del args[k:k + 2]
    _, typ, bs, dtype, n, mode = args
    bs, n, dq = int(bs), int(n), mode == "dq"
    order, bounds = codebook(NF4 if typ == "nf4" else FP4)
    dmap = dynamic_map()
    dbounds = ((dmap[:-1] + dmap[1:]) / F(2)).astype(F)
    esize = 4 if dtype == "f32" else 2
    raw = np.fromfile(check, dtype=np.uint8) if check else None
    if raw is not None:
        xin = raw[:n * esize].view(F if dtype == "f32" else np.uint16)
    else:
        w = np.random.default_rng(1).standard_normal(n, dtype=F) * F(0.02)
        xin = w if dtype == "f32" else (w.view(np.uint32) >> 16).astype(np.uint16)

    def run():
        x = xin if dtype == "f32" else (xin.astype(np.uint32) << 16).view(F)
        return quantize(x, bs, order, bounds, dq, dmap, dbounds)

    run()
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = run()
        samples.append(time.perf_counter() - t0)
    method = "vectorized"
    if raw is not None:
        mine = np.concatenate([np.ascontiguousarray(a).view(np.uint8).ravel() for a in out])
        ours = raw[n * esize:]
        same = mine.size == ours.size and bool(np.array_equal(mine, ours))
        method += " (byte-equal to ours)" if same else f" ({int((mine[:ours.size] != ours[:mine.size]).sum())} bytes differ from ours)"
    print(json.dumps({"method": method, "samples": samples, "variants": {method: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
