"""Optimisers and learning-rate schedules on dicts of numpy arrays.

Each optimiser follows the update of its ``torch.optim`` namesake exactly (no
weight decay), so a run here and a run in PyTorch from the same start agree.
``step(params, grads)`` updates ``params`` in place; ``state_dict()`` is a flat
dict of arrays and scalars that fits in a checkpoint ``.npz``, and
``load_state_dict`` restores it so a resumed run continues bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ShapeError, SpecError, TrainingError


def _positive(key: str, value) -> float:
    value = float(value)
    if not value > 0:
        raise SpecError(f"optimizer option {key}={value} must be > 0")
    return value


def _unit(key: str, value) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise SpecError(f"optimizer option {key}={value} must be in [0, 1)")
    return value


class Optimizer:
    """Base class: holds lr, the step count and per-parameter buffers."""

    name = "base"
    buffers: tuple = ()  # names of per-parameter state arrays
    equations: tuple = ()  # LaTeX of the update rule, one line each

    def __init__(self, lr: float):
        self.lr = _positive("lr", lr)
        self.t = 0  # steps taken
        self.state = {b: {} for b in self.buffers}
        self._scratch = {}  # per-parameter work arrays (not state: never saved)

    @classmethod
    def update_equations(cls) -> list[str]:
        """The update rule as LaTeX lines in the document's symbols (nabla_theta J the gradient of the batch loss J)."""
        return list(cls.equations)

    def hyperparameters(self) -> dict:
        """Scalar options besides lr (stored in the state dict)."""
        return {}

    def _check(self, params: dict, grads: dict) -> None:
        missing = set(params) ^ set(grads)
        if missing:
            raise ShapeError(
                f"{self.name}: params and grads differ in key(s) {', '.join(sorted(missing))}"
            )
        for k, p in params.items():
            if np.shape(grads[k]) != np.shape(p):
                raise ShapeError(
                    f"{self.name}: gradient of {k} has shape {np.shape(grads[k])}, "
                    f"parameter has {np.shape(p)}"
                )

    def _buffer(self, kind: str, key: str, like: np.ndarray) -> np.ndarray:
        buf = self.state[kind].get(key)
        if buf is None:
            buf = self.state[kind][key] = np.zeros_like(like)
        return buf

    def _work(self, key: str, like: np.ndarray) -> tuple:
        """Two scratch arrays shaped like `like`, kept between steps: the updates write
        their intermediates there instead of allocating temporaries (Adam on LeNet-5's
        parameters: 160 -> 103 us a step)."""
        work = self._scratch.get(key)
        if work is None or work[0].shape != like.shape or work[0].dtype != like.dtype:
            work = self._scratch[key] = (np.empty_like(like), np.empty_like(like))
        return work

    # -- fused into a generated train_step (symnet.runtime.optim.fused_update) --
    fused_kind = None   # the update's number in symnet.runtime.optim (None: not fusable)

    def _fused_hyper(self) -> tuple:
        """(a, b, eps, bc1, bc2) of symnet.runtime.optim.fused_update for the current step."""
        return (0.0, 0.0, 1.0, 1.0, 1.0)

    def fused_step(self, lr: float) -> tuple:
        """Advance the step count as step() does; (kind, h) for the generated update at rate lr."""
        if self.fused_kind is None:
            raise TrainingError(f"optimizer {self.name!r} has no fused update")
        self.t += 1
        a, b, eps, bc1, bc2 = (float(x) for x in self._fused_hyper())
        return self.fused_kind, (float(lr), a, b, eps, bc1, bc2, 1.0 - a, 1.0 - b)

    def fused_state(self, key: str, like: np.ndarray) -> list:
        """The two state buffers of parameter `key` as flat views the update writes in place
        (empty arrays where this optimiser keeps fewer)."""
        out = []
        for kind in self.buffers:
            buf = self._buffer(kind, key, like)
            if buf.dtype != like.dtype or buf.shape != like.shape or not buf.flags.c_contiguous:
                buf = self.state[kind][key] = np.ascontiguousarray(buf, dtype=like.dtype).reshape(like.shape)
            out.append(buf.reshape(-1))
        return out + [np.empty(0, like.dtype)] * (2 - len(out))

    def step(self, params: dict, grads: dict) -> None:
        """Update every parameter in place from its gradient."""
        self._check(params, grads)
        self.t += 1
        for key, p in params.items():
            self._update(key, p, np.asarray(grads[key], dtype=p.dtype))

    def _update(self, key, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- checkpoints ------------------------------------------------------

    def state_dict(self) -> dict:
        """Flat dict: 'optimizer', 'lr', 't', options, and '<buffer>.<param>' arrays."""
        d = {"optimizer": self.name, "lr": self.lr, "t": self.t}
        d.update(self.hyperparameters())
        for kind, bufs in self.state.items():
            for key, arr in bufs.items():
                d[f"{kind}.{key}"] = arr.copy()
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore what state_dict returned (values may be 0-d arrays from .npz)."""
        saved = str(np.asarray(d.get("optimizer", self.name)))
        if saved != self.name:
            raise TrainingError(
                f"checkpoint optimizer is {saved!r} but this run uses {self.name!r}"
            )
        self.lr = float(d["lr"])
        self.t = int(d["t"])
        for k in self.hyperparameters():
            if k in d:
                setattr(self, k, float(d[k]))
        self.state = {b: {} for b in self.buffers}
        for k, v in d.items():
            kind, _, key = k.partition(".")
            if key and kind in self.state:
                self.state[kind][key] = np.array(v, copy=True)


class SGD(Optimizer):
    """Plain gradient descent."""

    name = "sgd"
    equations = (r"\theta \leftarrow \theta - \eta\, \nabla_{\theta} J",)

    fused_kind = 0

    def _update(self, key, p, g):
        p -= self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum with coefficient beta, as torch.optim.SGD(momentum=beta), dampening 0."""

    name = "momentum"
    buffers = ("v",)
    equations = (
        r"\mathbf{v} \leftarrow \beta\, \mathbf{v} + \nabla_{\theta} J",
        r"\theta \leftarrow \theta - \eta\, \mathbf{v}",
    )

    def __init__(self, lr: float, beta: float = 0.9):
        super().__init__(lr)
        self.beta = _unit("beta", beta)

    def hyperparameters(self):
        return {"beta": self.beta}

    fused_kind = 1

    def _fused_hyper(self):
        return (self.beta, 0.0, 1.0, 1.0, 1.0)

    def _update(self, key, p, g):
        # torch starts the buffer at g; mu*0 + g is the same thing.
        v = self._buffer("v", key, p)
        v *= self.beta
        v += g
        p -= self.lr * v


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop with decay alpha (not centred, no momentum)."""

    name = "rmsprop"
    buffers = ("s",)
    equations = (
        r"\mathbf{s} \leftarrow \alpha\, \mathbf{s} + (1 - \alpha)\, \nabla_{\theta} J \odot \nabla_{\theta} J",
        r"\theta \leftarrow \theta - \eta\, \frac{\nabla_{\theta} J}{\sqrt{\mathbf{s}} + \epsilon}",
    )

    def __init__(self, lr: float, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(lr)
        self.alpha = _unit("alpha", alpha)
        self.eps = _positive("eps", eps)

    def hyperparameters(self):
        return {"alpha": self.alpha, "eps": self.eps}

    fused_kind = 2

    def _fused_hyper(self):
        return (self.alpha, 0.0, self.eps, 1.0, 1.0)

    def _update(self, key, p, g):
        s = self._buffer("s", key, p)
        s *= self.alpha
        s += (1.0 - self.alpha) * g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    """Adam as torch.optim.Adam (betas = beta1, beta2), with bias correction after tau updates."""

    name = "adam"
    buffers = ("m", "v")
    equations = (
        # printed bold v, s (not m: m is the batch size; s alone is a stride); the buffers keep torch's names m, v
        r"\mathbf{v} \leftarrow \beta_1 \mathbf{v} + (1 - \beta_1)\, \nabla_{\theta} J",
        r"\mathbf{s} \leftarrow \beta_2 \mathbf{s} + (1 - \beta_2)\, \nabla_{\theta} J \odot \nabla_{\theta} J",
        r"\hat{\mathbf{v}} = \frac{\mathbf{v}}{1 - \beta_1^{\tau}}, \qquad \hat{\mathbf{s}} = \frac{\mathbf{s}}{1 - \beta_2^{\tau}}",
        r"\theta \leftarrow \theta - \eta\, \frac{\hat{\mathbf{v}}}{\sqrt{\hat{\mathbf{s}}} + \epsilon}",
    )

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(lr)
        if len(tuple(betas)) != 2:
            raise SpecError(f"optimizer option betas={betas!r} must be a pair (beta1, beta2)")
        self.beta1 = _unit("betas[0]", betas[0])
        self.beta2 = _unit("betas[1]", betas[1])
        self.eps = _positive("eps", eps)

    def hyperparameters(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    fused_kind = 3

    def _fused_hyper(self):
        return (self.beta1, self.beta2, self.eps, 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t)

    def _update(self, key, p, g):
        m = self._buffer("m", key, p)
        v = self._buffer("v", key, p)
        w1, w2 = self._work(key, p)
        # Same order of operations as torch, so float64 results match closely.
        m *= self.beta1
        np.multiply(1.0 - self.beta1, g, out=w1)
        m += w1                                   # m = beta1 m + (1 - beta1) g
        v *= self.beta2
        np.multiply(1.0 - self.beta2, g, out=w1)
        w1 *= g
        v += w1                                   # v = beta2 v + (1 - beta2) g g
        bc1 = 1.0 - self.beta1**self.t
        bc2 = 1.0 - self.beta2**self.t
        np.sqrt(v, out=w1)
        w1 /= math.sqrt(bc2)                      # a Python float: float32 stays float32, as torch
        w1 += self.eps                            # denom = sqrt(v) / sqrt(bc2) + eps
        np.multiply(self.lr / bc1, m, out=w2)
        w2 /= w1
        p -= w2                                   # p -= (lr / bc1) m / denom


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad (lr_decay 0, accumulator starting at 0)."""

    name = "adagrad"
    buffers = ("s",)
    equations = (
        r"\mathbf{s} \leftarrow \mathbf{s} + \nabla_{\theta} J \odot \nabla_{\theta} J",
        r"\theta \leftarrow \theta - \eta\, \frac{\nabla_{\theta} J}{\sqrt{\mathbf{s}} + \epsilon}",
    )

    def __init__(self, lr: float, eps: float = 1e-10):
        super().__init__(lr)
        self.eps = _positive("eps", eps)

    def hyperparameters(self):
        return {"eps": self.eps}

    fused_kind = 4

    def _fused_hyper(self):
        return (0.0, 0.0, self.eps, 1.0, 1.0)

    def _update(self, key, p, g):
        s = self._buffer("s", key, p)
        s += g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, RMSprop, Adam, Adagrad)}


