"""The lecture's frame around a derivation: the notation table, the general
recursion with its algorithm box, the batch average in both conventions and
the operators the document uses. Prose here mixes text and `$math$`; the
document module turns it into LaTeX or Markdown."""
from __future__ import annotations

# Operators a document may use, defined once (shown when a step uses them).
OPERATORS = {
    r"\mathbb{1}": (r"indicator", r"$\mathbb{1}[c] = 1$ where the condition $c$ holds and $0$ elsewhere; "
                    r"a comma inside the brackets joins two conditions (both hold)."),
    r"\star": ("cross-correlation", r"$(W \star a)_{f,i,j} = \sum_{c,q,r} W_{f,c,q,r}\, a_{c,\, s i + q,\, s j + r}$ "
               r"(stride $s$), what deep-learning libraries call convolution."),
    r"\operatorname{full}": ("full convolution", r"$\operatorname{full}(\delta) \ast K$ pads $\delta$ with $k - 1$ zeros "
                             r"on every side and convolves it with $K$: every kernel position that touched an input "
                             r"sends its gradient back."),
    r"\operatorname{rot180}": ("flipped kernel", r"$\operatorname{rot180}(W)_{f,c,q,r} = W_{f,c,k-1-q,k-1-r}$: "
                               r"the kernel turned by 180 degrees."),
    r"\check{\delta}": ("dilated error", r"$\check{\delta}^{(l)}_{f,s u,s v} = \delta^{(l)}_{f,u,v}$ and "
                        r"$\check{\delta}^{(l)}_{f,u,v} = 0$ where the stride $s$ does not divide $u$ or $v$: "
                        r"$\delta^{(l)}$ with $s - 1$ zeros inserted between neighbouring entries (undoes a stride $s$)."),
    r"\operatorname{crop}": ("cropping", r"$\operatorname{crop}_p(G)$ removes $p$ rows and columns on every side "
                             r"(undoes a zero padding $p$)."),
    r"\operatorname{route}": ("routing", r"$\operatorname{route}_{\operatorname{argmax}}(G)$ puts each window's gradient "
                              r"at the position of its maximum and zeros elsewhere (overlapping windows add)."),
    r"\operatorname{spread}": ("spreading", r"$\operatorname{spread}_k(G)$ copies each window's gradient to all "
                               r"$k \times k$ positions of the window (overlapping windows add)."),
    r"\operatorname{reshape}": ("reshape", r"$\operatorname{reshape}_{C \times H \times W}(g)$ puts the entries of "
                                r"a vector back into a $C \times H \times W$ array in C, H, W order."),
    r"\odot": ("element-wise product", r"$(u \odot v)_i = u_i v_i$ (Hadamard product)."),
}


def operators_used(texts) -> list[dict]:
    """The operators that occur in the document's math, in the table's order."""
    joined = "\n".join(texts)
    return [{"name": name, "text": text} for key, (name, text) in OPERATORS.items() if key in joined]


