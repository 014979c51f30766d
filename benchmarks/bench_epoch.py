"""Epoch benchmark: a training epoch of symnet's generated CNN kernels beside PyTorch eager.

Two cases, float32:

* digits: examples/digits_cnn.toml on the bundled digits training split
  (symnet.data.load_dataset("digits", image=True, seed=0): about 1257 8x8
  images), batch 32, Adam lr 3e-3;
* lenet: examples/lenet.toml (LeNet-5) on synthetic data: 6000 standard-normal
  1x28x28 images with random labels from 10 classes, batch 64, Adam lr 1e-3.

An epoch is one pass of mini-batches (symnet.data.iterate_minibatches; every
implementation gets the same batch order and the same initial weights,
net.init_params(seed=0)):

* symnet: ``kernel.train_step(params, xb, yb, lr, optimizer=adam)`` (the Adam update
  fused into the generated step, as train() runs it), once with the module's
  default thread count (the usable cores) and once with 1 (the module's
  set_num_threads: how many shares of a batch run at once); "unfused":
  ``kernel.loss_and_grads`` + ``symnet.optim``'s numpy Adam step, for comparison;
* torch: forward, ``F.cross_entropy``, ``backward()``, ``torch.optim.Adam`` step
  (``zero_grad(set_to_none=True)``), once with torch.set_num_threads(1) and once
  with 2.

Every variant trains its own copy from the same start. On a 2-core machine that
another process keeps busy, a parallel region that waits for its second thread
can cost a scheduler tick, so the thread count matters for both sides.

Each side also reads its batch loss (float(loss) / loss.item()) as a training
loop that logs it does. The kernel is generated and JIT-compiled first (time
reported apart), then one untimed warm-up epoch, then --epochs timed epochs;
the implementations take turns epoch by epoch (the machine is shared: a slow
phase hits all of them), with a 0.2 s pause before each epoch (OpenBLAS, OpenMP
worker threads spin for a while after their work; on 2 cores they
would slow the next implementation down), and each number is the median epoch
time. The mean training loss of the last epoch is printed for every variant:
they start from the same weights and see the same batches, so they should
agree closely.

Last, ``symnet.train.train(net, data, kernel=mod, epochs=N, progress=False,
...)`` runs with the same settings, at each symnet thread count; its per-epoch
time (history["time_s"]) includes the evaluation of the training and
validation splits after every epoch (for lenet: 1000 synthetic validation and
1000 test images); a 1-epoch train() run before it compiles the forward and
loss kernels that evaluation uses.

    python benchmarks/bench_epoch.py                  # both cases
    python benchmarks/bench_epoch.py --only lenet --epochs 8
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_train_step import torch_cnn  # noqa: E402  (nn.Sequential from a symnet net, weights copied)

TORCH_THREADS = (1, 2)
SEED = 0
PAUSE = 0.2   # seconds before each epoch: the previous implementation's thread pools stop spinning


def digits_case():
    import symnet
    from symnet.data import load_dataset

    net = symnet.load(str(ROOT / "examples" / "digits_cnn.toml"))
    data = load_dataset("digits", image=True, seed=SEED, dtype="float32")
    return "digits_cnn on digits (bundled training split)", net, data, 32, 3e-3


def lenet_case(n_train=6000, n_val=1000, n_test=1000):
    import symnet
    from symnet.data import Dataset

    net = symnet.load(str(ROOT / "examples" / "lenet.toml"))
    rng = np.random.default_rng(1234)
    shape = tuple(net.input_shape)
    parts = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        parts[f"X_{split}"] = rng.standard_normal((n,) + shape).astype(np.float32)
        y = rng.integers(0, 10, n)
        parts[f"y_{split}"] = y
        parts[f"Y_{split}"] = np.eye(10, dtype=np.float32)[y]
    data = Dataset(**parts, n_classes=10, input_shape=shape, name="synthetic28", normalizer=None,
                   classes=np.arange(10))
    return f"LeNet-5 on synthetic 28x28 data ({n_train} images, 10 random classes)", net, data, 64, 1e-3


# ------------------------------------------------------------------ one epoch each
def symnet_runner(mod, params0, X, Y, lr, threads, fused=True):
    """fused: mod.train_step with the Adam update inside the generated step (what train()
    does); else loss_and_grads + symnet.optim's numpy Adam step."""
    from symnet.optim import make_optimizer

    params = {k: v.copy() for k, v in params0.items()}
    opt = make_optimizer("adam", lr)

    def epoch(batches):
        mod.set_num_threads(threads)
        total, seen = 0.0, 0
        for idx in batches:
            if fused:
                loss = mod.train_step(params, X[idx], Y[idx], opt.lr, optimizer=opt)
            else:
                loss, grads = mod.loss_and_grads(params, X[idx], Y[idx])
                opt.step({k: params[k] for k in grads}, grads)
            total += float(loss) * len(idx)
            seen += len(idx)
        return total / seen
    return epoch


def torch_runner(net, params0, X, y, lr, threads):
    import torch
    import torch.nn.functional as F

    model, _ = torch_cnn(net, params0)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def epoch(batches):
        torch.set_num_threads(threads)
        total, seen = 0.0, 0
        for idx in batches:
            it = torch.from_numpy(idx)
            xb, yb = Xt[it], yt[it]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        return total / seen
    return epoch


