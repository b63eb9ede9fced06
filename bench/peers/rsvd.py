# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/lowrank.js: the same randomized SVD (Halko-Martinsson-Tropp, algorithm 4.4 with
re-orthonormalized power iterations) as weightsmith's randomizedSvd, written with numpy/OpenBLAS:

    Y = A @ G (G Gaussian [n, rank + oversample]); Q = qr(Y)
    repeat power_iters times: Q = qr(A @ qr(A.T @ Q))
    B = Q.T @ A; Ub, S, Vt = svd(B); U = Q @ Ub; keep the top rank

Usage: rsvd.py M N RANK OVERSAMPLE POWER_ITERS --input FILE     (prints one JSON object)
       rsvd.py --version

FILE holds the case's f32 matrix (row-major). The method string carries the relative error
||A - U diag(S) Vt||_F / ||A||_F of the numpy result, to compare errors at equal parameters.
"""
import json
import sys
import time

import numpy as np


def rsvd(a, rank, oversample, power_iters, rng):
    m, n = a.shape
    l = min(rank + oversample, m, n)
    g = rng.standard_normal((n, l), dtype=np.float32)
    q, _ = np.linalg.qr(a @ g)
    for _ in range(power_iters):
        z, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ z)
    b = q.T @ a
    ub, s, vt = np.linalg.svd(b, full_matrices=False)
    return (q @ ub[:, :rank]), s[:rank], vt[:rank]


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    m, n, rank, oversample, power_iters = (int(x) for x in args[:5])
    a = np.fromfile(args[args.index("--input") + 1], dtype=np.float32, count=m * n).reshape(m, n)
    rng = np.random.default_rng(0)
    rsvd(a, rank, oversample, power_iters, rng)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        u, s, vt = rsvd(a, rank, oversample, power_iters, rng)
        samples.append(time.perf_counter() - t0)
    err = float(np.linalg.norm(a - (u * s) @ vt) / np.linalg.norm(a))
    label = f"numpy HMT (rel. error {err:.4g})"
    print(json.dumps({"method": label, "samples": samples, "variants": {label: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