def notation_rows(net, d, updates: bool = True, penalty: bool = False) -> list[dict]:
    """Every symbol with its meaning and shape (one meaning per symbol);
    `updates`: the optimisers' symbols too (the document prints their rules);
    `penalty`: the weight penalty's (the spec's [train] sets l2 or l1)."""
    L = max((p.position for p in net.placed), default=0)
    kinds = {p.layer.type for p in net.placed}
    rows = [
        {"symbol": r"x = a^{(0)}", "meaning": "one input example", "shape": str(tuple(net.input_shape))},
        {"symbol": r"l, L", "meaning": f"layer number l, counting every layer from 1 to the last, L = {L}; "
                                       "layer l owns every quantity with superscript (l)", "shape": "scalar"},
        {"symbol": r"z^{(l)}", "meaning": "pre-activation of layer l (before its activation)",
         "shape": "as the layer's output"},
        {"symbol": r"a^{(l)}", "meaning": "output (activation) of layer l; $a^{(L)}$ is the prediction",
         "shape": "as the layer's output"},
        {"symbol": r"\delta^{(l)}", "meaning": r"error of layer l: $\partial \ell / \partial z^{(l)}$",
         "shape": "as $z^{(l)}$"},
        {"symbol": r"g, g'", "meaning": "a layer's activation function and its derivative", "shape": "element-wise"},
    ]
    if kinds & {"dense", "conv2d"}:
        rows.append({"symbol": r"W^{(l)}, b^{(l)}", "meaning": "weights and biases of layer l "
                     "(dense: $W$ is $n^{(l)} \\times n^{(l-1)}$, as PyTorch; conv: filters $\\times$ channels "
                     "$\\times k \\times k$)", "shape": "see the network table"})
    if "dense" in kinds:
        rows.append({"symbol": r"n^{(l)}", "meaning": "number of units of layer l", "shape": "scalar"})
    if "batchnorm" in kinds:
        rows += [
            {"symbol": r"\gamma^{(l)}, \beta^{(l)}", "meaning": "batch norm's scale and shift", "shape": "one per channel"},
            {"symbol": r"u_j, \hat u_j", "meaning": "batch norm's input values of one channel in the batch "
             "(not the network input $x$) and their normalised values", "shape": "scalar"},
            {"symbol": r"\mu_c, \sigma^2_c", "meaning": "batch mean and biased batch variance of channel c",
             "shape": "scalar"},
            {"symbol": r"\mu_{\text{run}}, \sigma^2_{\text{run}}", "meaning": "running mean and variance "
             r"(state, updated with $\leftarrow$)", "shape": "one per channel"},
            {"symbol": r"\kappa", "meaning": "batch norm's momentum for the running statistics", "shape": "scalar"},
            {"symbol": r"\mathcal{L}", "meaning": r"the summed batch loss $m J$", "shape": "scalar"},
            {"symbol": r"\bar u^{(l)}", "meaning": r"the gradient batch norm passes down, "
             r"$\partial \mathcal{L} / \partial u$ at the input's entries", "shape": "as $a^{(l-1)}$"},
        ]
    rows.append({"symbol": r"i, j", "meaning": "element indices: in dense layers unit i of this layer and unit "
                 "j of the layer below, counting from 1; in feature maps row i and column j, counting from 0"
                 + ("; batch norm's values $u_i$, $u_j$" if "batchnorm" in kinds else ""), "shape": "indices"})
    if "dense" in kinds or net.loss.is_categorical or net.loss.kind == "margin":
        rows.append({"symbol": r"h", "meaning": "a unit of the layer above (or a class of the output) summed "
                     "over in a backward step or the loss, counting from 1", "shape": "index"})
    rows += [
        {"symbol": r"y", "meaning": "the target of one example (one-hot for classification)",
         "shape": "as $a^{(L)}$"},
        {"symbol": r"n", "meaning": "number of outputs per example", "shape": "scalar"},
        {"symbol": r"\ell", "meaning": "loss of one example", "shape": "scalar"},
        {"symbol": r"m", "meaning": "batch size (number of examples)", "shape": "scalar"},
        {"symbol": r"e", "meaning": "example index in a batch, from 1 to m", "shape": "index"},
        {"symbol": r"J", "meaning": r"batch loss (cost), the mean $J = \frac{1}{m}\sum_e \ell_e$; "
                                    r"its gradients $\partial J / \partial W^{(l)}$ are the batch averages",
         "shape": "scalar"},
    ]
    if net.loss.name in ("softmax_cross_entropy", "cross_entropy") or "softmax" in kinds:
        rows.append({"symbol": r"p^{(L)}", "meaning": "the softmax output (class probabilities)",
                     "shape": "as $a^{(L)}$"})
    if "dense" in kinds:
        rows.append({"symbol": r"A^{(l)}, \Delta^{(l)}", "meaning": "batch matrices: one example per row",
                     "shape": r"$m \times n^{(l)}$"})
    if kinds & {"conv2d", "maxpool2d", "avgpool2d"}:
        rows.append({"symbol": r"f, c" if "conv2d" in kinds else "c", "meaning":
                     ("filter (output channel) and " if "conv2d" in kinds else "") + "channel, counting from 0",
                     "shape": "indices"})
        rows.append({"symbol": r"q, r", "meaning": "row and column offset inside a kernel or pooling window, "
                     "counting from 0", "shape": "indices"})
        rows.append({"symbol": r"u, v", "meaning": "the other position of a backward step: the input position "
                     "in a convolution's input gradient, the pooled position summed over in pooling's",
                     "shape": "indices"})
        rows.append({"symbol": r"k, s", "meaning": "kernel (window) size and stride", "shape": "scalar"})
    if "maxpool2d" in kinds:
        rows.append({"symbol": r"\omega_j", "meaning": "the values of one pooling window", "shape": "scalar"})
        rows.append({"symbol": r"\hat{i}^{(l)}, \hat{j}^{(l)}", "meaning": "max pooling's argmax: the row and "
                     "column in $a^{(l-1)}$ of the maximum of each window", "shape": "as $a^{(l)}$"})
    if kinds & {"conv2d", "maxpool2d", "avgpool2d", "flatten", "dropout"}:
        rows.append({"symbol": r"\bar a^{(l)}", "meaning": r"gradient arriving at a layer's output, "
                     r"$\partial \ell / \partial a^{(l)}$, where the layer has no activation", "shape": "as $a^{(l)}$"})
    if "dropout" in kinds:
        rows.append({"symbol": r"\rho", "meaning": "dropout rate (probability of dropping an entry)",
                     "shape": "scalar"})
        rows.append({"symbol": r"\xi_i, \Xi", "meaning": "dropout mask entry (1 = kept) and the batch's mask matrix",
                     "shape": "as the layer's input"})
    if updates:
        rows += UPDATE_SYMBOLS
    if updates and penalty:
        rows += [{"symbol": r"R", "meaning": "the weight penalty added to the batch loss (L1, L2 or both)",
                  "shape": "scalar"},
                 {"symbol": r"\lambda_1, \lambda_2", "meaning": "the L1 and L2 coefficients (options l1, l2)",
                  "shape": "scalar"},
                 {"symbol": r"w", "meaning": "one weight, an entry of a weight matrix $W^{(l)}$", "shape": "scalar"}]
    return rows


