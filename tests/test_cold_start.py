"""A first conv network's cold start: the background compile and the network's process split
the runtime's kernels through claims (symnet.runtime.claims), and small conv layers call
kernels that compile only their own paths (symnet.runtime.conv.small_layer)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symnet.runtime import claims as claims_mod
from symnet.runtime.claims import Claims, _SharedCache, share


class FakeCache:
    """Numba's cache as Dispatcher.compile uses it: load_overload, save_overload."""

    def __init__(self, store):
        self.store, self.loads, self.flushed = store, 0, False

    def load_overload(self, sig, target_context):
        self.loads += 1
        return self.store.get(sig)

    def save_overload(self, sig, data):
        self.store[sig] = data

    def flush(self):
        self.flushed = True


class FakeDispatcher:
    def __init__(self, store):
        self._cache = FakeCache(store)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_is_taken_once_and_finished(tmp_path):
    c = Claims(tmp_path / "claims")
    assert c.claim("k") and not c.claim("k") and not c.done("k")
    assert (tmp_path / "claims" / "k").read_text().strip() == str(os.getpid())
    assert not c.wait("k", timeout=5)   # our own claim: never wait for ourselves
    c.finish("k")
    assert c.done("k") and c.wait("k", timeout=0.1)


def test_waiting_ends_when_the_claimant_died_or_time_is_up(tmp_path, monkeypatch):
    c = Claims(tmp_path)
    (tmp_path / "dead").write_text(f"{_dead_pid()}\n")
    assert not c.wait("dead", timeout=5)
    (tmp_path / "parent").write_text(f"{os.getppid()}\n")   # alive, never finishes
    monkeypatch.setattr(claims_mod, "POLL", 0.01)
    assert not c.wait("parent", timeout=0.05)


def test_shared_cache_claims_compiles_and_says_done(tmp_path):
    store = {}
    d = FakeDispatcher(store)
    share({"k": d}, tmp_path)
    assert isinstance(d._cache, _SharedCache)
    assert d._cache.load_overload("sig", None) is None       # a miss: claimed, compiled here
    assert (tmp_path / "k").exists() and not Claims(tmp_path).done("k")
    d._cache.save_overload("sig", "code")
    assert Claims(tmp_path).done("k") and store["sig"] == "code"
    assert d._cache.load_overload("sig2", None) is None      # another signature: ours, no wait
    d._cache.flush()
    assert d._cache._cache.flushed                            # everything else passes through
    share({"k": d}, tmp_path / "other")                       # shared again: not wrapped twice
    assert isinstance(d._cache._cache, FakeCache)


def test_shared_cache_waits_for_the_other_process_then_loads(tmp_path, monkeypatch):
    """Another live process holds the claim: the load waits until it is done, then loads
    what it saved; a claimant that died leaves the compile to this process."""
    store = {}
    d = FakeDispatcher(store)
    share({"k": d, "gone": FakeDispatcher(store)}, tmp_path)
    (tmp_path / "k").write_text(f"{os.getppid()}\n")
    seen = []

    def sleep(_):   # the other process finishes while we wait
        seen.append(1)
        store["sig"] = "theirs"
        Claims(tmp_path).finish("k")
    monkeypatch.setattr(claims_mod.time, "sleep", sleep)
    assert d._cache.load_overload("sig", None) == "theirs" and seen
    (tmp_path / "gone").write_text(f"{_dead_pid()}\n")
    gone = FakeDispatcher(store)
    share({"gone": gone}, tmp_path)
    assert gone._cache.load_overload("other", None) is None


def test_background_skips_what_the_network_claimed(tmp_path):
    """compile_runtime with claims compiles only unclaimed kernels and finishes each."""
    from symnet.runtime import precompile
    c = Claims(tmp_path)
    names = list(precompile.kernels())
    for name in names[1:]:
        assert c.claim(name)
    precompile.compile_runtime(("float64",), c)
    assert c.done(names[0]) and not any(c.done(n) for n in names[1:])


