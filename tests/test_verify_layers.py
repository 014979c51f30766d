"""verify for every layer kind: right and wrong hand-derived formulas, in the
lectures' index forms (conv: sums over positions and kernel offsets with the
stride s; pooling: Iverson brackets for the window and the argmax) and the
courses' matrix forms (batch norm, dropout masks, softmax)."""
import pytest

import symnet
from symnet.errors import FormulaError
from symnet.verify import verify


def conv_net():
    return symnet.Network([2, 7, 7], [symnet.Conv2D(3, 3, stride=2, padding=1, activation="relu"),
                                      symnet.MaxPool2D(2, stride=1), symnet.Flatten(), symnet.Dense(3)],
                          loss="softmax_cross_entropy", name="conv")


def avg_bn_net():
    return symnet.Network([2, 6, 6], [symnet.Conv2D(2, 3, activation="tanh"), symnet.AvgPool2D(2, stride=1),
                                      symnet.BatchNorm(), symnet.Flatten(), symnet.Dense(3, activation="sigmoid")],
                          loss="mse", name="avg_bn")


def bn_dropout_net():
    return symnet.Network([4], [symnet.Dense(5, activation="tanh"), symnet.BatchNorm(activation="relu"),
                                symnet.Dropout(0.5), symnet.Dense(3)], loss="softmax_cross_entropy", name="bn")


def softmax_net():
    return symnet.Network([3], [symnet.Dense(4, activation="sigmoid"), symnet.Dense(3), symnet.Softmax()],
                          loss="cross_entropy", name="sm")


NETS = {"conv": conv_net, "avg_bn": avg_bn_net, "bn": bn_dropout_net, "sm": softmax_net}

