# SPDX-License-Identifier: MIT
"""numpy peer of bench/cases/calib.js: the Gram matrix x.T @ x of a calibration batch (numpy dispatches it to
OpenBLAS ssyrk and mirrors the triangle), and the whole SparseGPT-style Hessian update in f32 as the
references write it (H *= n/(n+b); x *= sqrt(2/(n+b)); H += x.T @ x).

Usage: calib.py TOKENS IN [--single]     (prints one JSON object)
       calib.py --version

x is N(0, 1) f32 [TOKENS, IN]. The ratio uses x.T @ x alone (the nominal 2 * TOKENS * IN^2 flops); the full
update is reported as a variant, and so is x.T @ x on one OpenBLAS thread (a child process with
OPENBLAS_NUM_THREADS=1, --single), to compare with the case's one-thread figure on a busy machine.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np


def timed(fn, reps):
    fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    single = "--single" in args
    args = [a for a in args if a != "--single"]
    tokens, n = int(args[0]), int(args[1])
    x = np.random.default_rng(1).standard_normal((tokens, n), dtype=np.float32)
    h = np.zeros((n, n), dtype=np.float32)
    seen = [tokens]

    def gram():
        return x.T @ x

    def update():
        nonlocal h
        b = tokens
        h *= np.float32(seen[0] / (seen[0] + b))
        xs = x * np.float32(np.sqrt(2.0 / (seen[0] + b)))
        h += xs.T @ xs
        seen[0] += b

    reps = 5 if tokens * n * n <= 2 ** 33 else 3
    g = timed(gram, reps)
    if single:
        print(json.dumps({"samples": g}))
        return
    u = timed(update, reps)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    child = subprocess.run([sys.executable, __file__, str(tokens), str(n), "--single"], env=env, capture_output=True,
                           text=True, check=True)
    one = json.loads(child.stdout.strip().splitlines()[-1])["samples"]
    print(json.dumps({"method": "x.T @ x", "samples": g,
                      "variants": {"x.T @ x": g, "H update (reference form)": u, "x.T @ x on 1 OpenBLAS thread": one},
                      "cpuSeconds": time.process_time() + os.times().children_user + os.times().children_system}))


if __name__ == "__main__":
    main()
