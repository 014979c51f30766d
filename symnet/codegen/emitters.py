"""One emitter per layer kind: the layer's kernels and its statements for inference,
the training forward pass and backward (symnet.codegen.program).

An emitter receives the layer's op (context.build_ops: names, shapes, printed
math) and returns a LayerCode; Python assembles the entry points from them
(context.program). Adding a layer kind: one derive rule plus one emitter here
and its kernel macros in templates/kernels.jinja.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .program import Alias, Alloc, Call, Kernel, Take, When


@dataclass
class LayerCode:
    kernels: list[Kernel] = field(default_factory=list)
    infer: list = field(default_factory=list)
    train_forward: list = field(default_factory=list)
    backward: Callable[[bool], list] = lambda update: []
    loss: Callable[[bool], list] = lambda grad: []   # the output layer's: loss and delta^(L) (grad)


def _label(L, rule, ops) -> str:
    return f"{L['where']}: {L['describe']}; rule {rule}; {ops} element-wise ops"


def _grads_in(L, update):
    """Gradient arrays of a trainable layer: fresh ones in _train_step (the caller's in _loss_and_grads)."""
    if L["k"] is None or not update:
        return []
    return [Alloc(f"g{L['W']}", f"{L['W']}.shape"), Alloc(f"g{L['b']}", f"{L['b']}.shape")]


def _delta_below(L):
    """Where the gradient below this layer goes (none for the first layer: DX is the caller's)."""
    if L["first"]:
        return []
    return [Take(L["D_in"], L["in_size"], L["in_dims"])]


def _flat(L, name) -> str:
    """An array as the argument of an element-wise kernel: in entry points assembled in
    Python a flat view, so that one compiled signature serves every layer's shape."""
    return f"{name}.ravel()" if L["py"] else name


def _after_backward(L, update):
    out = []
    if L["G_in"] and (L["kind"] != "dense" or L["py"]):   # compiled dense kernels fold g'(z) below in
        out.append(Call("mul_inplace", (_flat(L, L["D_in"]), _flat(L, L["G_in"]))))
    if L["k"] is not None and update:   # the fused optimiser step, right after the gradients
        for name, reg in ((L["W"], "reg" if L["W"].startswith("W") else "noreg"), (L["b"], "noreg")):
            out.append(Call("fused_update", (_flat(L, name), _flat(L, f"g{name}"), f"S1{name}", f"S2{name}",
                                             "kind", "h", reg)))
    return out


def _ints(L, *values) -> tuple[str, ...]:
    """Integer arguments of the shared runtime kernels, typed int64 rather than as literals:
    Numba would compile (and cache) a runtime kernel once per literal value otherwise,
    so networks of other strides or paddings could not share it. From Python (entry
    points assembled in Python) a plain int arrives as int64 already."""
    return tuple(str(v) if L["py"] else f"np.int64({v})" for v in values)


def _small(L) -> str:
    """The suffix of the runtime's loop kernels for small layers ('' for BLAS-sized ones)."""
    return "_small" if L["small"] else ""


def _grad_args(L):
    return (f"g{L['W']}", f"g{L['b']}")


# ------------------------------------------------------------------ dense
def dense(L, ops) -> LayerCode:
    if L["py"]:
        return _dense_runtime(L, ops)
    k, args = L["k"], (L["A_in"], L["W"], L["b"])
    code = LayerCode()
    if L["output"]:
        code.kernels += _output_kernels(L, ops)
        code.infer = [Alloc(L["A"], L["out_dims"]), Call(f"dense{k}_infer", args + (L["A"],))]
        code.loss = lambda grad: _output_loss(L, grad)
    else:
        act_ops = ops.get(L["act"], 0) + ops.get(L["dact"], 0)
        code.kernels.append(Kernel("dense_forward", L, _label(L, "dense forward", act_ops)))
        code.kernels.append(Kernel("dense_infer", L, _label(L, "dense inference", ops.get(L["act"], 0))))
        code.infer = [Take(L["A"], L["out_size"], L["out_dims"]), Call(f"dense{k}_infer", args + (L["A"],))]
        code.train_forward = [Take(L["G"], L["out_size"], L["out_dims"]), Take(L["A"], L["out_size"], L["out_dims"]),
                              Call(f"dense{k}_forward", args + (L["G"], L["A"]))]
    macro = "dense_backward_first" if L["first"] else ("dense_backward_gated" if L["G_in"] else "dense_backward")
    code.kernels.append(Kernel(macro, L, _label(L, "dense backward", 0)))
    gated = (L["G_in"],) if L["G_in"] and not L["first"] else ()

    def backward(update):
        return (_grads_in(L, update) + _delta_below(L)
                + [Call(f"dense{k}_backward", (L["D"], L["A_in"], L["W"]) + _grad_args(L) + (L["D_in"],) + gated)]
                + _after_backward(L, update))
    code.backward = backward
    return code


def _output_loss(L, grad) -> list:
    """The output layer's loss statements: the rows' share of the loss into `loss`, and with
    grad delta^(L) into its D; z from the runtime's dense_linear first where the kernels take it."""
    take_d = Take(L["D"], L["n_out"], L["out_dims"])
    args = ("Y", L["D"], str(grad), "m")
    if not L["py"]:
        return [take_d, Call(f"dense{L['k']}_loss", (L["A_in"], L["W"], L["b"]) + args, "loss")]
    return [take_d, Call(f"dense_linear{_small(L)}", (L["A_in"], L["W"], L["b"], L["D"])),
            Call(f"dense{L['k']}_loss", args, "loss")]


def _output_kernels(L, ops) -> list[Kernel]:
    """The output layer's loss-and-delta^(L) and inference kernels (the printed loss math)."""
    loss_ops = sum(ops.get(f, 0) for f in ("loss_elem", "delta_elem", "delta_softmax",
                                            "loss_margin", "count_margin", "delta_margin"))
    infer = "dense_infer_softmax" if L["softmax"] else "dense_infer"
    return [Kernel(L["loss_macro"], L, _label(L, "output: loss and delta^(L)", loss_ops + ops.get(L["act"], 0))),
            Kernel(infer, L, _label(L, "output: inference", ops.get(L["act"], 0)))]


def _dense_runtime(L, ops) -> LayerCode:
    """A dense layer of entry points assembled in Python: its linear algebra from the
    runtime (compiled once per machine), its activation from the network's shared
    element-wise kernels; only the output layer's loss has kernels of its own."""
    k, args = L["k"], (L["A_in"], L["W"], L["b"])
    small = _small(L)
    code = LayerCode()
    if L["output"]:
        code.kernels = _output_kernels(L, ops)
        code.infer = [Alloc(L["A"], L["out_dims"]), Call(f"dense_linear{small}", args + (L["A"],)),
                      Call(f"dense{k}_infer", (L["A"],))]
        code.loss = lambda grad: _output_loss(L, grad)
    else:
        code.infer = [Take(L["A"], L["out_size"], L["out_dims"]), Call(f"dense_linear{small}", args + (L["A"],)),
                      Call(f"{L['act']}_inplace", (_flat(L, L["A"]),))]
        code.train_forward = [Take(L["G"], L["out_size"], L["out_dims"]), Take(L["A"], L["out_size"], L["out_dims"]),
                              Call(f"dense_linear{small}", args + (L["G"],)),
                              Call(f"{L['act']}_arrays", (_flat(L, L["G"]), _flat(L, L["A"])))]
    code.backward = lambda update: (_grads_in(L, update) + _delta_below(L)
                                    + [Call(f"dense_grads{small}", (L["D"], L["A_in"], L["W"]) + _grad_args(L)
                                            + (L["D_in"],))]
                                    + _after_backward(L, update))
    return code


# ------------------------------------------------------------------ conv2d
def conv2d(L, ops) -> LayerCode:
    take_a = Take(L["A"], L["out_size"], L["out_dims"])
    geometry = _ints(L, L["stride"], *L["pads"])
    small = _small(L)   # stride 1, no padding, BLAS-sized: runtime.conv.small_layer
    code = LayerCode()
    code.infer = [take_a, Call(f"conv2d_forward{small}", (L["A_in"], L["W"], L["b"]) + geometry + (L["A"],)),
                  Call(f"{L['act']}_inplace", (_flat(L, L["A"]),))]
    code.train_forward = [Take(L["G"], L["out_size"], L["out_dims"]), take_a,
                          Call(f"conv2d_forward{small}", (L["A_in"], L["W"], L["b"]) + geometry + (L["G"],)),
                          Call(f"{L['act']}_arrays", (_flat(L, L["G"]), _flat(L, L["A"])))]

    def backward(update):
        return (_grads_in(L, update) + _delta_below(L)
                + [Call(f"conv2d_backward{small}", (L["A_in"], L["W"], L["D"]) + geometry + _grad_args(L)
                        + (L["D_in"],))]
                + _after_backward(L, update))
    code.backward = backward
    return code


# ------------------------------------------------------------------ pooling, flatten, dropout
def _input_gradient(L, call: Call):
    """A layer without parameters: its input gradient, skipped in the first layer unless asked for."""
    if L["first"]:
        return [When("DX.size > 0", (call,))]
    return [call]


def maxpool2d(L, ops) -> LayerCode:
    code = LayerCode()
    code.infer = [Take(L["A"], L["out_size"], L["out_dims"]), Take(L["I"], L["out_size"], L["out_dims"], index=True),
                  Call("maxpool2d_forward", (L["A_in"],) + _ints(L, L["size"], L["stride"]) + (L["A"], L["I"]))]
    code.train_forward = code.infer
    code.backward = lambda update: (_delta_below(L) + _input_gradient(L, Call("maxpool2d_backward", (L["D"], L["I"], L["D_in"])))
                                    + _after_backward(L, update))
    return code


def avgpool2d(L, ops) -> LayerCode:
    window = _ints(L, L["size"], L["stride"]) + (L["scale"],)
    code = LayerCode()
    code.infer = [Take(L["A"], L["out_size"], L["out_dims"]),
                  Call("avgpool2d_scaled_forward", (L["A_in"],) + window + (L["A"],))]
    code.train_forward = code.infer
    code.backward = lambda update: (_delta_below(L) + _input_gradient(L, Call("avgpool2d_scaled_backward", (L["D"],) + window + (L["D_in"],)))
                                    + _after_backward(L, update))
    return code


def flatten(L, ops) -> LayerCode:
    code = LayerCode()
    code.infer = [Call("flatten_forward", (L["A_in"],), target=L["A"])]
    code.train_forward = code.infer

    def backward(update):
        if L["first"]:
            return _input_gradient(L, Call("flatten_backward", (L["D"], "DX")))
        return [Alias(L["D_in"], f"{L['D']}.reshape({L['in_dims']})")] + _after_backward(L, update)
    code.backward = backward
    return code


def dropout(L, ops) -> LayerCode:
    code = LayerCode()
    code.infer = [Alias(L["A"], L["A_in"])]   # evaluation: dropout is off
    code.train_forward = [Take(L["A"], L["out_size"], L["out_dims"]), Call("mul_into", (L["A_in"], L["M"], L["A"]))]
    code.backward = lambda update: (_delta_below(L) + _input_gradient(L, Call("mul_into", (L["D"], L["M"], L["D_in"])))
                                    + _after_backward(L, update))
    return code


# ------------------------------------------------------------------ batch norm
def batchnorm(L, ops) -> LayerCode:
    k = L["k"]
    bn_ops = sum(v for name, v in ops.items() if name.startswith("bn_"))
    code = LayerCode()
    code.kernels = [Kernel("bn_forward", L, _label(L, "batchnorm forward", bn_ops + ops.get(L["act"], 0) + ops.get(L["dact"], 0))),
                    Kernel("bn_infer", L, _label(L, "batchnorm inference", bn_ops + ops.get(L["act"], 0))),
                    Kernel("bn_backward", L, _label(L, "batchnorm backward", bn_ops))]
    params = (L["A_in"], L["W"], L["b"], L["RM"], L["RV"])
    code.infer = [Take(L["A"], L["out_size"], L["out_dims"]), Call(f"bn{k}_infer", params + (L["A"],))]
    code.train_forward = [Take(L["Xhat"], L["out_size"], L["out_dims"]), Alloc(L["Inv"], str(L["C"])),
                          Take(L["G"], L["out_size"], L["out_dims"]), Take(L["A"], L["out_size"], L["out_dims"]),
                          Call(f"bn{k}_forward", params + ("batch_stats", "update", L["Xhat"], L["Inv"], L["G"], L["A"]))]

    def backward(update):
        return (_grads_in(L, update) + _delta_below(L)
                + [Call(f"bn{k}_backward", (L["D"], L["Xhat"], L["Inv"], L["W"], "batch_stats") + _grad_args(L) + (L["D_in"],))]
                + _after_backward(L, update))
    code.backward = backward
    return code


EMITTERS = {"dense": dense, "conv2d": conv2d, "maxpool2d": maxpool2d, "avgpool2d": avgpool2d,
            "flatten": flatten, "dropout": dropout, "batchnorm": batchnorm}

__all__ = ["EMITTERS", "LayerCode"]
