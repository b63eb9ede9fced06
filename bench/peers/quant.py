# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/quant.js: ggml block quantization, vectorized, on the same element count.

Usage: quant.py quantize|dequantize TYPE N [--check FILE]   (prints one JSON object on stdout)
       quant.py --version

quantize: q8_0, q4_0, q4_1, q5_0, q5_1; dequantize: q8_0, q4_0. The formulas are ggml's reference quantizers
(quantize_row_*_ref), float32 throughout, on the input reshaped to blocks of 32: q8_0 d = amax/127 and codes
roundf(x*id), half away from zero (np.round rounds half to even, so this is trunc plus a correction where the
exact fraction is >= 0.5); q4_0 d = (signed value of largest |x|, the first on ties) / -8 and codes
min(15, int8(x*id + 8.5)); q4_1 d = (max-min)/15, m = min, codes min(15, int8((x-min)*id + 0.5)); q5_0 and
q5_1 the same with 16/31 levels and the fifth bit of every code in the 32-bit qh field. Scales are
stored as fp16 with astype(np.float16) (round to nearest even, like ggml). Each timed call writes the 18-,
20- or 34-byte ggml blocks into a preallocated (blocks, bytes) uint8 array; temporaries are allocated per call,
as natural numpy code does. The data is N(0, 0.02^2) float32 from numpy's generator.