def test_small_layer_rule():
    from symnet.runtime.conv import small_layer
    assert small_layer(6, 1, 5, 5, 24, 24, 1, (0, 0))          # LeNet-5's conv1
    assert not small_layer(6, 1, 5, 5, 24, 24, 2, (0, 0))      # strided
    assert not small_layer(6, 1, 5, 5, 24, 24, 1, (1, 0))      # padded
    assert not small_layer(64, 32, 3, 3, 32, 32, 1, (0, 0))    # a product past BLAS's one-thread size


def test_small_conv_kernels_equal_the_general_ones():
    """conv2d_forward_small / conv2d_backward_small compute what the general kernels do
    (both paths of the backward: dW over groups of examples, and dx), and refuse a
    stride or padding they were not compiled for."""
    from symnet.runtime import conv
    rng = np.random.default_rng(3)
    for n, c, size, f, k in ((5, 2, 9, 3, 3), (2, 1, 28, 4, 5)):
        x = rng.standard_normal((n, c, size, size))
        W, b = rng.standard_normal((f, c, k, k)), rng.standard_normal(f)
        out = np.empty((n, f, size - k + 1, size - k + 1))
        small_out = np.empty_like(out)
        conv.conv2d_forward(x, W, b, 1, 0, 0, out)
        conv.conv2d_forward_small(x, W, b, 1, 0, 0, small_out)
        np.testing.assert_array_equal(small_out, out)
        dz = rng.standard_normal(out.shape)
        grads = [(np.empty_like(W), np.empty_like(b), np.empty_like(x)) for _ in range(2)]
        conv.conv2d_backward(x, W, dz, 1, 0, 0, *grads[0])
        conv.conv2d_backward_small(x, W, dz, 1, 0, 0, *grads[1])
        for general, small in zip(*grads):
            np.testing.assert_allclose(small, general, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="stride 1 and no padding"):
        conv.conv2d_forward_small(x, W, b, 2, 0, 0, out)


def test_lenet_calls_the_small_conv_kernels():
    from symnet.codegen.generate import render
    from symnet.spec import load
    text = render(load(Path(__file__).resolve().parents[1] / "examples" / "lenet.toml"))
    assert "conv2d_forward_small(" in text and "conv2d_backward_small(" in text
    assert "conv2d_forward(" not in text and "conv2d_backward(" not in text


def test_the_background_takes_the_networks_kernels_first(tmp_path):
    """The network's process writes the kernels its step reaches (reach_order of its kernel
    file), the last reached first; the background compiles those before the others (by
    default it would begin with LeNet-5's, which the padded digits CNN does not call)."""
    from symnet.runtime import precompile
    from symnet.codegen.generate import render
    from symnet.spec import load
    examples = Path(__file__).resolve().parents[1] / "examples"
    lenet = precompile.reach_order(render(load(examples / "lenet.toml")))
    assert lenet[0] == "conv2d_forward_small" and lenet[-2:] == ["conv2d_backward_small", "fused_update"]
    assert precompile.reach_order("def f():\n    pass\n") == []
    text = render(load(examples / "digits_cnn.toml"))
    order = precompile.reach_order(text)
    assert order[0] == "conv2d_forward" and "conv2d_backward_small" not in order
    note, kernel_file = tmp_path / "note", tmp_path / "k.py"
    kernel_file.write_text(text)
    precompile.tell_background(note, kernel_file)
    finished = []

    class Recording(Claims):
        def finish(self, name):
            finished.append(name)
            super().finish(name)
    c = Recording(claims_mod.folder_for(note))
    assert c.order() == order[::-1]
    left = ("conv2d_backward_small", "maxpool2d_forward", "conv2d_forward")
    for name in precompile.kernels():   # everything else claimed by "another process"
        if name not in left:
            c.claim(name)
    precompile.compile_runtime(("float64",), c)
    assert finished == ["maxpool2d_forward", "conv2d_forward", "conv2d_backward_small"]
