"""The kernel template's context: the network as a list of ops, with the
element-wise math of each op printed by NumbaPrinter from the Derivation.

Python decides everything here (names, shapes, which variant of a layer
function a template renders); the template only lays the text out.
Array names in the generated code: A<i> is the output of layer i (A0 is X),
G<i> is g'(z) of a layer with an activation, D<i> the gradient of the loss
with respect to A<i> (with respect to z<i> for a layer with an activation:
the layer above multiplies by G<i> as it writes D<i>), I<i> the argmax of a
max-pooling layer, M<i> the scaled keep-mask of a dropout layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

from ..derive.dropout import kept_scale as dropout_scale
from ..errors import SpecError

# Layers this size or smaller use plain loops instead of BLAS calls (call
# overhead dominates there); measured in benchmarks/bench_train_step.py.
SMALL_LAYER = 64 * 64
# In conv networks the dense layers' BLAS calls come between long conv kernels,
# so OpenBLAS's threads have gone to sleep and waking them costs more than the
# product (LeNet-5: 8.0 ms a step with BLAS, 1.2-1.5 ms with loops).
SMALL_LAYER_CONV_NET = 256 * 128
FASTMATH = ("nsz", "arcp", "contract", "reassoc")   # no nnan/ninf: inf/nan keep IEEE meaning
CONV_KINDS = ("conv2d", "maxpool2d", "avgpool2d", "flatten")
SUPPORTED = ("dense", "dropout", "batchnorm") + CONV_KINDS


def python_entries(conv_net: bool) -> bool:
    """Whether the entry points are assembled in Python (calling compiled kernels in turn)
    rather than compiled whole. A compiled entry re-optimises every kernel it calls
    (Numba links them in): for LeNet-5 most of its cold start. A conv network's step
    takes a millisecond or more, so the Python work between its kernels (about 30 us a
    LeNet-5 step: 40 calls, workspace views) costs 1-3 %; small MLPs' steps take
    microseconds and keep their compiled entries (docs/performance.md, issue 14)."""
    return conv_net


# ---------------------------------------------------------- printed functions
@dataclass
class Function:
    """One small @njit function of printed math: name(args) -> expr."""
    name: str
    args: tuple[str, ...]
    doc: str
    lines: list[str] = field(default_factory=list)   # CSE assignments
    result: str = ""
    ops: int = 0
    label: str = ""     # where it comes from (layer, rule) and its op count, printed above it


TANH_HELPER = "tanh_f32"


def tanh_function() -> Function:
    """float32 tanh, vectorisable: SymPy's Padé approximant (symnet.approximants), in float64."""
    from ..approximants import PADE_ORDER, tanh_float32
    from .printer import NumbaPrinter
    r = tanh_float32()
    print64 = NumbaPrinter({"dtype": "float64"})
    c = print64.doprint(r.clamp)
    L, M = PADE_ORDER
    doc = (f"tanh(x) in float32: the [{L}/{M}] Pade approximant of tanh at 0, from SymPy's Taylor series, "
           f"in float64 on x clamped to [-{c}, {c}] (tanh rounds to +-1 beyond); vectorised, unlike np.tanh")
    ops = int(sp.count_ops(r.P) + sp.count_ops(r.Q)) + 4
    return Function(TANH_HELPER, ("x",), doc,
                    [f"v = min(max(np.float64(x), -{c}), {c})   # NaN stays NaN", f"{r.s} = v*v"],
                    f"np.float32(v*({print64.doprint(r.P)})/({print64.doprint(r.Q)}))", ops,
                    f"float32 tanh of the activations (symnet.approximants); {ops} ops")


def print_function(printer, name, args, expr, doc, where) -> Function:
    from sympy.printing.codeprinter import PrintMethodNotImplementedError
    try:
        block = printer.print_block(expr)      # each subexpression evaluated (and printed) once
    except PrintMethodNotImplementedError as exc:
        raise SpecError(f"{where}: cannot be compiled ({str(exc).splitlines()[0]})") from None
    return Function(name, args, doc, block.lines, block.result, block.ops, f"{where}; {block.ops} ops")


