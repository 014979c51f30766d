"""Cold start of generated kernels, each in a fresh process: derive + generate + compile
to the end of the first train_step.

With an empty kernel folder (SYMNET_CACHE) and an empty Numba cache (NUMBA_CACHE_DIR,
so symnet.runtime compiles too): LeNet-5 first, then a second conv network (digits
CNN) that shares the runtime LeNet-5 compiled, then LeNet-5 again with warm caches.
Each line: seconds after the imports (numpy, symnet), from the spawn, and the
child's CPU time (on a shared machine the CPU time is what an idle one would
show as wall time: compiling is single-threaded). --repeats runs the whole
sequence several times (fresh folders each) and prints medians.
--runtime-compiled keeps Numba's own cache, so symnet.runtime is compiled once
per machine beforehand and only the network's kernels start cold. --root times
another checkout (e.g. `git archive OLD | tar -x -C /tmp/old`).

    python benchmarks/bench_cold_start.py
    python benchmarks/bench_cold_start.py --repeats 3 --runtime-compiled
    python benchmarks/bench_cold_start.py --root /tmp/old
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
RUNTIME_COLD = True   # NUMBA_CACHE_DIR empty too (--runtime-compiled keeps the machine's Numba cache)

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
print(f"{{t3 - t1:.3f}} {{time.time():.6f}} {{time.process_time():.3f}} derive {{TIMINGS['derive']:.2f}} render {{TIMINGS['render']:.2f}} "
      f"import {{TIMINGS['import']:.2f}} first step {{t3 - t2:.2f}}")
"""

RUNS = (("LeNet-5, empty caches", "lenet", 5.0), ("digits CNN after it (runtime compiled)", "digits_cnn", 2.0),
        ("LeNet-5, warm caches", "lenet", 1.0))


def sequence():
    out = {}
    with tempfile.TemporaryDirectory() as kernels, tempfile.TemporaryDirectory() as numba_cache:
        env = dict(os.environ, SYMNET_CACHE=kernels, NUMBA_CACHE_DIR=numba_cache, PYTHONPATH=str(ROOT))
        if not RUNTIME_COLD:   # symnet.runtime compiled once per machine, before: its cache is kept
            env.pop("NUMBA_CACHE_DIR")
            subprocess.run([sys.executable, "-c", CHILD.format(spec=str(ROOT / "examples" / "lenet.toml"))],
                           env=dict(env, SYMNET_CACHE=tempfile.mkdtemp()), capture_output=True, check=True)
        for label, example, target in RUNS:
            spawned = time.time()
            res = subprocess.run([sys.executable, "-c", CHILD.format(spec=str(ROOT / "examples" / f"{example}.toml"))],
                                 env=env, capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"{label}: failed\n{res.stderr}")
            after_imports, stepped, cpu, *detail = res.stdout.split()
            out[label] = (float(after_imports), float(stepped) - spawned, float(cpu), " ".join(detail))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--root", help="the checkout to time (default: this one; e.g. an older commit's)")
    parser.add_argument("--runtime-compiled", action="store_true",
                        help="keep Numba's own cache (symnet.runtime compiled once per machine): "
                             "only the kernel folder starts empty")
    args = parser.parse_args()
    global ROOT, RUNTIME_COLD
    ROOT = Path(args.root).resolve() if args.root else ROOT
    RUNTIME_COLD = not args.runtime_compiled
    print(f"load average {os.getloadavg()[0]:.2f} (a shared machine skews every number)")
    runs = [sequence() for _ in range(args.repeats)]
    for label, _, target in RUNS:
        after = statistics.median(r[label][0] for r in runs)
        spawn = statistics.median(r[label][1] for r in runs)
        cpu = statistics.median(r[label][2] for r in runs)
        print(f"{label}: {after:.2f} s after imports, {spawn:.2f} s from the spawn, {cpu:.2f} s CPU time "
              f"(median of {len(runs)}; target <= {target:g} s: {'met' if spawn <= target else 'MISSED'} "
              f"(wall), {'met' if cpu <= target else 'MISSED'} (CPU)); last: {runs[-1][label][3]}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
