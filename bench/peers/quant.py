# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/quant.js: ggml block quantization, vectorized, on the same element count.

Usage: quant.py quantize|dequantize TYPE N [--check FILE]   (prints one JSON object on stdout)
       quant.py --version

quantize: every type; dequantize: q8_0, q4_0. The formulas are ggml's reference quantizers
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
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "q4_k": 144, "q5_k": 176, "q6_k": 210}
F32 = np.float32


def timed(fn, warmup=WARMUP, reps=REPS):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
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


# ---- k-quants: ggml's reference search (quantize_row_q4_K_ref / q5_K / q6_K, make_qkx2_quants, make_qx_quants),
# vectorized over all sub-blocks at once; sums are np.cumsum along the sub-block (sequential, in f32, like the C
# loops), nearest_int is np.rint (half to even, what the 1.5 * 2^23 trick computes below 2^22).

def seqsum(a):
    return np.cumsum(a, axis=1, dtype=F32)[:, -1]


def rint_i(v):
    return np.rint(v).astype(np.int32)


def make_qkx2(X, W, nmax, rmin, rdelta, nstep):
    mn = X.min(axis=1)
    mx = X.max(axis=1)
    sum_w = seqsum(W)
    sum_x = seqsum(W * X)
    mn = np.where(mn > 0, F32(0), mn).astype(F32)
    flat = mx == mn
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (F32(nmax) / (mx - mn)).astype(F32)
        scale = (F32(1) / iscale).astype(F32)
        L = np.clip(rint_i(iscale[:, None] * (X - mn[:, None])), 0, nmax)
        d = scale[:, None] * L.astype(F32) + mn[:, None] - X
        best = seqsum(W * (d * d))
        cur_min = mn.copy()
        for i in range(nstep + 1):
            iscale = ((F32(rmin) + F32(rdelta) * F32(i) + F32(nmax)) / (mx - cur_min)).astype(F32)
            la = np.clip(rint_i(iscale[:, None] * (X - cur_min[:, None])), 0, nmax)
            lf = la.astype(F32)
            sum_l = seqsum(W * lf)
            sum_l2 = seqsum(W * lf * lf)
            sum_xl = seqsum(W * lf * X)
            D = sum_w * sum_l2 - sum_l * sum_l
            ts = (sum_w * sum_xl - sum_x * sum_l) / D
            tm = (sum_l2 * sum_x - sum_l * sum_xl) / D
            pos = tm > 0
            tm = np.where(pos, F32(0), tm).astype(F32)
            ts = np.where(pos, sum_xl / sum_l2, ts).astype(F32)
            dd = ts[:, None] * lf + tm[:, None] - X
            cur = seqsum(W * (dd * dd))
            better = (D > 0) & (cur < best)
            L = np.where(better[:, None], la, L)
            best = np.where(better, cur, best)
            scale = np.where(better, ts, scale).astype(F32)
            cur_min = np.where(better, tm, cur_min).astype(F32)
    L = np.where(flat[:, None], 0, L)
    scale = np.where(flat, F32(0), scale).astype(F32)
    the_min = np.where(flat, -mn, -cur_min).astype(F32)
    return scale, the_min, L


def k_quant(x, out, nmax, rmin, nstep, five):
    X = x.reshape(-1, 32)
    av = np.sqrt(seqsum(X * X) / F32(32)).astype(F32)
    W = (av[:, None] + np.abs(X)).astype(F32)
    scale, mins, L = make_qkx2(X, W, nmax, rmin, 0.1, nstep)
    nb = X.shape[0] // 8
    scale = scale.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    L = L.reshape(nb, 8, 32)
    max_scale = scale.max(axis=1)
    max_min = mins.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_s = np.where(max_scale > 0, F32(63) / max_scale, F32(0)).astype(F32)
        inv_m = np.where(max_min > 0, F32(63) / max_min, F32(0)).astype(F32)
    ls = np.minimum(rint_i(inv_s[:, None] * scale), 63).astype(np.uint8)
    lm = np.minimum(rint_i(inv_m[:, None] * mins), 63).astype(np.uint8)
    sc = np.zeros((nb, 12), np.uint8)
    sc[:, 0:4] = ls[:, 0:4]
    sc[:, 4:8] = lm[:, 0:4]
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    sc[:, 0:4] |= (ls[:, 4:8] >> 4) << 6
    sc[:, 4:8] |= (lm[:, 4:8] >> 4) << 6
    dh = (max_scale / F32(63)).astype(np.float16)
    mh = (max_min / F32(63)).astype(np.float16)
    out[:, 0:2] = dh.view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = mh.view(np.uint8).reshape(-1, 2)
    out[:, 4:16] = sc
    d = dh.astype(F32)[:, None] * ls.astype(F32)
    dm = mh.astype(F32)[:, None] * lm.astype(F32)
    Xb = X.reshape(nb, 8, 32)
    with np.errstate(divide="ignore", invalid="ignore"):
        Lr = np.clip(rint_i((Xb + dm[:, :, None]) / d[:, :, None]), 0, nmax)
    L = np.where((d != 0)[:, :, None], Lr, L).astype(np.uint8).reshape(nb, 4, 2, 32)
    if not five:
        out[:, 16:144] = (L[:, :, 0, :] | (L[:, :, 1, :] << 4)).reshape(nb, 128)
        return
    lo = L & 0xF
    hi = (L >> 4) & 1
    out[:, 48:176] = (lo[:, :, 0, :] | (lo[:, :, 1, :] << 4)).reshape(nb, 128)
    qh = np.zeros((nb, 32), np.uint8)
    for k in range(4):
        qh |= (hi[:, k, 0, :] << (2 * k)) | (hi[:, k, 1, :] << (2 * k + 1))
    out[:, 16:48] = qh