class _Names:
    """Unique function names per distinct expression (act_tanh, act_custom1, ...)."""

    def __init__(self):
        self.by_key: dict[tuple, str] = {}
        self.used: set[str] = set()
        self.custom = 0

    def get(self, prefix, act_name, key):
        if key in self.by_key:
            return self.by_key[key], False
        if act_name == "custom":
            self.custom += 1
            base = f"{prefix}_custom{self.custom}"
        else:
            base = f"{prefix}_{act_name}"
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        self.by_key[key] = name
        return name, True


def _doc(expr) -> str:
    return sp.sstr(expr).replace("\\", "/").replace('"', "'")


def _dims(shape) -> str:
    """'(rows, 6, 24, 24)': the batch array shape as code."""
    return "(rows, " + ", ".join(str(s) for s in shape) + ")"


class _Printed:
    """Collects the printed functions of a network, one per distinct expression."""

    def __init__(self, net):
        from .printer import NumbaPrinter
        self.printer = NumbaPrinter({"dtype": net.dtype, "tanh_helper": TANH_HELPER})
        self.functions: list[Function] = []
        self.act_names, self.dact_names = _Names(), _Names()

    def add(self, name, args, expr, doc, where):
        self.functions.append(print_function(self.printer, name, args, expr, doc, where))

    def activation(self, am, p) -> str:
        name, new = self.act_names.get("act", am.name, ("act", sp.srepr(am.g)))
        if new:
            self.add(name, ("x",), am.g, f"activation {am.name}: g(x) = {_doc(am.g)}",
                     f"{p.where}: activation {p.layer.activation.describe()}")
        return name

    def helpers(self) -> None:
        """Put the functions the printed math calls (float32 tanh) in front of it."""
        if TANH_HELPER in self.printer.helpers_used:
            self.functions.insert(0, tanh_function())

    def batchnorm(self) -> None:
        """bn_<key> functions of batch norm's kernel math (printed once per network)."""
        if any(f.name.startswith("bn_") for f in self.functions):
            return
        from ..derive.batchnorm import kernel_math
        for key, (args, expr) in kernel_math().items():
            self.add(f"bn_{key}", tuple(str(a) for a in args), expr,
                     f"batch norm: {key}, from the derivation: {_doc(expr)}", f"batchnorm ({key})")

    def derivative(self, am, p) -> str:
        if am.dg_in_a is not None:
            dexpr, key, how = am.dg_in_a, ("a", sp.srepr(am.dg_in_a)), "written in a = g(x)"
        else:
            dexpr, key, how = am.dg_numeric, ("x", sp.srepr(am.dg_numeric)), "in x"
        name, new = self.dact_names.get("dact", am.name, key)
        if new:
            self.add(name, ("x", "a"), dexpr, f"activation {am.name}: g'(x) {how}, derived by SymPy: {_doc(dexpr)}",
                     f"{p.where}: the derivative of activation {p.layer.activation.describe()}")
        return name


# ------------------------------------------------------------------- ops
def _op(p, i, first) -> dict:
    return {"kind": p.layer.type, "i": i, "where": p.where, "describe": p.layer.describe(),
            "A_in": "X" if first else f"A{i - 1}", "A": f"A{i}", "D": f"D{i}",
            "D_in": "DX" if first else f"D{i - 1}", "first": first, "G_in": "",
            "out_dims": _dims(p.out_shape), "in_dims": _dims(p.in_shape), "k": p.trainable_index,
            "out_size": math.prod(p.out_shape), "in_size": math.prod(p.in_shape), "has_act": False, "output": False,
            "act": "", "dact": "", "softmax": False, "loss_macro": "dense_loss"}


