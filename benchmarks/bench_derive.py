"""Derivation cost: a 100-layer MLP, width 10 and width 4096 (target: <= 2 s,
and the two widths within 20% of each other).

    python benchmarks/bench_derive.py
"""
import statistics
import time

import symnet


def time_derive(depth: int, width: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        net = symnet.Network((width,), [symnet.Dense(width, "tanh") for _ in range(depth - 1)] + [symnet.Dense(10)],
                             loss="softmax_cross_entropy")
        start = time.perf_counter()
        symnet.derive(net)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    start = time.perf_counter()
    symnet.derive(symnet.Network((3,), [symnet.Dense(3, "tanh"), symnet.Dense(2)], loss="softmax_cross_entropy"))
    print(f"first derive in a process (SymPy caches cold): {time.perf_counter() - start:.2f} s")
    narrow, wide = time_derive(100, 10), time_derive(100, 4096)
    print(f"derive, 100 layers, width 10:   {narrow:.3f} s (median of 5)")
    print(f"derive, 100 layers, width 4096: {wide:.3f} s (median of 5)")
    print(f"ratio wide/narrow: {wide / narrow:.2f}")
