# SPDX-License-Identifier: MIT
"""numpy peer of the scheme cases of bench/cases/quant.js: compressed-tensors int RTN (pack-quantized) and FP8
quantization of a [rows, cols] weight, and their dequantization, vectorized, on the same shape and dtype.

Usage: scheme.py quantize|dequantize int BITS GROUP SYM DTYPE ROWS COLS [--check FILE]
       scheme.py quantize|dequantize fp8 GRANULARITY DTYPE ROWS COLS [--check FILE]
       (GROUP: a number, 'channel' or 'tensor'; SYM: 1 or 0; GRANULARITY: tensor, channel or block;
       DTYPE: f32 or bf16). Prints one JSON object on stdout.

The formulas are compressed-tensors' (FORMATS.md b4), every step rounded to the weight dtype as torch does on
an f32 / bf16 tensor: numpy has no bfloat16, so bf16 weights are uint16 arrays widened to float32 exactly and
each result is rounded back to bf16 (round to nearest even) with uint32 arithmetic. Int: min/max per group
widened to include 0; symmetric scale = rw(amax / rw((qmax - qmin) / 2)); asymmetric scale =
rw(rw(max - min) / (qmax - qmin)), zero point round(clamp(rw(qmin - rw(min / scale)))); 0 -> the dtype's
epsilon; codes round(clamp(rw(rw(x / scale) + zp))) (np.round: half to even), offset by 2^(bits-1) and packed
LSB-first into int32 words per row; zero points packed along the rows per group column, [words, groups].
FP8 (e4m3): scale = rw(amax / 448) per tensor / row / 128x128 block, codes e4m3(clamp(rw(x / scale))) by a
vectorized saturating round-to-nearest-even encoder on the float32 bits (numpy has no float8 either).
Dequantization: int (q - zp) * scale rounded to the weight dtype, fp8 code * scale, as float32 outputs.
Each timed call allocates its outputs and temporaries, as natural numpy code does. The data is N(0, 0.02^2)
float32 from numpy's generator (then bf16).

--check FILE: written by the case: a little-endian u32 header length, a JSON header {rows, cols, parts: [[name,
bytes]...]} and the parts' bytes: the input weights in the weight dtype, then our stored parts (quantize) or the
stored parts and our f32 output (dequantize). The peer runs its formula on them and names the parts that differ
from ours in its method string (a difference is a note, not an error).
"""
import json
import os
import sys
import time

import numpy as np

WARMUP = 1
REPS = 3
F32 = np.float32
U32 = np.uint32
EPS = {"f32": F32(2.0 ** -23), "bf16": F32(2.0 ** -7)}


def timed(fn):
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def weights(rows, cols, dtype):
    x = np.random.default_rng(1).standard_normal((rows, cols), dtype=F32) * F32(0.02)
    return x if dtype == "f32" else to_bf16_bits(x)


def to_bf16_bits(a):
    u = a.view(U32)
    return ((u + U32(0x7FFF) + ((u >> U32(16)) & U32(1))) >> U32(16)).astype(np.uint16)


def widen(x, dtype):
    """The weights as float32 (exact)."""
    return x if dtype == "f32" else (x.astype(U32) << U32(16)).view(F32)


def rounder(dtype):
    """rw: round float32 results to the weight dtype (identity for f32)."""
    if dtype == "f32":
        return lambda a: a

    def rw(a):
        a = np.asarray(a, F32)
        u = a.view(U32)
        return ((u + U32(0x7FFF) + ((u >> U32(16)) & U32(1))) & U32(0xFFFF0000)).view(F32)

    return rw


def scale_bytes(sc, dtype):
    return sc.astype(F32) if dtype == "f32" else (sc.astype(F32).view(U32) >> U32(16)).astype(np.uint16)


def scale_values(raw, dtype):
    return raw.view(F32) if dtype == "f32" else (raw.view(np.uint16).astype(U32) << U32(16)).view(F32)