def _dense_op(op, p, small_layer):
    n_in, n_out = p.in_shape[0], p.out_shape[0]
    small = n_in * n_out <= small_layer
    op.update(n_in=n_in, n_out=n_out, W=p.params["W"], b=p.params["b"], small=small,
              mm={which: f"mm_{which}" + ("_small" if small else "") for which in ("abt", "ab", "atb")})
    # The output layer's kernels: where the entry points are Python, z = A_in W^T + b comes
    # from the runtime's dense_linear (compiled once per machine, not linked and optimised
    # again into this network's loss kernel: 0.25 s of a cold start) and they take z;
    # compiled entry points have them compute it.
    linear = not op["py"]
    op.update(plus_b=" + b[i]" if linear else "", plus_b0=" + b[0]" if linear else "",
              inputs="A_in, W, b, " if linear else "",
              z_into={out: [f"{op['mm']['abt']}(A_in, W, {out})"] if linear else [] for out in ("A", "D", "P")})


def _conv_op(op, p):
    layer = p.layer
    from ..runtime.conv import small_layer   # the runtime's own rule for its small kernels
    small = small_layer(layer.filters, p.in_shape[0], *layer.kernel, *p.out_shape[1:], layer.stride, layer.pads)
    op.update(W=p.params["W"], b=p.params["b"], stride=layer.stride, pads=tuple(layer.pads), small=small)


def build_ops(net, derivation, printed: _Printed) -> list[dict]:
    """The network's layers as ops for the template (the final softmax layer is
    folded into the output op's loss)."""
    placed = list(net.placed)
    if placed[-1].layer.type == "softmax":
        placed = placed[:-1]
    for p in placed:
        if p.layer.type not in SUPPORTED:
            raise SpecError(f"{p.where}: the kernel generator cannot compile a {p.layer.type} layer")
    if placed[-1].layer.type != "dense":
        raise SpecError(f"{placed[-1].where}: the kernel generator needs a dense output layer")

    conv_net = any(p.layer.type in CONV_KINDS for p in placed)
    small_layer = SMALL_LAYER_CONV_NET if conv_net else SMALL_LAYER
    ops = []
    for n, p in enumerate(placed):
        op = _op(p, p.position, n == 0)
        op["py"] = python_entries(conv_net)
        kind = op["kind"]
        if kind == "dense":
            _dense_op(op, p, small_layer)
        elif kind == "conv2d":
            _conv_op(op, p)
        elif kind in ("maxpool2d", "avgpool2d"):
            op.update(size=p.layer.size, stride=p.layer.stride, I=f"I{p.position}")
            if kind == "avgpool2d":   # the derived factor of one input in its window, for this size
                from ..derive.conv import KH, KW, generic_avgpool
                factor = generic_avgpool()["factor"].xreplace({KH: p.layer.size, KW: p.layer.size})
                op["scale"] = printed.printer.doprint(factor)
        elif kind == "flatten":
            op.update(n_out=p.out_shape[0])
        elif kind == "dropout":
            op.update(M=f"M{p.position}", rate=p.layer.rate, shape=tuple(p.out_shape),
                      scale=float(dropout_scale(p.layer.rate)))
        elif kind == "batchnorm":
            printed.batchnorm()
            per_channel = 1
            for size in p.in_shape[1:]:
                per_channel *= size
            # gamma/beta take the W/b slots of the generic gradient and SGD code.
            op.update(W=p.params["gamma"], b=p.params["beta"], C=p.in_shape[0], S=per_channel,
                      eps=repr(float(p.layer.eps)), momentum=repr(float(p.layer.momentum)),
                      RM=p.state["running_mean"], RV=p.state["running_var"], Xhat=f"X{p.position}",
                      Inv=f"V{p.position}")
        if n == len(placed) - 1:
            op["output"] = True
        elif kind in ("dense", "conv2d", "batchnorm"):
            am = derivation.activations[p.position]
            op.update(has_act=True, G=f"G{p.position}", act=printed.activation(am, p),
                      dact=printed.derivative(am, p))
        ops.append(op)
    for below, op in zip(ops, ops[1:]):
        if below["has_act"]:
            op["G_in"] = below["G"]
    return ops


