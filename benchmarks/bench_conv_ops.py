"""Convolution and pooling kernels against PyTorch eager: LeNet-5 shapes, batch 64, float32.

Loads symnet/runtime/conv.py (symnet.codegen.conv_ops.render_conv_ops),
writes the text to a temporary module, imports it and times, beside the same
work in torch (torch.set_num_threads(2)):

* each kernel: conv1/conv2 forward, conv1 backward (no dx), conv2 backward
  (with dx), maxpool1/maxpool2 forward and backward; torch's counterparts are
  the aten ops autograd calls (convolution, convolution_backward,
  max_pool2d_with_indices and its backward);
* the stack conv1+relu+pool1+conv2+relu+pool2, forward + backward (torch with
  autograd: F.conv2d, F.relu, F.max_pool2d, .backward);
* with --step, the whole LeNet-5 SGD step: symnet's generated train_step
  (symnet.codegen.generate of examples/lenet.toml) against torch eager
  (nn.Sequential, CrossEntropyLoss, optim.SGD).

The two sides take turns in blocks of repeats (the machine is shared, so a slow
phase hits both); each line gives the medians of --repeats repeats, the minima
in parentheses, and the ratio symnet / torch of each. The load average is
printed before and after: with other processes busy, numba's and torch's
OpenMP threads spin-wait on each other and times jump by scheduler ticks (4-8 ms).

Threads: --threads sets torch's, OpenBLAS's and the generated module's
(set_num_threads: the shares of a batch it runs at once; default 2);
--blas-threads OpenBLAS's alone (numpy's and scipy's; torch uses MKL). The conv
kernels themselves run on one thread and call no BLAS.

    python benchmarks/bench_conv_ops.py                      # kernels + stack
    python benchmarks/bench_conv_ops.py --step               # + the whole train step
    python benchmarks/bench_conv_ops.py --step --blas-threads 1
    python benchmarks/bench_conv_ops.py --threads 1          # one core each
    python benchmarks/bench_conv_ops.py --source OLD.py      # time another conv.py source
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

np = None        # numpy, imported by main() once the thread counts are set

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREADS = 2      # --threads changes it (numba, OpenBLAS and torch alike)
BATCH = 64


def load_kernels(source: str | None, dtype: str = "float32"):
    """The conv kernels as an imported module (from --source's file when given; the
    whole step always uses the package's symnet.runtime.conv)."""
    import symnet.codegen.conv_ops as co
    if source:
        co.SOURCE = Path(source)
    source = co.render_conv_ops(dtype)
    folder = Path(tempfile.mkdtemp(prefix="bench_conv_ops_"))
    path = folder / f"bench_conv_ops_{dtype}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


def relu_helpers():
    from numba import njit

    @njit(cache=False)
    def relu_fwd(Z, G, A):
        """As the generated conv{k}_forward: A = relu(Z), G = relu'(Z) (Z given in G)."""
        z = Z.reshape(Z.size)
        g = G.reshape(G.size)
        a = A.reshape(A.size)
        for k in range(z.size):
            v = z[k]
            if v > 0:
                a[k] = v
                g[k] = 1
            else:
                a[k] = 0
                g[k] = 0

    @njit(cache=False)
    def mul_inplace(D, G):
        d = D.reshape(D.size)
        g = G.reshape(G.size)
        for k in range(d.size):
            d[k] *= g[k]
    return relu_fwd, mul_inplace


def interleaved(fns: dict, repeats: int, rounds: int = 5) -> dict:
    """Median seconds of each function over `repeats` calls, taken in `rounds` blocks that
    alternate between the functions. Blocks, not single calls: numba's and torch's thread
    pools each spin a while after their work, and calls that alternate one by one make
    each pool wait for the other's spinning threads on two cores."""
    times = {k: [] for k in fns}
    per_round = max(1, -(-repeats // rounds))
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()
            fn()
            for _ in range(per_round):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def report(label, med):
    """One line: medians (and minima) in ms, and the ratio symnet / torch of the medians."""
    (s, s_min), (t, t_min) = med["symnet"], med["torch"]
    print(f"  {label:34s} symnet {s * 1e3:7.3f} ({s_min * 1e3:7.3f})   torch {t * 1e3:7.3f} ({t_min * 1e3:7.3f})"
          f"   ratio {s / t:5.2f} ({s_min / t_min:5.2f})")


def kernels_and_stack(ops, repeats):
    import torch
    F_ = torch.nn.functional
    aten = torch.ops.aten
    rng = np.random.default_rng(0)
    f32 = np.float32
    N = BATCH
    x = rng.standard_normal((N, 1, 28, 28)).astype(f32)
    W1 = (rng.standard_normal((6, 1, 5, 5)) * 0.2).astype(f32)
    b1 = (rng.standard_normal(6) * 0.1).astype(f32)
    W2 = (rng.standard_normal((16, 6, 5, 5)) * 0.08).astype(f32)
    b2 = (rng.standard_normal(16) * 0.1).astype(f32)
    Z1, G1, A1 = (np.empty((N, 6, 24, 24), f32) for _ in range(3))
    P1, I1 = np.empty((N, 6, 12, 12), f32), np.empty((N, 6, 12, 12), np.int64)
    Z3, G3, A3 = (np.empty((N, 16, 8, 8), f32) for _ in range(3))
    P3, I3 = np.empty((N, 16, 4, 4), f32), np.empty((N, 16, 4, 4), np.int64)
    R = rng.standard_normal(P3.shape).astype(f32) / N
    D3, D2, D1 = np.empty_like(Z3), np.empty_like(P1), np.empty_like(Z1)
    gW1, gb1, gW2, gb2 = np.empty_like(W1), np.empty_like(b1), np.empty_like(W2), np.empty_like(b2)
    no_dx = np.empty((0, 1, 1, 1), f32)
    relu_fwd, mul_inplace = relu_helpers()

    # fill every intermediate once (the per-kernel timings below reuse them)
    ops.conv2d_forward(x, W1, b1, 1, 0, 0, Z1)
    relu_fwd(Z1, G1, A1)
    ops.maxpool2d_forward(A1, 2, 2, P1, I1)
    ops.conv2d_forward(P1, W2, b2, 1, 0, 0, Z3)
    relu_fwd(Z3, G3, A3)
    ops.maxpool2d_forward(A3, 2, 2, P3, I3)
    dz3 = rng.standard_normal(Z3.shape).astype(f32) / N
    dz1 = rng.standard_normal(Z1.shape).astype(f32) / N
    dp1 = rng.standard_normal(P1.shape).astype(f32) / N

    tx, tW1, tb1, tW2, tb2 = (torch.from_numpy(a) for a in (x, W1, b1, W2, b2))
    tP1, tA1, tA3 = torch.from_numpy(P1), torch.from_numpy(A1), torch.from_numpy(A3)
    tdz3, tdz1, tR = torch.from_numpy(dz3), torch.from_numpy(dz1), torch.from_numpy(R)
    tdp1 = torch.from_numpy(dp1)
    _, tI1 = aten.max_pool2d_with_indices(tA1, [2, 2], [2, 2])
    _, tI3 = aten.max_pool2d_with_indices(tA3, [2, 2], [2, 2])

    def conv_bwd(dz, inp, w, mask):
        return aten.convolution_backward(dz, inp, w, [w.shape[0]], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)

    print(f"\nkernels, LeNet-5 shapes, batch {N}, float32, {THREADS} threads; median (min) of {repeats}:")
    cases = [
        ("conv1 forward 1x28x28 -> 6x24x24",
         lambda: ops.conv2d_forward(x, W1, b1, 1, 0, 0, Z1),
         lambda: aten.convolution(tx, tW1, tb1, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
        ("conv2 forward 6x12x12 -> 16x8x8",
         lambda: ops.conv2d_forward(P1, W2, b2, 1, 0, 0, Z3),
         lambda: aten.convolution(tP1, tW2, tb2, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
        ("conv1 backward (dW, db; no dx)",
         lambda: ops.conv2d_backward(x, W1, dz1, 1, 0, 0, gW1, gb1, no_dx),
         lambda: conv_bwd(tdz1, tx, tW1, [False, True, True])),
        ("conv2 backward (dW, db, dx)",
         lambda: ops.conv2d_backward(P1, W2, dz3, 1, 0, 0, gW2, gb2, D2),
         lambda: conv_bwd(tdz3, tP1, tW2, [True, True, True])),
        ("maxpool1 forward 6x24x24",
         lambda: ops.maxpool2d_forward(A1, 2, 2, P1, I1),
         lambda: aten.max_pool2d_with_indices(tA1, [2, 2], [2, 2])),
        ("maxpool1 backward",
         lambda: ops.maxpool2d_backward(dp1, I1, D1),
         lambda: aten.max_pool2d_with_indices_backward(tdp1, tA1, [2, 2], [2, 2], [0, 0], [1, 1], False, tI1)),
        ("maxpool2 forward 16x8x8",
         lambda: ops.maxpool2d_forward(A3, 2, 2, P3, I3),
         lambda: aten.max_pool2d_with_indices(tA3, [2, 2], [2, 2])),
        ("maxpool2 backward",
         lambda: ops.maxpool2d_backward(R, I3, D3),
         lambda: aten.max_pool2d_with_indices_backward(tR, tA3, [2, 2], [2, 2], [0, 0], [1, 1], False, tI3)),
    ]
    results = {}
    for label, mine, theirs in cases:
        with torch.no_grad():
            med = interleaved({"symnet": mine, "torch": theirs}, repeats)
        report(label, med)
        results[label] = med

    # ---- the stack, forward + backward
    def symnet_stack():
        ops.conv2d_forward(x, W1, b1, 1, 0, 0, Z1)
        relu_fwd(Z1, G1, A1)
        ops.maxpool2d_forward(A1, 2, 2, P1, I1)
        ops.conv2d_forward(P1, W2, b2, 1, 0, 0, Z3)
        relu_fwd(Z3, G3, A3)
        ops.maxpool2d_forward(A3, 2, 2, P3, I3)
        ops.maxpool2d_backward(R, I3, D3)
        mul_inplace(D3, G3)
        ops.conv2d_backward(P1, W2, D3, 1, 0, 0, gW2, gb2, D2)
        ops.maxpool2d_backward(D2, I1, D1)
        mul_inplace(D1, G1)
        ops.conv2d_backward(x, W1, D1, 1, 0, 0, gW1, gb1, no_dx)

    pW1, pb1, pW2, pb2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (W1, b1, W2, b2))

    def torch_stack():
        for p in (pW1, pb1, pW2, pb2):
            p.grad = None
        h = F_.max_pool2d(F_.relu(F_.conv2d(tx, pW1, pb1)), 2)
        h = F_.max_pool2d(F_.relu(F_.conv2d(h, pW2, pb2)), 2)
        h.backward(tR)

    # agreement of the stack's gradients with torch's (float32 tolerances)
    symnet_stack()
    torch_stack()
    for mine, theirs in ((gW1, pW1), (gb1, pb1), (gW2, pW2), (gb2, pb2)):
        ref = theirs.grad.numpy()
        err = np.abs(mine - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err < 1e-4, f"stack gradient differs from torch's: relative error {err:.2e}"
    med = interleaved({"symnet": symnet_stack, "torch": torch_stack}, repeats)
    print("\nconv1+relu+pool1+conv2+relu+pool2, forward + backward (gradients checked against torch):")
    report("stack", med)
    results["stack"] = med
    return results


def network_module(net):
    """The generated module of net: symnet.codegen.generate (numba's cache and all)."""
    from symnet.codegen import generate
    return generate(net)


def whole_step(repeats):
    import torch
    from symnet import spec

    net = spec.load(ROOT / "examples" / "lenet.toml")
    mod = network_module(net)
    mod.set_num_threads(THREADS)
    params0 = net.init_params(seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH)
    Y = np.eye(10, dtype=np.float32)[labels]
    lr = 1e-4
    p = {k: v.copy() for k, v in params0.items()}

    from bench_train_step import torch_cnn   # torch_reference's model, symnet's weights copied
    model, _ = torch_cnn(net, params0)
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(labels)

    mine = mod.train_step({k: v.copy() for k, v in params0.items()}, X, Y, lr)
    with torch.no_grad():
        theirs = float(crit(model(Xt), Yt))
    assert abs(mine - theirs) < 1e-4 * max(1.0, abs(theirs)), (mine, theirs)

    def torch_step():
        opt.zero_grad(set_to_none=False)
        value = crit(model(Xt), Yt)
        value.backward()
        opt.step()
        return value

    med = interleaved({"symnet": lambda: mod.train_step(p, X, Y, lr), "torch": torch_step}, repeats)
    print(f"\nwhole LeNet-5 SGD step (generated train_step vs torch eager), batch {BATCH}, float32"
          f" ({Path(mod.__file__).name}):")
    report("train step", med)
    return med


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--step", action="store_true", help="also time the whole LeNet-5 train step")
    parser.add_argument("--source", help="time the kernels of this file instead of symnet/runtime/conv.py")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads of numba, OpenBLAS and torch (default {THREADS}; set before they load)")
    parser.add_argument("--blas-threads", type=int,
                        help="OpenBLAS threads only (numpy's and scipy's, which numba's np.dot calls; "
                             "torch uses MKL): default --threads")
    args = parser.parse_args()
    set_threads(args.threads, args.blas_threads)
    global np
    import numpy as np
    import numba
    import torch
    torch.set_num_threads(THREADS)
    print(f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads, "
          f"layer {numba.config.THREADING_LAYER}), OpenBLAS {os.environ['OPENBLAS_NUM_THREADS']} threads, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"load average {os.getloadavg()[0]:.2f} (another busy process skews every number)")
    start = time.perf_counter()
    ops = load_kernels(args.source)
    print(f"kernels: {args.source or 'symnet/runtime/conv.py'}")
    kernels_and_stack(ops, args.repeats)
    print(f"(kernels imported, compiled and timed in {time.perf_counter() - start:.1f} s)")
    if args.step:
        whole_step(args.repeats)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


def set_threads(n, blas=None):
    """Thread counts for numba, OpenBLAS (numpy's and scipy's, which numba's np.dot calls) and torch."""
    global THREADS
    THREADS = n
    if "numba" in sys.modules or "numpy" in sys.modules:
        raise RuntimeError("set the thread counts before numpy and numba are imported")
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(n)
    os.environ["OPENBLAS_NUM_THREADS"] = str(n if blas is None else blas)


if __name__ == "__main__":
    main()