def run_case(label, net, data, batch, lr, epochs, train_epochs, warmup=1):
    import torch

    from symnet.codegen import generate
    from symnet.data import iterate_minibatches
    from symnet.train import train

    X = np.ascontiguousarray(data.X_train, dtype=np.float32)
    Y = np.ascontiguousarray(data.Y_train, dtype=np.float32)
    y = np.asarray(data.y_train)
    n = len(X)
    n_batches = -(-n // batch)
    print(f"\n{label}: {n} training images {tuple(net.input_shape)}, batch {batch} ({n_batches} batches), "
          f"Adam lr {lr:g}, float32")

    t = time.perf_counter()
    mod = generate(net)
    t_gen = time.perf_counter() - t
    params0 = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in net.init_params(seed=SEED).items()}
    t = time.perf_counter()
    mod.loss_and_grads({k: v.copy() for k, v in params0.items()}, X[:batch], Y[:batch])
    t_first = time.perf_counter() - t
    print(f"  symnet kernel: generate {t_gen:.2f} s, first loss_and_grads (compile or cache load) {t_first:.2f} s; "
          f"{mod.get_num_threads()} threads; torch {torch.__version__}")

    rng = np.random.default_rng(SEED)
    orders = [list(iterate_minibatches(n, batch, rng)) for _ in range(warmup + epochs)]
    default_threads = mod.get_num_threads()
    sym_threads = [default_threads] + [t for t in (1, 2) if t != default_threads and t <= default_threads]
    runners = {}
    for th in sym_threads:
        runners[f"symnet {th}T"] = symnet_runner(mod, params0, X, Y, lr, th)
    runners[f"unfused {default_threads}T"] = symnet_runner(mod, params0, X, Y, lr, default_threads, fused=False)
    for th in TORCH_THREADS:
        runners[f"torch {th}T"] = torch_runner(net, params0, X, y, lr, th)
    times = {k: [] for k in runners}
    last_loss = {}
    for e, batches in enumerate(orders):
        for k, run in runners.items():
            time.sleep(PAUSE)
            t = time.perf_counter()
            last_loss[k] = run(batches)
            dt = time.perf_counter() - t
            if e >= warmup:
                times[k].append(dt)

    mod.set_num_threads(default_threads)
    med = {k: statistics.median(v) for k, v in times.items()}
    syms = [k for k in med if k.startswith("symnet")]
    torches = [k for k in med if k.startswith("torch")]
    best_torch = min(torches, key=med.get)
    print(f"  median (min, max) of {epochs} epochs after {warmup} warm-up epoch; implementations take turns; "
          f"nT: n threads (the module's set_num_threads / torch.set_num_threads):")
    for k, v in times.items():
        print(f"    {k:10s} {med[k] * 1e3:9.1f} ms/epoch ({min(v) * 1e3:8.1f}, {max(v) * 1e3:8.1f})  "
              f"{med[k] / n_batches * 1e3:7.3f} ms/batch   last-epoch mean train loss {last_loss[k]:.5f}")
    for a in syms:
        print("    " + ";  ".join(f"{a} / {b}: {med[a] / med[b]:.3f}" for b in torches))
    default = f"symnet {default_threads}T"
    best_sym = min(syms, key=med.get)
    print(f"    symnet at its default ({default}) / fastest torch ({best_torch}): "
          f"{med[default] / med[best_torch]:.3f};  fastest symnet ({best_sym}) / fastest torch: "
          f"{med[best_sym] / med[best_torch]:.3f}")

    settings = dict(kernel=mod, progress=False, optimizer="adam", lr=lr, batch_size=batch, seed=SEED)
    t = time.perf_counter()
    train(net, data, epochs=1, **settings)   # warm-up: compiles forward and loss, which evaluation uses
    t_warm = time.perf_counter() - t
    print(f"  symnet.train.train, {train_epochs} epochs (batches + evaluation of the train and val splits after "
          f"every epoch), after a 1-epoch warm-up run ({t_warm:.2f} s):")
    for th in sym_threads:
        mod.set_num_threads(th)
        time.sleep(PAUSE)
        t = time.perf_counter()
        result = train(net, data, epochs=train_epochs, **settings)
        wall = time.perf_counter() - t
        per_epoch = result.history["time_s"]
        print(f"    symnet {th}T: median {statistics.median(per_epoch) * 1e3:.1f} ms/epoch "
              f"(min {min(per_epoch) * 1e3:.1f}, max {max(per_epoch) * 1e3:.1f}); wall {wall:.2f} s in all "
              f"incl. the final evaluations = {wall / train_epochs * 1e3:.1f} ms/epoch; "
              f"final train acc {result.history['train_acc'][-1]:.3f}")
    mod.set_num_threads(default_threads)
    return med


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("digits", "lenet", "all"), default="all")
    parser.add_argument("--epochs", type=int, default=6, help="timed epochs per implementation (default 6, >= 5)")
    parser.add_argument("--train-epochs", type=int, default=None,
                        help="epochs of the symnet.train.train run (default: --epochs)")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    train_epochs = args.train_epochs or args.epochs
    cases = []
    if args.only in ("digits", "all"):
        cases.append(digits_case)
    if args.only in ("lenet", "all"):
        cases.append(lenet_case)
    for case in cases:
        run_case(*case(), epochs=args.epochs, train_epochs=train_epochs)


if __name__ == "__main__":
    main()