GROUP_MAX_EPS = F32(1e-15)


def make_qx(X, nmax):
    """make_qx_quants (rmse_type 1, no weights given: w = x^2) over rows of X; returns (scale, L in [0, 2*nmax))."""
    idx = np.abs(X).argmax(axis=1)  # the first of equal magnitudes, like the strict > scan
    mx = np.take_along_axis(X, idx[:, None], axis=1)[:, 0]
    amax = np.abs(mx)
    small = amax < GROUP_MAX_EPS
    W = X * X
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (F32(-nmax) / mx).astype(F32)
        l = np.clip(rint_i(iscale[:, None] * X), -nmax, nmax - 1)
        lf = l.astype(F32)
        sumlx = seqsum(W * X * lf)
        suml2 = seqsum(W * lf * lf)
        scale = np.where(suml2 != 0, sumlx / suml2, F32(0)).astype(F32)
        best = (scale * sumlx).astype(F32)
        L = l + nmax
        for i in [k for k in range(-9, 10) if k != 0]:
            iscale = (-(F32(nmax) + F32(0.1) * F32(i)) / mx).astype(F32)
            l = np.clip(rint_i(iscale[:, None] * X), -nmax, nmax - 1)
            lf = l.astype(F32)
            sumlx = seqsum(W * X * lf)
            suml2 = seqsum(W * lf * lf)
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            L = np.where(better[:, None], l + nmax, L)
            scale = np.where(better, sumlx / suml2, scale).astype(F32)
            best = np.where(better, scale * sumlx, best).astype(F32)
    L = np.where(small[:, None], 0, L)
    scale = np.where(small, F32(0), scale).astype(F32)
    return scale, L


def quantize_q6_k(x, out):
    X = x.reshape(-1, 16)
    scale, L = make_qx(X, 32)
    nb = X.shape[0] // 16
    scale = scale.reshape(nb, 16)
    L = L.reshape(nb, 16, 16)
    i = np.abs(scale).argmax(axis=1)
    max_scale = np.take_along_axis(scale, i[:, None], axis=1)[:, 0]
    zero = np.abs(max_scale) < GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (F32(-128) / max_scale).astype(F32)
        dh = (F32(1) / iscale).astype(np.float16)
        sc = np.minimum(rint_i(iscale[:, None] * scale), 127).astype(np.int8)
        d = dh.astype(F32)[:, None] * sc.astype(F32)
        Xb = X.reshape(nb, 16, 16)
        Lr = np.clip(rint_i(Xb / d[:, :, None]), -32, 31) + 32
    L = np.where((d != 0)[:, :, None], Lr, L).astype(np.uint8).reshape(nb, 2, 4, 32)
    ql = np.empty((nb, 2, 64), np.uint8)
    ql[:, :, :32] = (L[:, :, 0] & 0xF) | ((L[:, :, 2] & 0xF) << 4)
    ql[:, :, 32:] = (L[:, :, 1] & 0xF) | ((L[:, :, 3] & 0xF) << 4)
    qh = (L[:, :, 0] >> 4) | ((L[:, :, 1] >> 4) << 2) | ((L[:, :, 2] >> 4) << 4) | ((L[:, :, 3] >> 4) << 6)
    out[:, 0:128] = ql.reshape(nb, 128)
    out[:, 128:192] = qh.reshape(nb, 64)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = dh.view(np.uint8).reshape(-1, 2)
    out[zero] = 0


def quantize_q4_k(x, out):
    k_quant(x, out, 15, -1.0, 20, False)


def quantize_q5_k(x, out):
    k_quant(x, out, 31, -0.5, 15, True)


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


QUANTIZE = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0, "q4_1": quantize_q4_1, "q5_0": quantize_q5_0, "q5_1": quantize_q5_1,
            "q4_k": quantize_q4_k, "q5_k": quantize_q5_k, "q6_k": quantize_q6_k}
DEQUANTIZE = {"q8_0": dequantize_q8_0, "q4_0": dequantize_q4_0}


def block_elems(typ):
    return 256 if typ.endswith("_k") else 32


def check(op, typ, file):
    """Runs the formula on the case's sample; returns a phrase saying how it compares with ours."""
    raw = np.fromfile(file, dtype=np.uint8)
    n = int(raw[:4].view(np.uint32)[0])
    nb = n // block_elems(typ)
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
    blocks = np.empty((n // block_elems(typ), bb), np.uint8)
    if op == "quantize":
        fn = QUANTIZE[typ]
        if typ.endswith("_k"):  # seconds a call: one timed run
            return timed(lambda: fn(x, blocks), warmup=0, reps=1)
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
    if n % block_elems(typ):
        raise SystemExit(f"N must be a multiple of {block_elems(typ)}")
    samples = run(op, typ, n)
    method = "vectorized"
    if check_file and os.path.exists(check_file):
        method += f" ({check(op, typ, check_file)})"
    print(json.dumps({"method": method, "samples": samples, "variants": {method: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