--check FILE: FILE is written by the case ([u32 n][n f32 inputs][our blocks] for quantize, [u32 n][our blocks]
[our n f32 outputs] for dequantize). The peer runs the same formula on it and names the number of blocks (or
elements) that differ from ours in its method string; a difference is a note, not an error.
"""
import json
import os
import sys
import time

import numpy as np

WARMUP = 1
REPS = 3
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24}
F32 = np.float32


def timed(fn):
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def weights(n):
    return np.random.default_rng(1).standard_normal(n, dtype=F32) * F32(0.02)


def inverse(d):
    """id = d ? 1/d : 0, in float32."""
    out = np.zeros_like(d)
    np.divide(F32(1), d, out=out, where=d != 0)
    return out


def fp16_bytes(v):
    return v.astype(np.float16).view(np.uint8).reshape(-1, 2)


def quantize_q8_0(x, out):
    xb = x.reshape(-1, 32)
    d = np.abs(xb).max(axis=1) / F32(127)
    v = xb * inverse(d)[:, None]
    t = np.trunc(v)
    q = np.where(np.abs(v - t) >= F32(0.5), t + np.sign(v), t)  # roundf: half away from zero
    out[:, 0:2] = fp16_bytes(d)
    out[:, 2:] = q.astype(np.int8).view(np.uint8)


def pack_nibbles(v, out):
    """Codes min(15, int8(v)) of (blocks, 32) into 16 bytes a block: element j low, element j+16 high."""
    q = np.minimum(v.astype(np.int8), 15).view(np.uint8)
    out[:, :] = q[:, :16] | (q[:, 16:] << 4)


def quantize_q4_0(x, out):
    xb = x.reshape(-1, 32)
    i = np.abs(xb).argmax(axis=1)  # the first of equal magnitudes, like ggml's strict <
    d = np.take_along_axis(xb, i[:, None], axis=1)[:, 0] / F32(-8)
    out[:, 0:2] = fp16_bytes(d)
    pack_nibbles(xb * inverse(d)[:, None] + F32(8.5), out[:, 2:])  # multiply, then add: two f32 roundings


def quantize_q4_1(x, out):
    xb = x.reshape(-1, 32)
    mn = xb.min(axis=1)
    d = (xb.max(axis=1) - mn) / F32(15)
    out[:, 0:2] = fp16_bytes(d)
    out[:, 2:4] = fp16_bytes(mn)
    pack_nibbles((xb - mn[:, None]) * inverse(d)[:, None] + F32(0.5), out[:, 4:])


def pack_q5(v, cap, out_qh, out_qs):
    """Codes min(cap, int(v)) of (blocks, 32): low nibbles as q4 (j low, j+16 high), bit 4 of code j in bit j of qh."""
    q = np.minimum(v.astype(np.int32), cap).astype(np.uint32)
    lo = (q & 0xF).astype(np.uint8)
    out_qs[:, :] = lo[:, :16] | (lo[:, 16:] << 4)
    hb = ((q >> 4) & 1) << np.arange(32, dtype=np.uint32)
    out_qh[:, :] = np.bitwise_or.reduce(hb, axis=1).astype("<u4").view(np.uint8).reshape(-1, 4)


def quantize_q5_0(x, out):
    xb = x.reshape(-1, 32)
    i = np.abs(xb).argmax(axis=1)
    d = np.take_along_axis(xb, i[:, None], axis=1)[:, 0] / F32(-16)
    out[:, 0:2] = fp16_bytes(d)
    pack_q5(xb * inverse(d)[:, None] + F32(16.5), 31, out[:, 2:6], out[:, 6:])


def quantize_q5_1(x, out):
    xb = x.reshape(-1, 32)
    mn = xb.min(axis=1)
    d = (xb.max(axis=1) - mn) / F32(31)
    out[:, 0:2] = fp16_bytes(d)
    out[:, 2:4] = fp16_bytes(mn)
    pack_q5((xb - mn[:, None]) * inverse(d)[:, None] + F32(0.5), 255, out[:, 4:8], out[:, 8:])


def scales(blocks):
    return blocks[:, 0:2].copy().view(np.float16).astype(F32)  # (blocks, 1)


def dequantize_q8_0(blocks, y):
    np.multiply(blocks[:, 2:].view(np.int8), scales(blocks), out=y.reshape(-1, 32))


def dequantize_q4_0(blocks, y):
    d = scales(blocks)
    qs = blocks[:, 2:]
    yb = y.reshape(-1, 32)
    np.multiply((qs & 0xF).view(np.int8) - np.int8(8), d, out=yb[:, :16])
    np.multiply((qs >> 4).view(np.int8) - np.int8(8), d, out=yb[:, 16:])


QUANTIZE = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0, "q4_1": quantize_q4_1, "q5_0": quantize_q5_0, "q5_1": quantize_q5_1}
DEQUANTIZE = {"q8_0": dequantize_q8_0, "q4_0": dequantize_q4_0}


def check(op, typ, file):
    """Runs the formula on the case's sample; returns a phrase saying how it compares with ours."""
    raw = np.fromfile(file, dtype=np.uint8)
    n = int(raw[:4].view(np.uint32)[0])
    nb = n // 32
    bb = BLOCK_BYTES[typ]
    if op == "quantize":
        x = raw[4:4 + 4 * n].view(F32)
        ours = raw[4 + 4 * n:].reshape(nb, bb)
        mine = np.empty((nb, bb), np.uint8)
        QUANTIZE[typ](x, mine)
        diff = int(np.any(mine != ours, axis=1).sum())
        what = f"{nb} sample blocks"
    else:
        blocks = raw[4:4 + nb * bb].reshape(nb, bb)
        ours = raw[4 + nb * bb:].view(np.uint32)
        mine = np.empty(n, F32)
        DEQUANTIZE[typ](blocks, mine)
        diff = int((mine.view(np.uint32) != ours).sum())
        what = f"{n} sample elements"
    return f"byte-equal to ours on {what}" if diff == 0 else f"{diff} of {what} differ from ours"


def run(op, typ, n):
    bb = BLOCK_BYTES[typ]
    x = weights(n)
    blocks = np.empty((n // 32, bb), np.uint8)
    if op == "quantize":
        fn = QUANTIZE[typ]
        return timed(lambda: fn(x, blocks))
    fn = DEQUANTIZE[typ]
    QUANTIZE[typ](x, blocks)
    y = np.empty(n, F32)
    return timed(lambda: fn(blocks, y))


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    check_file = None
    if "--check" in args:
        k = args.index("--check")
        check_file = args[k + 1]
        del args[k:k + 2]
    op, typ, n = args[0], args[1], int(args[2])
    table = QUANTIZE if op == "quantize" else DEQUANTIZE if op == "dequantize" else None
    if table is None or typ not in table:
        raise SystemExit(f"no numpy peer for {op} {typ}")
    if n % 32:
        raise SystemExit("N must be a multiple of 32")
    samples = run(op, typ, n)
    method = "vectorized"
    if check_file and os.path.exists(check_file):
        method += f" ({check(op, typ, check_file)})"
    print(json.dumps({"method": method, "samples": samples, "variants": {method: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