def pack_rows(u, bits):
    """(rows, n) codes < 2^bits -> (rows, ceil(n*bits/32)) int32 words, LSB first."""
    rows, n = u.shape
    per = 32 // bits
    if 32 % bits == 0 and n % per == 0:
        shifts = (np.arange(per, dtype=U32) * U32(bits))
        w = np.bitwise_or.reduce(u.astype(U32).reshape(rows, n // per, per) << shifts, axis=2)
        return w.view(np.int32)
    # general widths: via a bit matrix
    bitm = ((u.astype(U32)[:, :, None] >> np.arange(bits, dtype=U32)) & U32(1)).astype(np.uint8).reshape(rows, n * bits)
    words = (n * bits + 31) // 32
    bitm = np.pad(bitm, ((0, 0), (0, words * 32 - n * bits)))
    return np.packbits(bitm, axis=1, bitorder="little").view("<u4").view(np.int32)


def unpack_rows(w, n, bits):
    rows = w.shape[0]
    per = 32 // bits
    shifts = np.arange(per, dtype=U32) * U32(bits)
    u = (w.view(U32)[:, :, None] >> shifts) & U32((1 << bits) - 1)
    return u.reshape(rows, -1)[:, :n].astype(np.int32)


# ---------------------------------------------------------------------------------------------------- int


def int_quantize(x, dtype, bits, group, sym):
    rw = rounder(dtype)
    xf = widen(x, dtype)
    rows, cols = xf.shape
    qmin, qmax = F32(-(1 << (bits - 1))), F32((1 << (bits - 1)) - 1)
    g = cols if group in ("channel", "tensor") else int(group)
    xg = xf.reshape(1, 1, -1) if group == "tensor" else xf.reshape(rows, cols // g, g)
    mn = np.minimum(xg.min(axis=2), F32(0))
    mx = np.maximum(xg.max(axis=2), F32(0))
    if sym:
        sc = rw(np.maximum(np.abs(mn), np.abs(mx)) / rw((qmax - qmin) / F32(2)))
    else:
        sc = rw(rw(mx - mn) / (qmax - qmin))
    sc = np.where(sc == 0, EPS[dtype], sc).astype(F32)
    q = rw(xg / sc[:, :, None])
    if not sym:
        zp = np.round(np.clip(rw(qmin - rw(mn / sc)), qmin, qmax))
        q = rw(q + zp[:, :, None])
    q = np.round(np.clip(q, qmin, qmax)).astype(np.int32).reshape(rows, cols)
    off = 1 << (bits - 1)
    parts = {"weight_packed": pack_rows(q + off, bits), "weight_scale": scale_bytes(sc.reshape(-1), dtype)}
    if not sym:
        if group == "tensor":
            parts["weight_zero_point"] = zp.astype(np.int32).reshape(1)
        else:
            parts["weight_zero_point"] = np.ascontiguousarray(pack_rows((zp.astype(np.int32) + off).T, bits).T)
    return parts


def int_dequantize(parts, dtype, rows, cols, bits, group, sym):
    rw = rounder(dtype)
    off = 1 << (bits - 1)
    q = unpack_rows(parts["weight_packed"].reshape(rows, -1), cols, bits) - off
    sc = scale_values(parts["weight_scale"], dtype)
    g = cols if group in ("channel", "tensor") else int(group)
    ng = 1 if group == "tensor" else cols // g
    if group == "tensor":
        zp = parts["weight_zero_point"].astype(np.int32).reshape(1, 1) if not sym else np.zeros((1, 1), np.int32)
        return rw((q - zp).astype(F32) * sc.reshape(1, 1))
    if sym:
        zp = np.zeros((rows, ng), np.int32)
    else:
        zp = unpack_rows(np.ascontiguousarray(parts["weight_zero_point"].reshape(-1, ng).T), rows, bits).T - off
    out = (q.reshape(rows, ng, g) - zp[:, :, None]).astype(F32) * sc.reshape(rows, ng, 1)
    return rw(out).reshape(rows, cols)


# ---------------------------------------------------------------------------------------------------- fp8


def e4m3(v):
    """float32 values already clamped to +-448 -> e4m3 codes, round to nearest even (float-bits.h's rule)."""
    b = v.view(U32)
    sign = ((b >> U32(24)) & U32(0x80)).astype(np.uint8)
    ax = b & U32(0x7FFFFFFF)
    r = ax - U32(120 << 23)  # re-bias 127 -> 7 (wraps for small values, which take the other branch)
    r = r + U32((1 << 19) - 1) + ((r >> U32(20)) & U32(1))
    normal = (r >> U32(20)).astype(np.uint8)
    e = (ax >> U32(23)).astype(np.int32) - 127
    shift = np.clip(23 + (1 - 7 - 3) - e, 1, 31).astype(U32)
    mant = (ax & U32(0x7FFFFF)) | U32(0x800000)
    q = mant >> shift
    rem = mant & ((U32(1) << shift) - U32(1))
    half = U32(1) << (shift - U32(1))
    q = q + ((rem > half) | ((rem == half) & ((q & U32(1)) == 1))).astype(U32)
    q = np.where((23 + (1 - 7 - 3) - e > 24) | ((ax >> U32(23)) == 0), U32(0), q).astype(np.uint8)
    return np.where(e < 1 - 7, q, normal) | sign


E4M3_LUT = None


def e4m3_values():
    """The 256 codes' values (decoding; 0x7f / 0xff are NaN)."""
    c = np.arange(256, dtype=np.int32)
    s = np.where(c & 0x80, -1.0, 1.0)
    e = (c >> 3) & 15
    m = c & 7
    v = np.where(e == 0, m * 2.0 ** -9, (8 + m) * 2.0 ** (e.astype(np.float64) - 10))
    v = np.where((c & 0x7F) == 0x7F, np.nan, v)
    return (s * v).astype(F32)


def fp8_groups(rows, cols, granularity):
    if granularity == "channel":
        return 1, cols
    if granularity == "block":
        return 128, 128
    return rows, cols


def fp8_quantize(x, dtype, granularity):
    rw = rounder(dtype)
    xf = widen(x, dtype)
    rows, cols = xf.shape
    br, bc = fp8_groups(rows, cols, granularity)
    xb = xf.reshape(rows // br, br, cols // bc, bc)
    amax = np.abs(xb).max(axis=(1, 3))
    sc = rw(amax / F32(448))
    sc = np.where(sc == 0, EPS[dtype], sc).astype(F32)
    v = np.clip(rw(xb / sc[:, None, :, None]), F32(-448), F32(448))
    return {"weight": e4m3(v.reshape(rows, cols)), "weight_scale": scale_bytes(sc.reshape(-1), dtype)}


def fp8_dequantize(parts, dtype, rows, cols, granularity):
    br, bc = fp8_groups(rows, cols, granularity)
    sc = scale_values(parts["weight_scale"], dtype).reshape(rows // br, 1, cols // bc, 1)
    v = E4M3_LUT[parts["weight"].reshape(rows // br, br, cols // bc, bc)]
    return (v * sc).reshape(rows, cols)


# ---------------------------------------------------------------------------------------------------- main


def quantizer(args):
    if args[0] == "int":
        bits, group, sym, dtype = int(args[1]), args[2], args[3] == "1", args[4]
        rows, cols = int(args[5]), int(args[6])
        q = lambda x: int_quantize(x, dtype, bits, group, sym)
        d = lambda p, r, c: int_dequantize(p, dtype, r, c, bits, group, sym)
    else:
        gran, dtype = args[1], args[2]
        rows, cols = int(args[3]), int(args[4])
        q = lambda x: fp8_quantize(x, dtype, gran)
        d = lambda p, r, c: fp8_dequantize(p, dtype, r, c, gran)
    return q, d, dtype, rows, cols


def read_check(file):
    raw = np.fromfile(file, dtype=np.uint8)
    hl = int(raw[:4].view(np.uint32)[0])
    head = json.loads(bytes(raw[4:4 + hl]).decode())
    parts, off = {}, 4 + hl
    for name, n in head["parts"]:
        parts[name] = raw[off:off + n]
        off += n
    return head, parts


def check(op, q, d, dtype, file):
    head, parts = read_check(file)
    rows, cols = head["rows"], head["cols"]
    xraw = parts.pop("x")
    x = (xraw.view(F32) if dtype == "f32" else xraw.view(np.uint16)).reshape(rows, cols)
    if op == "quantize":
        mine = q(x)
        diffs = [k for k, v in mine.items() if np.ascontiguousarray(v).view(np.uint8).tobytes() != parts[k].tobytes()]
        what = f"parts of a {rows}x{cols} sample"
    else:
        ours = parts.pop("out")
        stored = {k: v.view(np.int32) if k in ("weight_packed", "weight_zero_point") else v for k, v in parts.items()}
        mine = d(stored, rows, cols)
        diffs = ["out"] if mine.astype(F32).view(np.uint32).tobytes() != ours.tobytes() else []
        what = f"dequantized {rows}x{cols} sample"
    return f"byte-equal to ours on the {what}" if not diffs else f"{', '.join(diffs)} differ from ours on the {what}"


def main():
    global E4M3_LUT
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    check_file = None
    if "--check" in args:
        k = args.index("--check")
        check_file = args[k + 1]
        del args[k:k + 2]
    op = args[0]
    q, d, dtype, rows, cols = quantizer(args[1:])
    E4M3_LUT = e4m3_values()
    x = weights(rows, cols, dtype)
    if op == "quantize":
        samples = timed(lambda: q(x))
    else:
        parts = q(x)
        samples = timed(lambda: d(parts, rows, cols))
    method = "vectorized"
    if check_file and os.path.exists(check_file):
        method += f" ({check(op, q, d, dtype, check_file)})"
    print(json.dumps({"method": method, "samples": samples, "variants": {method: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
