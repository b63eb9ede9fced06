# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/gemm.js: `a @ b` for two n x n float32 matrices (OpenBLAS sgemm, all threads).

Usage: gemm.py N      (prints one JSON object)
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
    n = int(args[0])
    rng = np.random.default_rng(1)
    a = rng.random((n, n), dtype=np.float32) - np.float32(0.5)
    b = rng.random((n, n), dtype=np.float32) - np.float32(0.5)
    a @ b
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        samples.append(time.perf_counter() - t0)
    print(json.dumps({"method": "a @ b", "samples": samples, "variants": {"a @ b": samples}, "cpuSeconds": time.process_time()}))


if __name__ == "__main__":
    main()
