# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/convert.js: the same conversion on the same element count, one process.

Usage: convert.py FROM TO N   (prints one JSON object on stdout)
       convert.py --version

f32<->f16 and f32->f64 are numpy casts. numpy has no bfloat16, so bf16 is the usual vectorized bit formula
on uint32 views, the same one weightsmith implements: round to nearest even by adding 0x7FFF plus the lowest
kept bit, then a shift; NaN is kept quiet as (bits >> 16) | 0x40. Every variant writes into preallocated
arrays. For casts the ratio uses the faster of `astype` (allocates its result) and `np.copyto` into a
preallocated array. For formulas it uses the plain whole-array form (the natural numpy code); a cache-blocked
form (the same ufuncs on 32K-element slices, temporaries kept in L2) is timed too and reported alongside.
"""
import json
import os
import sys
import time

import numpy as np

WARMUP = 1
REPS = 5
BLOCK = 1 << 15  # elements per slice of the blocked variants


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
    return np.random.default_rng(1).standard_normal(n, dtype=np.float32) * np.float32(0.02)


def f32_to_bf16(a, out, t, t2, mask):
    """RNE f32 -> bf16 bits into `out` (uint16); t, t2: uint32 scratch, mask: bool scratch."""
    u = a.view(np.uint32)
    np.right_shift(u, 16, out=t)
    np.bitwise_and(t, 1, out=t)
    np.add(t, 0x7FFF, out=t)
    np.add(t, u, out=t)
    np.right_shift(t, 16, out=t)
    np.bitwise_and(u, 0x7FFFFFFF, out=t2)
    np.greater(t2, 0x7F800000, out=mask)
    if mask.any():
        t[mask] = (u[mask] >> 16) | 0x40
    np.copyto(out, t, casting="unsafe")


def blocked(fn, n, block, *arrays):
    """Runs fn over `block`-element slices of `arrays` (cache-sized pieces: temporaries stay in L2)."""
    def go():
        for i in range(0, n, block):
            fn(*(a[i:i + block] for a in arrays))
    return go


def run(src, dst, n):
    """Timed variants, and the one the ratio uses: the faster cast, or the plain (whole-array) formula."""
    a32 = weights(n)
    if src == "f32" and dst in ("f16", "f64"):
        target = np.float16 if dst == "f16" else np.float64
        out = np.empty(n, target)
        variants = {
            "astype": timed(lambda: a32.astype(target)),
            "copyto": timed(lambda: np.copyto(out, a32, casting="unsafe")),
        }
        return variants, None
    if src == "f16" and dst == "f32":
        a16 = a32.astype(np.float16)
        out = np.empty(n, np.float32)
        variants = {
            "astype": timed(lambda: a16.astype(np.float32)),
            "copyto": timed(lambda: np.copyto(out, a16)),
        }
        return variants, None
    B = BLOCK
    if src == "f32" and dst == "bf16":
        out = np.empty(n, np.uint16)
        t, t2, mask = np.empty(n, np.uint32), np.empty(n, np.uint32), np.empty(n, np.bool_)
        bt, bt2, bmask = np.empty(B, np.uint32), np.empty(B, np.uint32), np.empty(B, np.bool_)
        return {
            "formula": timed(lambda: f32_to_bf16(a32, out, t, t2, mask)),
            "formula, blocked": timed(blocked(lambda a, o: f32_to_bf16(a, o, bt[:len(a)], bt2[:len(a)], bmask[:len(a)]), n, B, a32, out)),
        }, "formula"
    if src == "bf16" and dst == "f32":
        bits = (a32.view(np.uint32) >> 16).astype(np.uint16)
        u = np.empty(n, np.uint32)

        def widen(b, w):
            np.copyto(w, b)
            np.left_shift(w, 16, out=w)

        return {
            "formula": timed(lambda: widen(bits, u)),
            "formula, blocked": timed(blocked(widen, n, B, bits, u)),
        }, "formula"
    if src == "f16" and dst == "bf16":
        a16 = a32.astype(np.float16)
        wide = np.empty(n, np.float32)
        out = np.empty(n, np.uint16)
        t, t2, mask = np.empty(n, np.uint32), np.empty(n, np.uint32), np.empty(n, np.bool_)
        bw = np.empty(B, np.float32)
        bt, bt2, bmask = np.empty(B, np.uint32), np.empty(B, np.uint32), np.empty(B, np.bool_)

        def via_f32(h, o, w, t, t2, mask):
            np.copyto(w, h)
            f32_to_bf16(w, o, t, t2, mask)

        def via_f32_block(h, o):
            k = len(h)
            via_f32(h, o, bw[:k], bt[:k], bt2[:k], bmask[:k])

        return {
            "astype+formula": timed(lambda: via_f32(a16, out, wide, t, t2, mask)),
            "astype+formula, blocked": timed(blocked(via_f32_block, n, B, a16, out)),
        }, "astype+formula"
    raise SystemExit(f"no numpy peer for {src}->{dst}")


def main():
    if sys.argv[1:] == ["--version"]:
        seen = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0], "openblasVarsSeen": seen}))
        return
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    variants, primary = run(src, dst, n)
    best = primary or min(variants, key=lambda k: sorted(variants[k])[len(variants[k]) // 2])
    print(json.dumps({"method": best, "samples": variants[best], "variants": variants, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
