# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/gemm.js: `a @ b` for float32 matrices (OpenBLAS sgemm, all threads).

Usage: gemm.py N                       (n x n @ n x n; prints one JSON object)
       gemm.py M N K TRANSA TRANSB     (op(a) m x k @ op(b) k x n; TRANSA/TRANSB 0 or 1: the operand is stored
                                        transposed, as k x m / n x k, and used through a transposed view)
       gemm.py --version
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
    if len(args) == 1:
        m = n = k = int(args[0])
        ta = tb = False
    elif len(args) == 5:
        m, n, k = (int(x) for x in args[:3])
        ta, tb = (x == "1" for x in args[3:])
    else:
        sys.exit(__doc__)
    rng = np.random.default_rng(1)
    a = rng.random((k, m) if ta else (m, k), dtype=np.float32) - np.float32(0.5)
    b = rng.random((n, k) if tb else (k, n), dtype=np.float32) - np.float32(0.5)
    opa = a.T if ta else a
    opb = b.T if tb else b
    method = f"{'a.T' if ta else 'a'} @ {'b.T' if tb else 'b'}"
    opa @ opb
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        opa @ opb
        samples.append(time.perf_counter() - t0)
    print(json.dumps({"method": method, "samples": samples, "variants": {method: samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
