"""Cold start of generated kernels, each in a fresh process: derive + generate + compile
to the end of the first train_step.

With an empty kernel folder (SYMNET_CACHE) and an empty Numba cache (NUMBA_CACHE_DIR,
so symnet.runtime compiles too): LeNet-5 first, then a second conv network (digits
CNN) that shares the runtime LeNet-5 compiled, then LeNet-5 again with warm caches.
Each line: seconds after the imports (numpy, symnet) and from the spawn. --repeats
runs the whole sequence several times (fresh folders each) and prints medians.

    python benchmarks/bench_cold_start.py
    python benchmarks/bench_cold_start.py --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import time, sys
t0 = time.perf_counter()
import numpy as np
import symnet
from symnet.codegen import generate
from symnet.codegen.generate import TIMINGS
t1 = time.perf_counter()
net = symnet.load({spec!r})
mod = generate(net)
t2 = time.perf_counter()
p = net.init_params(seed=0)
X = np.zeros((64,) + tuple(net.input_shape), net.dtype)
Y = np.eye(net.output_size if hasattr(net, "output_size") else 10, dtype=net.dtype)[np.zeros(64, int)]
mod.train_step(p, X, Y, 0.01)
t3 = time.perf_counter()
print(f"{{t3 - t1:.3f}} {{time.time():.6f}} derive {{TIMINGS['derive']:.2f}} render {{TIMINGS['render']:.2f}} "
      f"import {{TIMINGS['import']:.2f}} first step {{t3 - t2:.2f}}")
"""

RUNS = (("LeNet-5, empty caches", "lenet", 5.0), ("digits CNN after it (runtime compiled)", "digits_cnn", 2.0),
        ("LeNet-5, warm caches", "lenet", 1.0))


def sequence():
    out = {}
    with tempfile.TemporaryDirectory() as kernels, tempfile.TemporaryDirectory() as numba_cache:
        env = dict(os.environ, SYMNET_CACHE=kernels, NUMBA_CACHE_DIR=numba_cache, PYTHONPATH=str(ROOT))
        for label, example, target in RUNS:
            spawned = time.time()
            res = subprocess.run([sys.executable, "-c", CHILD.format(spec=str(ROOT / "examples" / f"{example}.toml"))],
                                 env=env, capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"{label}: failed\n{res.stderr}")
            after_imports, stepped, *detail = res.stdout.split()
            out[label] = (float(after_imports), float(stepped) - spawned, " ".join(detail))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (a shared machine skews every number)")
    runs = [sequence() for _ in range(args.repeats)]
    for label, _, target in RUNS:
        after = statistics.median(r[label][0] for r in runs)
        spawn = statistics.median(r[label][1] for r in runs)
        print(f"{label}: {after:.2f} s after imports, {spawn:.2f} s from the spawn (median of {len(runs)}; "
              f"target <= {target:g} s: {'met' if spawn <= target else 'MISSED'}); last: {runs[-1][label][2]}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