# The optimisers' and schedules' symbols (symnet.optim writes its rules in these).
UPDATE_SYMBOLS = [
    {"symbol": r"\theta, \nabla_{\theta} J", "meaning": "any parameter and the gradient of the batch loss",
     "shape": "as the parameter"},
    {"symbol": r"\eta, \eta_0", "meaning": "learning rate, its starting value", "shape": "scalar"},
    {"symbol": r"t, \tau", "meaning": "epoch (0-based, schedules); number of updates so far (Adam)", "shape": "scalar"},
    {"symbol": r"\mathbf{v}, \mathbf{s}", "meaning": "an optimiser's state (bold): running gradient (momentum, "
     "Adam's first moment) and running squared gradient (RMSprop, Adagrad, Adam's second moment); "
     "$\\hat{\\mathbf{v}}, \\hat{\\mathbf{s}}$ bias-corrected",
     "shape": "as the parameter"},
    {"symbol": r"\beta", "meaning": "momentum coefficient (option beta)", "shape": "scalar"},
    {"symbol": r"\beta_1, \beta_2", "meaning": "Adam's decay rates (option betas)", "shape": "scalar"},
    {"symbol": r"\alpha", "meaning": "RMSprop's decay rate (option alpha)", "shape": "scalar"},
    {"symbol": r"\epsilon", "meaning": "a small constant that keeps a division finite (option eps; batch norm's eps)",
     "shape": "scalar"},
    {"symbol": r"\varphi, P, \nu", "meaning": "schedules: decay factor (option gamma), its period in epochs "
     "(option step_size), inverse-time decay (option decay)", "shape": "scalar"},
]