def output_math(net, derivation, printed: _Printed, out_op, p_out) -> None:
    """Print the loss and delta^(L) functions; the output op gets its activation."""
    from ..derive.core import A, N_OUT, P, Y, Z
    x = sp.Symbol("x", real=True)
    out = derivation.output
    n_out = out_op["n_out"]
    if out.kind == "elementwise":
        am = derivation.activations[p_out.position]
        out_op["act"] = printed.activation(am, p_out)
        out_op["identity"] = am.g == x
        printed.add("loss_elem", ("z", "y"), out.loss_value,
                    f"loss {net.loss.name}: per output element, stable form: {_doc(out.loss_value)}",
                    f"loss {net.loss.name}")
        use_a = out.delta_in_a is not None and sp.count_ops(out.delta_in_a) <= sp.count_ops(out.delta)
        dexpr = (out.delta_in_a if use_a else out.delta).subs(N_OUT, n_out)
        printed.add("delta_elem", ("z", "a", "y"), dexpr,
                    f"loss {net.loss.name}: delta = dloss/dz per element (1/n included), "
                    f"by SymPy: {_doc(out.delta_in_a if use_a else out.delta)}", f"loss {net.loss.name}")
        if out.loss_value.free_symbols - {Z, Y} or dexpr.free_symbols - {Z, A, Y}:
            raise SpecError(f"loss {net.loss.name}: the kernel math uses unknown symbols")
    elif out.kind == "multiclass_hinge":
        _multiclass_hinge_math(net, derivation, printed, out_op, p_out)
    else:
        from ..derive.output import SOFTMAX_S, SOFTMAX_YZ, softmax_kernel_loss
        out_op["softmax"] = True
        out_op["loss_macro"] = "dense_loss_softmax"
        value = softmax_kernel_loss()
        printed.add("loss_softmax", ("s", "yz"), value,
                    f"loss {net.loss.name}: one example's loss from s = sum exp(z - max z), "
                    f"yz = sum y (z - max z), by SymPy: {_doc(value)}", f"loss {net.loss.name}")
        if value.free_symbols - {SOFTMAX_S, SOFTMAX_YZ}:
            raise SpecError(f"loss {net.loss.name}: the kernel math uses unknown symbols")
        printed.add("delta_softmax", ("p", "y"), out.delta,
                    f"loss {net.loss.name}: delta = dloss/dz of softmax cross entropy, "
                    f"by SymPy: {_doc(out.delta)}", f"loss {net.loss.name}")
        if out.delta.free_symbols - {P, Y}:
            raise SpecError(f"loss {net.loss.name}: the kernel math uses unknown symbols")


def _multiclass_hinge_math(net, derivation, printed: _Printed, out_op, p_out) -> None:
    """The three derived pieces of the multi-class hinge kernel: per-class loss,
    violation count and delta, in z, y and the sums yz, c (symnet.derive.output)."""
    from ..derive.core import N_OUT
    from ..derive.output import multiclass_hinge_kernel
    name = net.loss.name
    out_op["act"] = printed.activation(derivation.activations[p_out.position], p_out)   # identity: scores
    out_op["loss_macro"] = "dense_loss_margin"
    value, count, delta = (e.subs(N_OUT, out_op["n_out"]) for e in multiclass_hinge_kernel())
    printed.add("loss_margin", ("z", "y", "yz"), value,
                f"loss {name}: one class's term, yz = sum y z the true class's score, by SymPy: {_doc(value)}",
                f"loss {name}")
    printed.add("count_margin", ("z", "y", "yz"), count,
                f"loss {name}: 1 where a wrong class violates the margin, by SymPy: {_doc(count)}", f"loss {name}")
    printed.add("delta_margin", ("z", "y", "yz", "c"), delta,
                f"loss {name}: delta = dloss/dz (1/n included), c = sum of count_margin, by SymPy: {_doc(delta)}",
                f"loss {name}")


