"""Train-step benchmark: symnet's generated kernels against numpy, PyTorch eager and JAX jit.

One process, every implementation in the same run, float32, same data and
weights; each number is the median of many repeats of one SGD step
(forward + backward + update). The implementations take turns in blocks of
20 timed steps, each block after a 0.1 s pause and 2 untimed steps (the machine
is shared: a slow phase then hits all of them, while no implementation runs
beside the still-spinning thread pool of the one before; the min is printed
too). Prints ms per step, the ratio to the fastest peer and GFLOP/s
(2*m*n_in*n_out per matrix product: forward, dW and the delta of every layer
but the first), next to numpy's float32 matmul GFLOP/s.

Networks: two MLPs (784-256-128-10 batch 128, 2-16-16-1 batch 32; peers numpy,
torch eager, JAX jit) and LeNet-5 (examples/lenet.toml, batch 64; peers torch
eager nn.Sequential + optim.SGD and JAX jit with lax.conv_general_dilated and
reduce_window max pooling; GFLOP/s from forward, dW and dx of every conv and
dense layer, no dx for the first). symnet and torch run LeNet at 2 and at 1
thread (the generated module's set_num_threads: how many shares of the batch
it runs at once; torch.set_num_threads). Before LeNet is timed, the initial
loss and gradients of symnet, torch and JAX are compared. Target for LeNet:
symnet (at its default thread count, the usable cores) / fastest peer <= 0.67;
the best symnet thread count is reported too.

    python benchmarks/bench_train_step.py                # all networks
    python benchmarks/bench_train_step.py --only cnn     # LeNet-5 only (mlp: the two MLPs)
    python benchmarks/bench_train_step.py --cold         # also cold/warm start times
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


BLOCK, WARM, PAUSE = 20, 2, 0.1


def _interleaved(fns, repeats, block=BLOCK, warm=WARM, pause=PAUSE):
    """Median and min seconds per call of each fn, from at least `repeats` timed calls.

    ``fns``: name -> fn, or name -> (setup, fn) where setup() runs before each
    block (e.g. sets a thread count). The fns take turns in blocks of `block`
    timed calls, each block after a `pause` and `warm` untimed calls: thread
    pools (OpenBLAS, OpenMP, XLA's) spin for a while after their work, and on a
    2-core machine the previous implementation's spinning threads would
    otherwise slow the next one down several-fold. Taking turns still spreads a
    slow phase of the shared machine over all of them.
    """
    pairs = {k: (v if isinstance(v, tuple) else (None, v)) for k, v in fns.items()}
    for setup, fn in pairs.values():
        if setup is not None:
            setup()
        fn()
        fn()
    block = max(1, min(block, repeats))
    rounds = -(-repeats // block)
    times = {k: [] for k in pairs}
    for _ in range(rounds):
        for k, (setup, fn) in pairs.items():
            if setup is not None:
                setup()
            time.sleep(pause)
            for _ in range(warm):
                fn()
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


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

    def repeat(fn):
        def run():
            for _ in range(inner):
                fn()
        return run

    fns = {}
    p_sym = {k: v.copy() for k, v in params0.items()}
    fns["symnet"] = repeat(lambda: mod.train_step(p_sym, X, Y, lr))

    p_np = {k: v.copy() for k, v in params0.items()}
    np_step = numpy_step(sizes, acts, loss)
    fns["numpy"] = repeat(lambda: np_step(p_np, X, Y, lr))

    try:
        load, prepare, tstep = torch_step(sizes, acts, loss)
        load(params0)
        Xt, Yt = prepare(X, Y)
        fns["torch eager"] = repeat(lambda: tstep(Xt, Yt))
    except ImportError:
        pass
    try:
        import jax
        jstep = jax_step(sizes, acts, loss)
        state = {"p": {k: jax.numpy.asarray(v) for k, v in params0.items()}}
        Xj, Yj = jax.numpy.asarray(X), jax.numpy.asarray(Y)

        def jrun():
            value, state["p"] = jstep(state["p"], Xj, Yj)
            value.block_until_ready()
        fns["jax jit"] = repeat(jrun)
    except ImportError:
        pass

    # The implementations take turns (see _interleaved); one timed call is `inner` steps.
    timed = {k: (med / inner, low / inner) for k, (med, low) in _interleaved(fns, repeats).items()}
    results = {k: v[0] for k, v in timed.items()}

    flops = _flops(sizes, batch)
    A = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    B = rng.standard_normal((sizes[1], sizes[0])).astype(np.float32)
    out = np.empty((batch, sizes[1]), np.float32)
    t_mm = _median_time(lambda: np.dot(A, B.T, out=out), repeats, inner)
    mm_gflops = 2 * batch * sizes[0] * sizes[1] / t_mm / 1e9

    peers = {k: v for k, v in results.items() if k != "symnet"}
    fastest = min(peers, key=peers.get)
    print(f"\n{name}: {'-'.join(map(str, sizes))} batch {batch}, {loss}, float32, {THREADS} threads; "
          f"median (min) of {repeats}+ timed calls of {inner} step{'s' if inner > 1 else ''}, taking turns")
    for k, v in results.items():
        print(f"  {k:12s} {v * 1e3:9.4f} ms ({timed[k][1] * 1e3:8.4f})  {flops / v / 1e9:7.1f} GFLOP/s  "
              f"{v / results[fastest]:5.2f}x fastest peer")
    print(f"  symnet / fastest peer ({fastest}): {results['symnet'] / peers[fastest]:.3f}")
    print(f"  numpy float32 matmul ({batch}x{sizes[0]} @ {sizes[0]}x{sizes[1]}): {mm_gflops:.1f} GFLOP/s; "
          f"symnet reaches {flops / results['symnet'] / 1e9 / mm_gflops * 100:.0f}% of it")
    return results


# ------------------------------------------------------------------ CNN (LeNet-5)
CNN_TARGET = 0.67     # symnet / fastest peer
LENET_SPEC = ROOT / "examples" / "lenet.toml"


def _act_name(layer):
    act = getattr(layer, "activation", None)
    return "identity" if act is None else act.name


def cnn_flops(net, m):
    """FLOPs of one train step: forward, dW and dx of every conv/dense layer (no dx for the first)."""
    total, first = 0, True
    for p in net.placed:
        kind = p.layer.type
        if kind == "conv2d":
            filters, c, kh, kw = p.param_shapes[p.params["W"]]
            ho, wo = p.out_shape[1], p.out_shape[2]
            one = 2 * m * filters * ho * wo * c * kh * kw
        elif kind == "dense":
            n_out, n_in = p.param_shapes[p.params["W"]]
            one = 2 * m * n_in * n_out
        else:
            continue
        total += one * (2 if first else 3)
        first = False
    return total


def torch_cnn(net, params=None):
    """The torch model of benchmarks/torch_reference.py (symnet's arrays copied in): its
    logits module and [(symnet name, torch tensor)] of the parameters."""
    from torch_reference import build_torch_model, named_tensors
    model = build_torch_model(net, params)
    return model.body, named_tensors(model)


def jax_cnn_loss(net):
    """loss(params, X, Y) in JAX (NCHW/OIHW convolutions, reduce_window pooling), softmax CE."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def fwd(params, X):
        h = X
        for p in net.placed:
            layer, kind = p.layer, p.layer.type
            if kind == "conv2d":
                ph, pw = layer.pads
                h = lax.conv_general_dilated(h, params[p.params["W"]], (layer.stride, layer.stride),
                                             [(ph, ph), (pw, pw)],
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
                h = h + params[p.params["b"]][None, :, None, None]
            elif kind == "dense":
                h = h @ params[p.params["W"]].T + params[p.params["b"]]
            elif kind == "maxpool2d":
                k, s = layer.size, layer.stride
                h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s), "VALID")
            elif kind == "avgpool2d":
                k, s = layer.size, layer.stride
                h = lax.reduce_window(h, 0.0, lax.add, (1, 1, k, k), (1, 1, s, s), "VALID") / (k * k)
            elif kind == "flatten":
                h = h.reshape(h.shape[0], -1)
            else:
                raise ValueError(f"{p.where}: layer type {kind!r} is not in this benchmark's JAX builder")
            act = _act_name(layer)
            if act == "relu":
                h = jax.nn.relu(h)
            elif act == "tanh":
                h = jnp.tanh(h)
            elif act == "sigmoid":
                h = jax.nn.sigmoid(h)
        return h

    def loss_fn(params, X, Y):
        out = fwd(params, X)
        return jnp.mean(jax.nn.logsumexp(out, axis=1) - jnp.sum(Y * out, axis=1))
    return loss_fn


def bench_cnn(spec, batch, repeats):
    import symnet
    from symnet.codegen import generate

    net = symnet.load(str(spec))
    if net.loss.name != "softmax_cross_entropy":
        raise SystemExit(f"{spec}: this benchmark handles softmax_cross_entropy only")
    mod = generate(net)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch,) + tuple(net.input_shape)).astype(np.float32)
    n_out = int(np.prod(net.output_shape))
    labels = rng.integers(0, n_out, batch)
    Y = np.eye(n_out, dtype=np.float32)[labels]
    params0 = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in net.init_params(seed=0).items()}
    lr = 1e-4   # small: the weights barely move over the repeats

    default_threads = mod.get_num_threads()
    fns, check = {}, {}
    loss0, grads0 = mod.loss_and_grads({k: v.copy() for k, v in params0.items()}, X, Y)
    check["symnet"] = (float(loss0), None)
    # the module's default (SYMNET_NUM_THREADS, else the usable cores) first: it is what a user gets.
    sym_threads = [default_threads] + [n for n in (1, 2) if n != default_threads and n <= default_threads]
    for n in sym_threads:
        p_sym = {k: v.copy() for k, v in params0.items()}
        setup = (lambda n=n: mod.set_num_threads(n))
        fns[f"symnet {n}T"] = (setup, lambda p_sym=p_sym: mod.train_step(p_sym, X, Y, lr))

    try:
        import torch
        for n in (THREADS, 1):
            torch.set_num_threads(n)
            model, named = torch_cnn(net, params0)
            crit = torch.nn.CrossEntropyLoss()
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            Xt, yt = torch.from_numpy(X), torch.from_numpy(labels)
            if n == THREADS:
                value = crit(model(Xt), yt)
                value.backward()
                diff = max(float(np.max(np.abs(t.grad.numpy() - grads0[name]))) for name, t in named)
                check["torch eager"] = (value.item(), diff)

            def tstep(model=model, opt=opt, crit=crit, Xt=Xt, yt=yt):
                opt.zero_grad(set_to_none=False)
                value = crit(model(Xt), yt)
                value.backward()
                opt.step()
                return value.item()
            fns[f"torch {n}T"] = ((lambda n=n: torch.set_num_threads(n)), tstep)
    except ImportError:
        pass
    try:
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}")
        import jax
        jloss = jax_cnn_loss(net)

        @jax.jit
        def jstep(params, X, Y):
            value, grads = jax.value_and_grad(jloss)(params, X, Y)
            return value, jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)

        pj = {k: jax.numpy.asarray(v) for k, v in params0.items()}
        Xj, Yj = jax.numpy.asarray(X), jax.numpy.asarray(Y)
        v, g = jax.jit(jax.value_and_grad(jloss))(pj, Xj, Yj)
        diff = max(float(np.max(np.abs(np.asarray(g[k]) - grads0[k]))) for k in params0)
        check["jax jit"] = (float(v), diff)
        state = {"p": pj}

        def jrun():
            value, state["p"] = jstep(state["p"], Xj, Yj)
            value.block_until_ready()
        fns["jax jit"] = jrun
    except ImportError:
        pass
    mod.set_num_threads(default_threads)

    gmax = max(float(np.max(np.abs(g))) for g in grads0.values())
    print(f"\n{net.name}: input {tuple(net.input_shape)} batch {batch}, {net.loss.name}, float32, "
          f"median (min) of {repeats}+ timed steps, taking turns")
    print("  check at the initial weights: " + "; ".join(
        f"{k} loss {l:.6f}" + ("" if d is None else f", max |grad - symnet's| {d:.2e}")
        for k, (l, d) in check.items()) + f" (max |grad| {gmax:.2e})")

    results = _interleaved(fns, repeats)
    mod.set_num_threads(default_threads)
    flops = cnn_flops(net, batch)
    peers = {k: v[0] for k, v in results.items() if not k.startswith("symnet")}
    if not peers:
        print("  no peer installed (torch, jax)")
        return results
    fastest = min(peers, key=peers.get)
    for k, (med, low) in results.items():
        print(f"  {k:12s} {med * 1e3:9.3f} ms ({low * 1e3:8.3f})  {flops / med / 1e9:6.1f} GFLOP/s  "
              f"{med / peers[fastest]:5.2f}x fastest peer")
    print("  (nT: n threads; symnet's via the module's set_num_threads, torch's via torch.set_num_threads; "
          "JAX with XLA's defaults)")
    default = f"symnet {default_threads}T"
    ratio = results[default][0] / peers[fastest]
    print(f"  symnet at its default ({default_threads} threads) / fastest peer ({fastest}): {ratio:.3f}  "
          f"(target <= {CNN_TARGET}: {'met' if ratio <= CNN_TARGET else 'MISSED'})")
    best = min((k for k in results if k.startswith("symnet")), key=lambda k: results[k][0])
    if best != default:
        ratio = results[best][0] / peers[fastest]
        print(f"  best symnet ({best}) / fastest peer ({fastest}): {ratio:.3f}  "
              f"(target <= {CNN_TARGET}: {'met' if ratio <= CNN_TARGET else 'MISSED'})")
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
print(f"imports {{t1 - t0:.2f}} s, load + generate {{t2 - t1:.2f}} s (derive {{TIMINGS['derive']:.2f}}, "
      f"render {{TIMINGS['render']:.2f}}, import {{TIMINGS['import']:.2f}}), "
      f"first train_step (compile or cache load) {{t3 - t2:.2f}} s, total {{t3 - t0:.2f}} s")