def make_optimizer(name: str, lr: float, **kw) -> Optimizer:
    """Optimiser by name: sgd, momentum, rmsprop, adam or adagrad."""
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise SpecError(
            f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}"
        )
    try:
        return OPTIMIZERS[key](lr, **kw)
    except TypeError:
        raise SpecError(
            f"optimizer {key!r}: unknown option(s) {', '.join(sorted(kw))}; "
            f"valid: {_options(OPTIMIZERS[key])}"
        ) from None


def _options(cls) -> str:
    import inspect

    names = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "lr", "lr0")]
    return ", ".join(names) or "none"


# --------------------------------------------------------------------------
# Learning-rate schedules


class Schedule:
    """Learning rate as a function of the (0-based) epoch."""

    name = "base"
    latex = r"\eta_t = \eta_0"

    def __init__(self, lr0: float):
        self.lr0 = _positive("lr", lr0)

    def __call__(self, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({opts})"


class ConstantLR(Schedule):
    """The same learning rate every epoch."""
    name = "constant"
    latex = r"\eta_t = \eta_0"

    def __call__(self, epoch):
        return self.lr0


class StepLR(Schedule):
    """As torch.optim.lr_scheduler.StepLR: multiply by phi (option gamma) every P epochs (option step_size)."""

    name = "step"
    latex = r"\eta_t = \eta_0\, \varphi^{\lfloor t / P \rfloor}"

    def __init__(self, lr0, step_size: int = 10, gamma: float = 0.1):
        super().__init__(lr0)
        if int(step_size) != step_size or step_size < 1:
            raise SpecError(f"schedule option step_size={step_size!r} must be a positive integer")
        self.step_size = int(step_size)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch):
        return self.lr0 * self.gamma ** (int(epoch) // self.step_size)


class ExponentialLR(Schedule):
    """torch.optim.lr_scheduler.ExponentialLR: multiply by phi (option gamma) every epoch."""

    name = "exponential"
    latex = r"\eta_t = \eta_0\, \varphi^{t}"

    def __init__(self, lr0, gamma: float = 0.95):
        super().__init__(lr0)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch):
        return self.lr0 * self.gamma ** int(epoch)


class InverseTimeLR(Schedule):
    """Inverse-time (1/t) decay: the starting rate divided by 1 + nu t (nu: option decay)."""

    name = "inverse_time"
    latex = r"\eta_t = \frac{\eta_0}{1 + \nu\, t}"

    def __init__(self, lr0, decay: float = 0.01):
        super().__init__(lr0)
        decay = float(decay)
        if decay < 0:
            raise SpecError(f"schedule option decay={decay} must be >= 0")
        self.decay = decay

    def __call__(self, epoch):
        return self.lr0 / (1.0 + self.decay * int(epoch))


SCHEDULES = {cls.name: cls for cls in (ConstantLR, StepLR, ExponentialLR, InverseTimeLR)}


def make_schedule(name: str, lr0: float, **kw) -> Schedule:
    """Schedule by name: constant, step, exponential or inverse_time."""
    key = str(name).lower()
    if key not in SCHEDULES:
        raise SpecError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[key](lr0, **kw)
    except TypeError:
        raise SpecError(
            f"schedule {key!r}: unknown option(s) {', '.join(sorted(kw))}; "
            f"valid: {_options(SCHEDULES[key])}"
        ) from None