def forward_flops_per_row(net) -> int:
    """2 x the multiply-adds of one example's forward pass through the dense and conv
    layers (what decides whether a batch is worth cutting into threads)."""
    flops = 0
    for p in net.placed:
        if p.layer.type == "dense":
            flops += 2 * p.in_shape[0] * p.out_shape[0]
        elif p.layer.type == "conv2d":
            filters, channels, kh, kw = net.param_shapes[p.params["W"]]
            flops += 2 * filters * channels * kh * kw * p.out_shape[1] * p.out_shape[2]
    return flops


# ------------------------------------------------------------------ program
def _entries(ops, codes, param_names, state_names, masks) -> list:
    """The whole-network kernels as statement lists (symnet.codegen.program)."""
    from .program import Alias, Call, Entry, Take, When
    out, out_code = ops[-1], codes[-1]
    params, state = tuple(param_names), tuple(state_names)
    evaluate = Entry("_evaluate", ("X", "Y", "m", "with_loss", "work", "iwork") + params + state,
                     doc="(outputs, the rows' share of the m-example batch loss if with_loss, else 0), in\n"
                         "    evaluation mode: one pass serves forward() and loss().", returns=f"{out['A']}, loss")
    for code in codes:
        evaluate.body += code.infer
    evaluate.body += [Alias("loss", "0.0"), When("with_loss", tuple(out_code.loss(False)))]

    def forward_backward(update):
        body = [s for code in codes[:-1] for s in code.train_forward]
        body += out_code.loss(True)
        for code in reversed(codes):
            body += code.backward(update)
        return body
    grads = tuple(f"g{p}" for p in params)
    head = ("X", "Y", "DX", "batch_stats", "update")
    train = [Entry("_loss_and_grads", head + ("m", "work", "iwork") + params + state + grads + tuple(masks),
                   forward_backward(False), "loss", "(the rows' share of the batch loss; the gradients written "
                   "into g<name>), in training mode"),
             Entry("_train_step", head + ("kind", "h", "reg", "noreg", "m", "work", "iwork") + params + state
                   + tuple(f"S{k}{p}" for p in params for k in (1, 2)) + tuple(masks),
                   forward_backward(True), "loss", "one optimiser step (symnet.runtime.optim.fused_update): each "
                   "layer's update right after its gradient", nogil=False)]
    assert train[0].work == train[1].work, "the training kernels must take the same workspaces"
    for entry in [evaluate] + train:
        entry.python = ops[0]["py"]
    return [evaluate] + train


def _array_activation_kernels(ops, functions) -> list:
    """The act_arrays/act_inplace pair of each activation a conv layer applies (and a dense
    layer, where the entry points are assembled in Python and take z from the runtime)."""
    from .program import Kernel
    ops_of = {f.name: f.ops for f in functions}
    kernels, seen = [], set()
    for op in ops:
        if op["has_act"] and (op["kind"] == "conv2d" or (op["kind"] == "dense" and op["py"])) and op["act"] not in seen:
            seen.add(op["act"])
            f = {"act": op["act"], "dact": op["dact"]}
            n = ops_of.get(op["act"], 0) + ops_of.get(op["dact"], 0)
            where = f"activation {op['act'][len('act_'):]} of {'conv and dense' if op['py'] else 'conv'} layers"
            kernels += [Kernel("act_arrays", f, f"{where} (training); {n} element-wise ops"),
                        Kernel("act_inplace", f, f"{where} (inference); {ops_of.get(op['act'], 0)} element-wise ops")]
    return kernels


