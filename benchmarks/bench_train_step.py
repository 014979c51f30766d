"""Train-step benchmark: symnet's generated kernels against numpy, PyTorch eager and JAX jit.

One process, every implementation in the same run, float32, same data and
weights; each number is the median of many repeats of one SGD step
(forward + backward + update). Prints ms per step, the ratio to the fastest
peer and GFLOP/s (2*m*n_in*n_out per matrix product: forward, dW and the delta
of every layer but the first), next to numpy's float32 matmul GFLOP/s.

    python benchmarks/bench_train_step.py            # both networks
    python benchmarks/bench_train_step.py --cold     # also cold/warm start times
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THREADS = 2


def _median_time(fn, repeats, inner=1):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def _flops(sizes, m):
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * m * a * b for a, b in pairs)
    dw = fwd
    dx = sum(2 * m * a * b for a, b in pairs[1:])
    return fwd + dw + dx


# ------------------------------------------------------------------ peers
def numpy_step(sizes, acts, loss):
    """Hand-written numpy float32 train step (the textbook implementation)."""
    def act(name, z):
        return np.maximum(z, 0) if name == "relu" else np.tanh(z) if name == "tanh" else z

    def dact(name, z, a):
        return (z > 0).astype(np.float32) if name == "relu" else (1 - a * a) if name == "tanh" else 1

    def step(params, X, Y, lr):
        As, Zs = [X], []
        n = len(sizes) - 1
        for k in range(n):
            z = As[-1] @ params[f"W{k+1}"].T + params[f"b{k+1}"]
            Zs.append(z)
            As.append(act(acts[k], z))
        m = X.shape[0]
        z = Zs[-1]
        if loss == "softmax_cross_entropy":
            zmax = z.max(axis=1, keepdims=True)
            e = np.exp(z - zmax)
            s = e.sum(axis=1, keepdims=True)
            value = float(np.mean(np.log(s[:, 0]) + zmax[:, 0] - (Y * z).sum(axis=1)))
            D = (e / s - Y) / np.float32(m)
        else:
            diff = As[-1] - Y
            value = float(np.mean(diff * diff))
            D = np.float32(2.0 / diff.size) * diff
        for k in range(n - 1, -1, -1):
            W = params[f"W{k+1}"]
            gW = D.T @ As[k]
            gb = D.sum(axis=0)
            if k > 0:
                D = (D @ W) * dact(acts[k - 1], Zs[k - 1], As[k])
            W -= np.float32(lr) * gW
            params[f"b{k+1}"] -= np.float32(lr) * gb
        return value
    return step


def torch_step(sizes, acts, loss):
    import torch
    torch.set_num_threads(THREADS)
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
        if acts[k] == "relu":
            layers.append(torch.nn.ReLU())
        elif acts[k] == "tanh":
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    crit = torch.nn.CrossEntropyLoss() if loss == "softmax_cross_entropy" else torch.nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def load(params):
        with torch.no_grad():
            for k, lin in enumerate(l for l in model if isinstance(l, torch.nn.Linear)):
                lin.weight.copy_(torch.from_numpy(params[f"W{k+1}"]))
                lin.bias.copy_(torch.from_numpy(params[f"b{k+1}"]))

    def prepare(X, Y):
        Xt = torch.from_numpy(X)
        Yt = torch.from_numpy(Y.argmax(axis=1)) if loss == "softmax_cross_entropy" else torch.from_numpy(Y)
        return Xt, Yt

    def step(Xt, Yt):
        opt.zero_grad(set_to_none=False)
        value = crit(model(Xt), Yt)
        value.backward()
        opt.step()
        return value.item()
    return load, prepare, step


def jax_step(sizes, acts, loss):
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}")
    import jax
    import jax.numpy as jnp

    def fwd(params, X):
        h = X
        for k in range(len(sizes) - 1):
            h = h @ params[f"W{k+1}"].T + params[f"b{k+1}"]
            if acts[k] == "relu":
                h = jax.nn.relu(h)
            elif acts[k] == "tanh":
                h = jnp.tanh(h)
        return h

    def loss_fn(params, X, Y):
        out = fwd(params, X)
        if loss == "softmax_cross_entropy":
            return jnp.mean(jax.nn.logsumexp(out, axis=1) - jnp.sum(Y * out, axis=1))
        return jnp.mean((out - Y) ** 2)

    @jax.jit
    def step(params, X, Y):
        value, grads = jax.value_and_grad(loss_fn)(params, X, Y)
        return value, jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
    return step


# --------------------------------------------------------------- benchmark
def bench(name, sizes, acts, loss, batch, repeats, inner):
    from symnet import Dense, Network
    from symnet.codegen import generate

    net = Network(sizes[0], [Dense(n, a) for n, a in zip(sizes[1:], acts)], loss=loss, name=name, dtype="float32")
    mod = generate(net)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    if loss == "softmax_cross_entropy":
        Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    else:
        Y = rng.standard_normal((batch, sizes[-1])).astype(np.float32)
    params0 = net.init_params(seed=0)
    lr = 1e-4   # small: the weights barely move over thousands of repeats

    results = {}
    p = {k: v.copy() for k, v in params0.items()}
    results["symnet"] = _median_time(lambda: mod.train_step(p, X, Y, lr), repeats, inner)

    p = {k: v.copy() for k, v in params0.items()}
    np_step = numpy_step(sizes, acts, loss)
    results["numpy"] = _median_time(lambda: np_step(p, X, Y, lr), repeats, inner)

    try:
        load, prepare, tstep = torch_step(sizes, acts, loss)
        load(params0)
        Xt, Yt = prepare(X, Y)
        results["torch eager"] = _median_time(lambda: tstep(Xt, Yt), repeats, inner)
    except ImportError:
        pass
    try:
        import jax
        jstep = jax_step(sizes, acts, loss)
        state = {"p": {k: jax.numpy.asarray(v) for k, v in params0.items()}}
        Xj, Yj = jax.numpy.asarray(X), jax.numpy.asarray(Y)

        def run():
            value, state["p"] = jstep(state["p"], Xj, Yj)
            value.block_until_ready()
        results["jax jit"] = _median_time(run, repeats, inner)
    except ImportError:
        pass

    flops = _flops(sizes, batch)
    A = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    B = rng.standard_normal((sizes[1], sizes[0])).astype(np.float32)
    out = np.empty((batch, sizes[1]), np.float32)
    t_mm = _median_time(lambda: np.dot(A, B.T, out=out), repeats, inner)
    mm_gflops = 2 * batch * sizes[0] * sizes[1] / t_mm / 1e9

    peers = {k: v for k, v in results.items() if k != "symnet"}
    fastest = min(peers, key=peers.get)
    print(f"\n{name}: {'-'.join(map(str, sizes))} batch {batch}, {loss}, float32, {THREADS} threads")
    for k, v in results.items():
        print(f"  {k:12s} {v * 1e3:9.4f} ms  {flops / v / 1e9:7.1f} GFLOP/s  "
              f"{v / results[fastest]:5.2f}x fastest peer")
    print(f"  symnet / fastest peer ({fastest}): {results['symnet'] / peers[fastest]:.3f}")
    print(f"  numpy float32 matmul ({batch}x{sizes[0]} @ {sizes[0]}x{sizes[1]}): {mm_gflops:.1f} GFLOP/s; "
          f"symnet reaches {flops / results['symnet'] / 1e9 / mm_gflops * 100:.0f}% of it")
    return results


COLD = r"""
import time, sys
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import numpy as np
from symnet import Dense, Network
from symnet.codegen import generate
from symnet.codegen.generate import TIMINGS
net = Network(784, [Dense(256, "relu"), Dense(128, "relu"), Dense(10)], loss="softmax_cross_entropy",
              name="bench_cold", dtype="float32")