NOTATION_INTRO = ("One superscript style throughout: the layer's number in round brackets, $a^{(l)}$; "
                  "subscripts are indices. Per example, vectors are columns.")


def recursion() -> dict:
    paras = [
        "Every layer's error comes from the layer above it by one multiplication, so backpropagation "
        "computes all gradients in one backward sweep. For dense layers:",
    ]
    equations = [
        r"\delta^{(L)} = \frac{\partial \ell}{\partial z^{(L)}} \quad \text{(from the loss, below)}",
        r"\delta^{(l)} = g'\left(z^{(l)}\right) \odot \left(W^{(l+1)}\right)^{T} \delta^{(l+1)}, \qquad l = L-1, \dots, 1",
        r"\frac{\partial \ell}{\partial W^{(l)}} = \delta^{(l)} \left(a^{(l-1)}\right)^{T}, \qquad "
        r"\frac{\partial \ell}{\partial b^{(l)}} = \delta^{(l)}",
    ]
    algorithm = [
        r"Forward pass: for $l = 1, \dots, L$ compute $z^{(l)}$ and $a^{(l)}$ and store both.",
        r"Output error: $\delta^{(L)}$ from the loss and $a^{(L)}$.",
        r"Backward pass: for $l = L, \dots, 1$ compute the gradients of layer l's parameters from "
        r"$\delta^{(l)}$ and $a^{(l-1)}$, then $\delta^{(l-1)}$ from $\delta^{(l)}$; each $\delta$ is computed "
        r"once and reused by the layer below.",
    ]
    cost = (r"Cost: one forward and one backward sweep, $O(L)$ layer operations, about twice the forward pass. "
            r"Writing each weight's gradient as a sum over all paths from it to the loss would enumerate "
            r"a number of paths that grows exponentially with the depth; the recursion shares those sums.")
    return {"paras": paras, "equations": equations, "algorithm": algorithm, "cost": cost}


def conventions() -> dict:
    paras = [
        r"symnet stores a batch of $m$ examples as rows: $A^{(l)}$ is $m \times n^{(l)}$, as NumPy and PyTorch do. "
        r"Many courses store examples as columns ($A^{[l]}$ is $n^{[l]} \times m$, $dZ^{[l]}$ the errors). "
        r"Both give the same numbers, transposed:",
    ]
    rows = [
        {"what": "layer", "rows": r"Z^{(l)} = A^{(l-1)} \left(W^{(l)}\right)^{T} + \mathbf{1} \left(b^{(l)}\right)^{T}",
         "columns": r"Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}"},
        {"what": "weights", "rows": r"\frac{\partial J}{\partial W^{(l)}} = \frac{1}{m} \left(\Delta^{(l)}\right)^{T} A^{(l-1)}",
         "columns": r"dW^{[l]} = \frac{1}{m} dZ^{[l]} A^{[l-1]T}"},
        {"what": "biases", "rows": r"\frac{\partial J}{\partial b^{(l)}} = \frac{1}{m} \left(\Delta^{(l)}\right)^{T} \mathbf{1}",
         "columns": r"db^{[l]} = \frac{1}{m} \textstyle\sum_{e} dZ^{[l]}_{:,e}"},
        {"what": "error", "rows": r"\Delta^{(l)} = g'\left(Z^{(l)}\right) \odot \Delta^{(l+1)} W^{(l+1)}",
         "columns": r"dZ^{[l]} = W^{[l+1]T} dZ^{[l+1]} \odot g'\left(Z^{[l]}\right)"},
    ]
    return {"paras": paras, "rows": rows}


__all__ = ["OPERATORS", "operators_used", "notation_rows", "UPDATE_SYMBOLS", "NOTATION_INTRO", "recursion", "conventions"]