def context(net, derivation, runtime_text: str) -> dict:
    from .. import __version__
    from .emitters import EMITTERS
    printed = _Printed(net)
    ops = build_ops(net, derivation, printed)
    placed = [p for p in net.placed if p.layer.type != "softmax"]
    output_math(net, derivation, printed, ops[-1], placed[-1])
    printed.helpers()
    for f in printed.functions:   # names reaching the file are generated identifiers
        assert f.name.isidentifier(), f.name
    ops_of = {f.name: f.ops for f in printed.functions}
    codes = [EMITTERS[op["kind"]](op, ops_of) for op in ops]
    trainable = [op for op in ops if op["k"] is not None]
    param_shapes = [(name, net.param_shapes[name]) for op in trainable for name in (op["W"], op["b"])]
    param_names = [name for name, _ in param_shapes]
    dense = [op for op in ops if op["kind"] == "dense"]
    uses_blas = any(not op["small"] for op in dense)
    forward_flops = forward_flops_per_row(net)
    dropout = [op for op in ops if op["kind"] == "dropout"]
    state_names = [name for op in ops if op["kind"] == "batchnorm" for name in (op["RM"], op["RV"])]
    entries = _entries(ops, codes, param_names, state_names, [op["M"] for op in dropout])
    eval_work, eval_index = entries[0].work
    train_work, train_index = entries[1].work
    kind = derivation.output.kind
    has_state = bool(state_names)
    return {
        "version": __version__,
        "name": net.name,
        "fingerprint": net.fingerprint(),
        "summary": net.summary().splitlines(),
        "dtype": net.dtype,
        "np_dtype": f"np.{net.dtype}",
        "fastmath": "{" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}",
        "functions": printed.functions,
        "n_ops": sum(f.ops for f in printed.functions),
        "layer_kernels": _array_activation_kernels(ops, printed.functions) + [k for c in codes for k in c.kernels],
        "entries": entries,
        "python_entries": ops[0]["py"],
        "entries_heading": ("# -- whole-network entry points (arrays positional) " if ops[0]["py"]
                            else "# -- whole-network kernels (arrays positional) ").ljust(83, "-"),
        "runtime": runtime_text,
        "runtime_calls": sorted({name for op in dense if not op["py"] for name in op["mm"].values()}),   # called by layer kernels
        "dropout": tuple((op["rate"], op["shape"], op["scale"]) for op in dropout),
        "dropout_doc": ("Dropout: training calls take masks=dropout_masks(rng, batch); without masks\n"
                        "dropout is off (evaluation).\n") if dropout else "",
        "loss_name": net.loss.name,
        "in_shape": tuple(net.input_shape),
        "n_out": ops[-1]["n_out"],
        "param_names": tuple(param_names),
        "penalised": tuple(name.startswith("W") for name in param_names),   # weights: L2/L1 penalties
        "param_shapes": param_shapes,
        "state_names": tuple(state_names),
        "state_shapes": [(name, net.state_shapes[name]) for name in state_names],
        "forward_note": " (softmax probabilities)" if kind == "softmax" else "",
        "state_doc": ("Batch norm: forward() and loss() normalise with the running statistics in params;\n"
                      "loss_and_grads() with the batch's, and update_state=True moves the running ones in place;\n"
                      "loss_and_input_grad() with the running ones, or training=True: the batch's (the running\n"
                      "ones do not move).\n") if has_state else "",
        "eval_work": eval_work,
        "train_work": train_work,
        "index_work": max(eval_index, train_index),
        "eval_flops": forward_flops,
        "train_flops": 3 * forward_flops,   # backward: two products per forward one
        # BLAS runs its own threads; batch norm's training statistics need the whole batch.
        "split_eval": not uses_blas,
        "split_train": not uses_blas and not state_names,
    }


__all__ = ["context", "Function", "print_function", "SMALL_LAYER", "FASTMATH", "CONV_KINDS"]