RIGHT = [
    # conv: bias = sum of delta over positions; dW = correlation of the (padded) input with delta
    ("conv", "b1", r"\frac{\partial \ell}{\partial b^{(1)}_f} = \sum_{i,j} \delta^{(1)}_{f,i,j}"),
    ("conv", "W1", r"dW^{(1)}_{f,c,m,n} = \sum_{i,j} \delta^{(1)}_{f,i,j} x_{c, s i + m - 1, s j + n - 1}"),
    ("conv", "W1", r"dW^{(1)}_{f,c,m,n} = \sum_{i=0}^{3} \sum_{j=0}^{3} \delta^{(1)}_{fij} a^{(0)}_{c,2i + m - 1,2j + n - 1}"),
    # conv: dx scatters W delta back to the input positions s i + m - p
    ("conv", "x", r"\frac{\partial \ell}{\partial x_{c,u,v}} = \sum_{f,i,j,m,n} W^{(1)}_{f,c,m,n} \delta^{(1)}_{f,i,j} "
                  r"\mathbb{1}[u = s i + m - 1] \mathbb{1}[v = s j + n - 1]"),
    # overlapping max pooling routes to the argmax of each window (ReLU mask in front)
    ("conv", "delta1", r"\delta^{(1)}_{c,u,v} = \mathbb{1}[z^{(1)}_{c,u,v} > 0] \sum_{i,j} da^{(2)}_{c,i,j} "
                       r"\mathbb{1}[a^{(1)}_{c,u,v} = a^{(2)}_{c,i,j}] \mathbb{1}[0 \le u - i \le 1] \mathbb{1}[0 \le v - j \le 1]"),
    ("conv", "W4", r"\frac{\partial L}{\partial W^{[4]}} = \frac{1}{m} dZ^{[4]} A^{[3]T}"),
    # operator forms: correlation, full convolution with the flipped kernel, routing, reshape
    ("conv", "W1", r"dW^{(1)} = \tilde{x} \star \delta^{(1)}"),
    ("conv", "W1", r"\frac{\partial L}{\partial W^{(1)}} = \frac{1}{m} \sum_{e=1}^{m} \frac{\partial \ell_e}{\partial W^{(1)}}"),
    ("conv", "x", r"dx = \mathrm{crop}_{1}(\mathrm{full}(\delta^{(1)}\uparrow_{2}) \ast \mathrm{rot180}(W^{(1)}))"),
    ("conv", "delta1", r"\delta^{(1)} = \mathrm{ReLU}'(z^{(1)}) \odot \mathrm{route}_{\mathrm{argmax}}(\mathrm{reshape}_{3x3x3}((W^{(4)})^T \delta^{(4)}))"),
    ("conv", "b1", r"\frac{\partial \ell}{\partial b^{(1)}} = \textstyle\sum_{i,j} \delta^{(1)}_{:,i,j}"),
    ("avg_bn", "a1", r"\frac{\partial \ell}{\partial a^{(1)}} = \operatorname{spread}_{2}(\bar{x}^{(3)}) / 4"),
    ("conv", "delta4", r"\delta^{(4)} = p - y"),
    # overlapping average pooling spreads da / (k k) over each window
    ("avg_bn", "a1", r"\frac{\partial \ell}{\partial a^{(1)}_{c,u,v}} = \frac{1}{4} \sum_{i,j} da^{(2)}_{c,i,j} "
                     r"\mathbb{1}[0 \le u - i \le 1] \mathbb{1}[0 \le v - j \le 1]"),
    # flatten: C, H, W order
    ("avg_bn", "a3", r"\frac{\partial \ell}{\partial a^{(3)}_{c,i,j}} = \sum_k W^{(5)}_{k, 9 c + 3 i + j} \delta^{(5)}_k"),
    ("avg_bn", "delta5", r"\delta^{(5)} = \frac{2}{3} (a^{(5)} - y) \odot a^{(5)} \odot (1 - a^{(5)})"),
    # batch norm in training mode, over the batch
    ("bn", "beta2", r"\frac{\partial L}{\partial \beta^{(2)}} = \frac{1}{m} \sum \Delta^{(2)}"),
    ("bn", "gamma2", r"d\gamma^{(2)} = \frac{1}{m} \sum (\Delta^{(2)} \odot \hat{x}^{(2)})"),
    ("bn", "delta1", r"\delta^{(1)} = (1 - (a^{(1)})^2) \odot \frac{\gamma^{(2)}}{m \sqrt{var^{(2)} + 0.00001}} \odot "
                     r"(m \Delta^{(2)} - \sum \Delta^{(2)} - \hat{x}^{(2)} \odot \sum (\Delta^{(2)} \odot \hat{x}^{(2)}))"),
    ("bn", "x", r"dX = \frac{1}{m} (W^{(1)})^T \Delta^{(1)}"),
    # dropout: the mask D^{[3]} is a named quantity; inverted dropout scales by 1/(1 - p)
    ("bn", "delta2", r"\delta^{(2)} = \mathbb{1}[z^{(2)} > 0] \odot 2 D^{(3)} \odot (W^{(4)})^T \delta^{(4)}"),
    ("bn", "delta2", r"\delta^{(2)} = (z^{(2)} > 0) \odot \frac{mask^{(3)}}{1 - 0.5} \odot (W^{(4)})^T \delta^{(4)}"),
    # softmax layer + cross entropy; Jacobian forms with diag
    ("sm", "delta2", r"\delta^{(2)} = a^{(3)} - y"),
    ("sm", "delta1", r"\delta^{(1)} = \mathrm{diag}(\sigma'(z^{(1)})) (W^{(2)})^T \delta^{(2)}"),
]

WRONG = [
    ("conv", "b1", r"db^{(1)}_f = \sum_{i,j} \delta^{(1)}_{f,i,j} a^{(1)}_{f,i,j}"),
    ("conv", "W1", r"dW^{(1)}_{f,c,m,n} = \sum_{i,j} \delta^{(1)}_{f,i,j} x_{c, s i + m, s j + n}"),     # padding forgotten
    ("conv", "W1", r"dW^{(1)}_{f,c,m,n} = \sum_{i,j} \delta^{(1)}_{f,i,j} x_{c, i + m - 1, j + n - 1}"),   # stride forgotten
    ("conv", "x", r"dx = \mathrm{crop}_{1}(\mathrm{full}(\delta^{(1)}) \ast \mathrm{rot180}(W^{(1)}))"),         # no dilation
    ("conv", "x", r"dx = \mathrm{crop}_{1}(\mathrm{full}(\delta^{(1)}\uparrow_{2}) \ast W^{(1)})"),            # not flipped
    ("avg_bn", "a1", r"\frac{\partial \ell}{\partial a^{(1)}} = \operatorname{spread}_{2}(\bar{x}^{(3)})"),
    ("conv", "delta1", r"\delta^{(1)}_{c,u,v} = \mathbb{1}[z^{(1)}_{c,u,v} > 0] \sum_{i,j} da^{(2)}_{c,i,j} "
                       r"\mathbb{1}[0 \le u - i \le 1] \mathbb{1}[0 \le v - j \le 1]"),                  # no argmax
    ("avg_bn", "a1", r"\frac{\partial \ell}{\partial a^{(1)}_{c,u,v}} = \sum_{i,j} da^{(2)}_{c,i,j} "
                     r"\mathbb{1}[0 \le u - i \le 1] \mathbb{1}[0 \le v - j \le 1]"),                     # no 1/4
    ("avg_bn", "a3", r"\frac{\partial \ell}{\partial a^{(3)}_{c,i,j}} = \sum_k W^{(5)}_{k, c + 2 i + 6 j} \delta^{(5)}_k"),
    ("bn", "gamma2", r"d\gamma^{(2)} = \frac{1}{m} \sum \Delta^{(2)}"),
    ("bn", "delta1", r"\delta^{(1)} = (1 - (a^{(1)})^2) \odot \gamma^{(2)} \odot \Delta^{(2)}"),           # evaluation-mode dx
    ("bn", "delta2", r"\delta^{(2)} = \mathbb{1}[z^{(2)} > 0] \odot D^{(3)} \odot (W^{(4)})^T \delta^{(4)}"),  # no 1/(1-p)
    ("sm", "delta1", r"\delta^{(1)} = \sigma(z^{(1)}) \odot (W^{(2)})^T \delta^{(2)}"),
]


