# SPDX-License-Identifier: MIT
"""numpy / scipy peer of bench/cases/factor.js (OpenBLAS + LAPACK, all threads).

Usage: factor.py cholesky N   numpy.linalg.cholesky of an N x N f32 SPD matrix
       factor.py chain N      the GPTQ inverse chain in f32: scipy.linalg.lapack spotrf -> spotri -> spotrf (upper)
                              (variant: numpy cholesky -> scipy cho_solve of the identity -> numpy cholesky, .T)
       factor.py dgemm N      f64 a @ b
       factor.py --version    (each prints one JSON object)
"""
import json
import sys
import time

import numpy as np
import scipy
import scipy.linalg
import scipy.linalg.lapack as lapack

def hessian(n):
    rng = np.random.default_rng(7)
    k = n + 64
    x = rng.random((n, k), dtype=np.float32) - np.float32(0.5)
    h = (x @ x.T) / np.float32(k)
    h[np.diag_indices(n)] += np.float32(0.01)
    return h

def timed(fn, reps):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out

def chain_lapack_full(h):
    c, info = lapack.spotrf(h, lower=1, clean=0)
    inv, info = lapack.spotri(c, lower=1)
    inv = np.tril(inv) + np.tril(inv, -1).T
    u, info = lapack.spotrf(inv, lower=0, clean=1)
    return u

def chain_numpy(h):
    n = h.shape[0]
    l = np.linalg.cholesky(h)
    inv = scipy.linalg.cho_solve((l, True), np.eye(n, dtype=np.float32))
    return np.linalg.cholesky(inv).T

def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "scipy": scipy.__version__, "python": sys.version.split()[0]}))
        return
    what, n = args[0], int(args[1])
    if what == "cholesky":
        h = hessian(n)
        s = timed(lambda: np.linalg.cholesky(h), 5)
        res = {"method": "numpy.linalg.cholesky", "samples": s, "variants": {"numpy.linalg.cholesky": s}}
    elif what == "chain":
        h = hessian(n)
        s = timed(lambda: chain_lapack_full(h), 3)
        v = timed(lambda: chain_numpy(h), 3)
        res = {"method": "spotrf -> spotri -> mirror -> spotrf (upper)", "samples": s,
               "variants": {"lapack potrf/potri/potrf": s, "numpy cholesky + cho_solve(I) + cholesky": v}}
    elif what == "dgemm":
        rng = np.random.default_rng(1)
        a = rng.random((n, n)) - 0.5
        b = rng.random((n, n)) - 0.5
        s = timed(lambda: a @ b, 5)
        res = {"method": "a @ b (f64)", "samples": s, "variants": {"a @ b": s}}
    else:
        raise SystemExit("unknown case " + what)
    res["cpuSeconds"] = time.process_time()
    print(json.dumps(res))

if __name__ == "__main__":
    main()
