# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/sparsity.js: pruning masks, vectorized.

Usage: sparsity.py OP ROWS COLS [--check FILE]     (prints one JSON object)
       sparsity.py --version

OPs: magnitude_row / wanda_row (50% per row: np.argpartition of the scores along the rows, then the pruned
indices scattered into a boolean mask and packed with packbits), magnitude_24 / magnitude_48 (N:M: a stable
argsort of each group of M), apply (w * mask), mask_apply_24 (magnitude 2:4 mask, then applied), compress_24
(compressed-tensors' sparse-24-bitmask: the kept values by boolean indexing and packbits of the mask).

--check FILE: [w f32][norms f32 for wanda][our packed mask]; the peer times its code on that w and compares its
packed mask with ours (argpartition does not order ties like ours, so a few differing rows are possible on
data with exact ties; the case's data has none).
"""
import json
import sys
import time

import numpy as np

F = np.float32


def timed(fn, reps=3):
    fn()
    s = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        s.append(time.perf_counter() - t0)
    return s, out


def row_mask(scores, k):
    idx = np.argpartition(scores, k, axis=-1)[:, :k]
    keep = np.ones(scores.shape, dtype=bool)
    np.put_along_axis(keep, idx, False, axis=-1)
    return np.packbits(keep, axis=-1, bitorder="little")


def nm_mask(scores, n, m):
    r, c = scores.shape
    g = scores.reshape(r, c // m, m)
    order = np.argsort(-g, axis=-1, kind="stable")[..., :n]
    keep = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return keep.reshape(r, c)


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
    op, rows, cols = args[0], int(args[1]), int(args[2])
    n = rows * cols
    raw = np.fromfile(check, dtype=np.uint8) if check else None
    if raw is not None:
        w = raw[:4 * n].view(F).reshape(rows, cols)
    else:
        w = (np.random.default_rng(1).standard_normal((rows, cols), dtype=F) * F(0.02))
    norms = raw[4 * n:4 * n + 4 * cols].view(F) if (raw is not None and op == "wanda_row") else (np.arange(cols, dtype=F) % 7 + 1)
    ours = None
    if op in ("magnitude_row", "wanda_row"):
        fn = (lambda: row_mask(np.abs(w), cols // 2)) if op == "magnitude_row" else (lambda: row_mask(np.abs(w) * norms[None, :], cols // 2))
        ours = raw[4 * n + (4 * cols if op == "wanda_row" else 0):] if raw is not None else None
    elif op in ("magnitude_24", "magnitude_48"):
        m = 4 if op == "magnitude_24" else 8
        fn = lambda: np.packbits(nm_mask(np.abs(w), m // 2, m), axis=-1, bitorder="little")
        ours = raw[4 * n:] if raw is not None else None
    elif op == "apply":
        keep = np.random.default_rng(2).random((rows, cols)) < 0.5
        fn = lambda: w * keep
    elif op == "mask_apply_24":
        fn = lambda: w * nm_mask(np.abs(w), 2, 4)
    elif op == "compress_24":
        keep = nm_mask(np.abs(w), 2, 4)
        pw = w * keep
        fn = lambda: (pw[keep].reshape(rows, cols // 2), np.packbits(keep, axis=-1, bitorder="little"))
    else:
        raise SystemExit(f"unknown op {op}")
    samples, out = timed(fn)
    method = "vectorized"
    if ours is not None:
        diff = int((out.ravel() != ours.ravel()).sum())
        method += " (byte-equal to ours)" if diff == 0 else f" ({diff} mask bytes differ from ours)"
    print(json.dumps({"method": method, "samples": samples, "variants": {method: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