@pytest.fixture(scope="module")
def nets():
    return {k: make() for k, make in NETS.items()}


def _target(t):
    return t if t in ("x",) or not t.startswith("a") else "d" + t


@pytest.mark.parametrize("net,target,formula", RIGHT)
def test_right_formulas_are_equal(nets, net, target, formula):
    v = verify(nets[net], _target(target), formula)
    assert v.status == "equal", v.report()


@pytest.mark.parametrize("net,target,formula", WRONG)
def test_wrong_formulas_are_not_equal(nets, net, target, formula):
    v = verify(nets[net], _target(target), formula)
    assert v.status == "not equal" and v.counterexample is not None, v.report()


def test_target_from_a_partial_derivative_left_side(nets):
    v = verify(nets["conv"], None, r"\frac{\partial \ell}{\partial b^{(1)}_f} = \sum_{i,j} \delta^{(1)}_{f,i,j}")
    assert v.target == "db1" and v.ok


def test_the_stride_belongs_to_the_target_layer(nets):
    # s of layer 1 is 2; the same formula with 1 is wrong
    assert verify(nets["conv"], "W1", r"dW^{(1)}_{f,c,m,n} = \sum_{i,j} \delta^{(1)}_{f,i,j} x_{c, 2 i + m - 1, 2 j + n - 1}")
    with pytest.raises(FormulaError, match="no range"):
        verify(nets["conv"], "b1", r"db^{(1)}_f = \sum_{i,j} \delta^{(1)}_{f,i+q,j}")


def test_conv_index_forms_need_the_left_side_indices(nets):
    with pytest.raises(FormulaError, match="left side"):
        verify(nets["conv"], "W1", r"\sum_{i,j} \delta^{(1)}_{f,i,j} x_{c, s i + m - 1, s j + n - 1}")


def test_evaluation_mode_batch_norm_through_running_statistics(nets):
    right = (r"\delta^{(1)} = (1 - (a^{(1)})^2) \odot \frac{\gamma^{(2)}}{\sqrt{running\_var^{(2)} + 0.00001}} "
             r"\odot \delta^{(2)}")
    assert verify(nets["bn"], None, right, training=False).status == "equal"
    # the same formula is wrong in training mode, where the batch statistics depend on the input
    assert verify(nets["bn"], None, right).status == "not equal"
    # in evaluation mode dropout is off: no mask, no 1/(1 - p)
    assert verify(nets["bn"], None, r"\delta^{(2)} = \mathbb{1}[z^{(2)} > 0] \odot (W^{(4)})^T \delta^{(4)}",
                  training=False).status == "equal"


def test_the_verdict_names_the_layer_of_each_name(nets):
    v = verify(nets["conv"], None, r"dW_4 = \delta^{(4)} (a^{(3)})^T")
    assert v.ok and "dW_4 = dW4 (layer 4, dense)" in v.names and "a^{(3)} = a3 (layer 3, flatten)" in v.names
    assert "names:   dW_4 = dW4 (layer 4, dense)" in v.report()