"""


COLD_CNN = r"""
import time, sys
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import numpy as np
import symnet
from symnet.codegen import generate
from symnet.codegen.generate import TIMINGS
t1 = time.perf_counter()
net = symnet.load({spec!r})
mod = generate(net)
t2 = time.perf_counter()
p = net.init_params(seed=0)
X = np.zeros(({batch},) + tuple(net.input_shape), np.float32)
Y = np.eye(10, dtype=np.float32)[np.zeros({batch}, int)]
mod.train_step(p, X, Y, 0.01)
t3 = time.perf_counter()
print(f"{{t3 - t1:.3f}} {{t3 - t0:.3f}} {{time.time():.6f}}")
print(f"imports {{t1 - t0:.2f}} s, load + generate {{t2 - t1:.2f}} s (derive {{TIMINGS['derive']:.2f}}, "
      f"render {{TIMINGS['render']:.2f}}, import {{TIMINGS['import']:.2f}}), "
      f"first train_step (compile or cache load) {{t3 - t2:.2f}} s, total {{t3 - t0:.2f}} s")
"""

COLD_TARGETS = (10.0, 1.0)   # seconds: empty cache, warm cache (LeNet-5)


def cold_start():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMNET_CACHE=cache)
        code = COLD.format(root=str(ROOT))
        for label in ("cold (empty cache: derive + render + compile)", "warm cache, fresh process"):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            print(f"  {label}: {out.stdout.strip()}")


def cold_start_cnn(spec, batch):
    """Cold (empty SYMNET_CACHE) and warm-cache starts of a CNN, each in a fresh process."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMNET_CACHE=cache)
        code = COLD_CNN.format(root=str(ROOT), spec=str(spec), batch=batch)
        labels = ("cold (empty cache: derive + render + compile)", "warm cache, fresh process")
        for label, target in zip(labels, COLD_TARGETS):
            spawned, t = time.time(), time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if out.returncode != 0:
                print(f"  {label}: FAILED (exit {out.returncode})\n{out.stderr.strip()}")
                return
            first, detail = out.stdout.strip().split("\n", 1)
            after_imports, total, stepped = map(float, first.split())
            to_step = stepped - spawned   # the child's clock at its first step's end, from the spawn
            print(f"  {label}: {detail}")
            print(f"    to the first step: {after_imports:.2f} s after imports, {to_step:.2f} s from the spawn "
                  f"(interpreter start included; target <= {target:g} s: "
                  f"{'met' if after_imports <= target else 'MISSED'} after imports, "
                  f"{'met' if to_step <= target else 'MISSED'} from the spawn); the process took "
                  f"{wall:.2f} s in all, its exit included")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per implementation, MLPs (default 200)")
    parser.add_argument("--cnn-repeats", type=int, default=50, help="timed LeNet-5 steps per implementation (default 50)")
    parser.add_argument("--only", choices=("mlp", "cnn", "all"), default="all",
                        help="mlp: the two MLPs; cnn: LeNet-5; all (default)")
    parser.add_argument("--cold", action="store_true", help="also time cold and warm-cache starts")
    args = parser.parse_args()
    if args.only in ("mlp", "all"):
        bench("bench_mlp", [784, 256, 128, 10], ["relu", "relu", "identity"], "softmax_cross_entropy", 128,
              args.repeats, 1)
        bench("bench_tiny", [2, 16, 16, 1], ["tanh", "tanh", "identity"], "mse", 32, args.repeats, 50)
    if args.only in ("cnn", "all"):
        bench_cnn(LENET_SPEC, 64, args.cnn_repeats)
    if args.cold:
        if args.only in ("mlp", "all"):
            print("\nstart-up, 784-256-128-10 network:")
            cold_start()
        if args.only in ("cnn", "all"):
            print(f"\nstart-up, LeNet-5 ({LENET_SPEC.relative_to(ROOT)}), batch 64:")
            cold_start_cnn(LENET_SPEC, 64)


if __name__ == "__main__":
    main()
