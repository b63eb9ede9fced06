# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/svd.js: np.linalg.svd(a, full_matrices=False) (LAPACK gesdd through OpenBLAS, all
threads) of one m x n matrix or a stack of b matrices, or np.linalg.qr(a) (reduced), on float32 data.

Usage: svd.py svd M N REPS | svd.py batched B M N REPS | svd.py qr M N REPS   (prints one JSON object)
       svd.py --version
"""
import json
import sys
import time

import numpy as np


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    kind = args[0]
    dims = [int(x) for x in args[1:-1]]
    reps = int(args[-1])
    rng = np.random.default_rng(1)
    a = rng.random(tuple(dims), dtype=np.float32) - np.float32(0.5)
    if kind == "qr":
        method = "np.linalg.qr(a)"
        fn = lambda: np.linalg.qr(a)  # noqa: E731
    else:
        method = "np.linalg.svd(a, full_matrices=False)"
        fn = lambda: np.linalg.svd(a, full_matrices=False)  # noqa: E731
    fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    print(json.dumps({"method": method, "samples": samples, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