t1 = time.perf_counter()
mod = generate(net)
t2 = time.perf_counter()
p = net.init_params(seed=0)
X = np.zeros((128, 784), np.float32); Y = np.eye(10, dtype=np.float32)[np.zeros(128, int)]
mod.train_step(p, X, Y, 0.01)
t3 = time.perf_counter()
print(f"imports {{t1 - t0:.2f}} s, generate {{t2 - t1:.2f}} s (derive {{TIMINGS['derive']:.2f}}, "
      f"render {{TIMINGS['render']:.2f}}, import {{TIMINGS['import']:.2f}}), "
      f"first train_step (compile or cache load) {{t3 - t2:.2f}} s, total {{t3 - t0:.2f}} s")
"""


def cold_start():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMNET_CACHE=cache)
        code = COLD.format(root=str(ROOT))
        for label in ("cold (empty cache: derive + render + compile)", "warm cache, fresh process"):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            print(f"  {label}: {out.stdout.strip()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cold", action="store_true", help="also time cold and warm-cache starts")
    args = parser.parse_args()
    bench("bench_mlp", [784, 256, 128, 10], ["relu", "relu", "identity"], "softmax_cross_entropy", 128,
          args.repeats, 1)
    bench("bench_tiny", [2, 16, 16, 1], ["tanh", "tanh", "identity"], "mse", 32, args.repeats, 50)
    if args.cold:
        print("\nstart-up, 784-256-128-10 network:")
        cold_start()


if __name__ == "__main__":
    main()
