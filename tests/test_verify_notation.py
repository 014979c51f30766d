"""The notation of the derivation documents as it changes (issue 11), written here by
hand: kernel and window offsets q, r; argmax positions under any letters; the batch
loss J (with L the last layer's number); the dilated error \\check\\delta of a strided
conv; and the forms read since: e^{z}, d a / d z chain steps, the padded input
\\tilde a, fractional stride indices with \\mid, 1-based flatten positions, n as the
output count where a hand-in says so, batch norm's per-channel sums. Right formulas
are equal, formulas with one thing changed are not."""
from pathlib import Path

import pytest

import symnet
from symnet.errors import FormulaError
from symnet.verify import verify
from symnet.verify.handin import n_meaning, verify_file

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def nets():
    load = lambda name: symnet.load(ROOT / name)      # noqa: E731
    return {"conv": load("docs/specs/conv_pool.toml"), "avg_bn": load("docs/specs/avg_bn.toml"),
            "bn": load("docs/specs/bn_dropout.toml"), "lenet": load("examples/lenet.toml"),
            "logistic": load("examples/logistic.toml"), "mlp": load("examples/mlp.toml"),
            "tiny": load("examples/tiny.toml")}


# (net, formula, a wrong variant): conv_pool is 2x7x7 -> conv 3x3 stride 2 pad 1 (3 filters, 4x4)
# -> max pool 2 stride 1 (3x3) -> flatten 27 -> dense 3 softmax; avg_bn is 2x6x6 -> conv 3x3 (2, 4x4)
# -> avg pool 2 stride 1 (3x3) -> batch norm -> flatten 18 -> dense 3 sigmoid, MSE.
CASES = [
    # kernel offsets q, r (not m, n) with the padded input
    ("conv", r"\frac{\partial \ell}{\partial W^{(1)}_{f,c,q,r}} = \sum_{i=0}^{3} \sum_{j=0}^{3} \delta^{(1)}_{f,i,j} "
             r"\tilde{a}^{(0)}_{c,2 i + q,2 j + r}",
     r"\frac{\partial \ell}{\partial W^{(1)}_{f,c,q,r}} = \sum_{i=0}^{3} \sum_{j=0}^{3} \delta^{(1)}_{f,i,j} "
     r"a^{(0)}_{c,2 i + q,2 j + r}"),
    ("lenet", r"\frac{\partial \ell}{\partial a^{(0)}_{c,u,v}} = \sum_{f=0}^{5} \sum_{q=0}^{4} \sum_{r=0}^{4} "
              r"W^{(1)}_{f,c,q,r} \delta^{(1)}_{f,u - q,v - r}",
     r"\frac{\partial \ell}{\partial a^{(0)}_{c,u,v}} = \sum_{f=0}^{5} \sum_{q=0}^{4} \sum_{r=0}^{4} "
     r"W^{(1)}_{f,c,q,r} \delta^{(1)}_{f,u + q,v + r}"),
    # a strided conv's input gradient through the dilated error
    ("conv", r"\frac{\partial \ell}{\partial a^{(0)}_{c,u,v}} = \sum_{f=0}^{2} \sum_{q=0}^{2} \sum_{r=0}^{2} "
             r"W^{(1)}_{f,c,q,r} \check{\delta}^{(1)}_{f,u + 1 - q,v + 1 - r}",
     r"\frac{\partial \ell}{\partial a^{(0)}_{c,u,v}} = \sum_{f=0}^{2} \sum_{q=0}^{2} \sum_{r=0}^{2} "
     r"W^{(1)}_{f,c,q,r} \delta^{(1)}_{f,u + 1 - q,v + 1 - r}"),
    # ... and the same with fractional indices and divisibility brackets (today's documents)
    ("conv", r"\frac{\partial \ell}{\partial x_{c,u,v}} = \sum_{r=0}^{2} \sum_{q=0}^{2} \sum_{f=0}^{2} W^{(1)}_{fcqr} "
             r"\delta^{(1)}_{f,\frac{u + 1 - q}{2},\frac{v + 1 - r}{2}} \cdot \mathbb{1}\left[0 \le u + 1 - q \le 6,\ "
             r"0 \le v + 1 - r \le 6,\ 2 \mid \left(u + 1 - q\right),\ 2 \mid \left(v + 1 - r\right)\right]",
     r"\frac{\partial \ell}{\partial x_{c,u,v}} = \sum_{r=0}^{2} \sum_{q=0}^{2} \sum_{f=0}^{2} W^{(1)}_{fcqr} "
     r"\delta^{(1)}_{f,\frac{u + 1 - q}{2},\frac{v + 1 - r}{2}} \cdot \mathbb{1}\left[2 \mid \left(u + 1 - r\right)\right]"),
    # the operator form with a named dilation (by the conv layer's own stride, or a given one)
    ("conv", r"\frac{\partial \ell}{\partial x} = \mathrm{crop}_{1}(\mathrm{full}(\mathrm{dilate}(\delta^{(1)})) \ast "
             r"\mathrm{rot180}(W^{(1)}))",
     r"\frac{\partial \ell}{\partial x} = \mathrm{crop}_{1}(\mathrm{full}(\mathrm{dilate}_{3}(\delta^{(1)})) \ast "
     r"\mathrm{rot180}(W^{(1)}))"),
    # the documents' operator forms with the dilated error: a stride-1 correlation of the
    # padded input with it, and the full convolution of it with the flipped kernel
    ("conv", r"\frac{\partial \ell}{\partial W^{(1)}} = \tilde{a}^{(0)} \star \check{\delta}^{(1)}",
     r"\frac{\partial \ell}{\partial W^{(1)}} = 2 \tilde{a}^{(0)} \star \check{\delta}^{(1)}"),
    ("conv", r"\frac{\partial \ell}{\partial x} = \operatorname{crop}_{1}\left(\operatorname{full}\left("
             r"\check{\delta}^{(1)}\right) \ast \operatorname{rot180}(W^{(1)})\right)",
     r"\frac{\partial \ell}{\partial x} = \operatorname{crop}_{1}\left(\operatorname{full}\left("
     r"\delta^{(1)}\right) \ast \operatorname{rot180}(W^{(1)})\right)"),
    # pooling window offsets q, r: average pooling spreads, max pooling routes to the argmax,
    # whatever letters name the argmax row and column
    ("avg_bn", r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \frac{1}{4} \sum_{q=0}^{1} \sum_{r=0}^{1} "
               r"\bar{a}^{(2)}_{c,i - q,j - r}",
     r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \sum_{q=0}^{1} \sum_{r=0}^{1} \bar{a}^{(2)}_{c,i - q,j - r}"),
    ("conv", r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \sum_{q=0}^{2} \sum_{r=0}^{2} \bar{a}^{(2)}_{cqr} "
             r"\mathbb{1}\left[i = u^{(2)}_{cqr},\ j = v^{(2)}_{cqr}\right]",
     r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \sum_{q=0}^{2} \sum_{r=0}^{2} \bar{a}^{(2)}_{crq} "
     r"\mathbb{1}\left[i = u^{(2)}_{cqr},\ j = v^{(2)}_{cqr}\right]"),
    ("conv", r"\delta^{(1)}_{c,i,j} = \mathbb{1}[z^{(1)}_{cij} > 0] \sum_{q,r} \bar{a}^{(2)}_{cqr} "
             r"\mathbb{1}\left[i = y^{(2)}_{cqr},\ j = x^{(2)}_{cqr}\right]",
     r"\delta^{(1)}_{c,i,j} = \sum_{q,r} \bar{a}^{(2)}_{cqr} \mathbb{1}\left[i = y^{(2)}_{cqr},\ j = x^{(2)}_{cqr}\right]"),
    ("conv", r"\delta^{(1)}_{c,i,j} = \mathbb{1}[z^{(1)}_{cij} > 0] \sum_{q,r} \bar{a}^{(2)}_{cqr} "
             r"\mathbb{1}\left[i = \hat{i}^{(2)}_{cqr},\ j = \hat{j}^{(2)}_{cqr}\right]",
     r"\delta^{(1)}_{c,i,j} = \mathbb{1}[z^{(1)}_{cij} > 0] \sum_{q,r} \bar{a}^{(2)}_{cqr} "
     r"\mathbb{1}\left[i = \hat{j}^{(2)}_{crq},\ j = \hat{i}^{(2)}_{crq}\right]"),
    # the batch loss J (and C, E) on the left side; L as the last layer's number
    ("mlp", r"\frac{\partial J}{\partial W^{(2)}} = \frac{1}{m} (\Delta^{(2)})^T A^{(1)}",
     r"\frac{\partial J}{\partial W^{(2)}} = (\Delta^{(2)})^T A^{(1)}"),
    ("mlp", r"\nabla_{W^{(2)}} J = \frac{1}{m} (\Delta^{(2)})^T A^{(1)}",
     r"\nabla_{W^{(2)}} J = \frac{1}{m} A^{(1)T} \Delta^{(2)}"),
    ("mlp", r"\frac{\partial E}{\partial b^{(L)}} = \frac{1}{m} \sum_{e=1}^{m} \delta^{(L)(e)}",
     r"\frac{\partial E}{\partial b^{(L)}} = \sum_{e=1}^{m} \delta^{(L)(e)}"),
    ("mlp", r"\frac{\partial C}{\partial z^{(L)}} = p - y", r"\frac{\partial C}{\partial z^{(L)}} = y - p"),
    # any letter bound by a sum or free on the left side is an index
    ("mlp", r"\frac{\partial \ell}{\partial W^{(2)}_{g,w}} = \delta^{(2)}_{g} a^{(1)}_{w}",
     r"\frac{\partial \ell}{\partial W^{(2)}_{g,w}} = \delta^{(2)}_{w} a^{(1)}_{g}"),
    ("mlp", r"\frac{\partial \ell}{\partial a^{(1)}_{w}} = \sum_{o} W^{(2)}_{o,w} \delta^{(2)}_{o}",
     r"\frac{\partial \ell}{\partial a^{(1)}_{w}} = \sum_{o} W^{(2)}_{w,o} \delta^{(2)}_{o}"),
    # softmax written with e^{z}; the chain rule through d a / d z
    ("mlp", r"\frac{\partial \ell}{\partial z^{(2)}_{i}} = \frac{e^{z^{(2)}_{i}}}{\sum_{j} e^{z^{(2)}_{j}}} - y_{i}",
     r"\frac{\partial \ell}{\partial z^{(2)}_{i}} = e^{z^{(2)}_{i}} - y_{i}"),
    ("logistic", r"\delta^{(2)}_{i} = \frac{\partial \ell}{\partial a^{(2)}_{i}} \frac{\partial a^{(2)}_{i}}{\partial z^{(2)}_{i}}",
     r"\delta^{(2)}_{i} = \frac{\partial \ell}{\partial a^{(2)}_{i}}"),
    ("logistic", r"\delta^{(2)} = \frac{1}{1 + e^{-z^{(2)}}} - y", r"\delta^{(2)} = \frac{1}{1 + e^{z^{(2)}}} - y"),
    # the flatten position counted from 1 beside 0-based c, i, j
    ("conv", r"\frac{\partial \ell}{\partial a^{(2)}_{c,i,j}} = \sum_{k=1}^{3} W^{(4)}_{k,9 c + 3 i + j + 1} \delta^{(4)}_{k}",
     r"\frac{\partial \ell}{\partial a^{(2)}_{c,i,j}} = \sum_{k=1}^{3} W^{(4)}_{k,9 c + 3 i + j + 2} \delta^{(4)}_{k}"),
    ("conv", r"\frac{\partial \ell}{\partial a^{(2)}_{c,i,j}} = \sum_{k} W^{(4)}_{k,9 c + 3 i + j} \delta^{(4)}_{k}",
     r"\frac{\partial \ell}{\partial a^{(2)}_{c,i,j}} = \sum_{k} W^{(4)}_{k,9 i + 3 c + j} \delta^{(4)}_{k}"),
    # batch norm: a letter running over one channel's values in the batch
    ("bn", r"\frac{\partial \mathcal{L}}{\partial \gamma^{(2)}_{c}} = \sum_{k=1}^{m} \delta^{(2)}_{k} \hat{u}_{k}",
     r"\frac{\partial \mathcal{L}}{\partial \gamma^{(2)}_{c}} = \sum_{k=1}^{m} \delta^{(2)}_{k}"),
    ("bn", r"\frac{\partial L}{\partial \beta^{(2)}_{c}} = \frac{1}{m} \sum_{k=1}^{m} \delta^{(2)}_{k}",
     r"\frac{\partial L}{\partial \beta^{(2)}_{c}} = \sum_{k=1}^{m} \delta^{(2)}_{k}"),
    ("avg_bn", r"\frac{\partial \mathcal{L}}{\partial \gamma^{(3)}_{c}} = \sum_{k=1}^{\bar{m}} \delta^{(3)}_{k} \hat{u}_{k}",
     r"\frac{\partial \mathcal{L}}{\partial \gamma^{(3)}_{c}} = \sum_{k=1}^{\bar{m}} \delta^{(3)}_{k} \hat{u}_{k} \hat{u}_{k}"),
    # the summed loss \mathcal{L} = m L on the left side of a batch formula
    ("bn", r"\frac{\partial \mathcal{L}}{\partial \gamma^{(2)}} = \sum_{e=1}^{m} \delta^{(2)(e)} \odot \hat{u}^{(e)}",
     r"\frac{\partial \mathcal{L}}{\partial \gamma^{(2)}} = \frac{1}{m} \sum_{e=1}^{m} \delta^{(2)(e)} \odot \hat{u}^{(e)}"),
    ("mlp", r"\frac{\partial \mathcal{L}}{\partial W^{(2)}} = (\Delta^{(2)})^T A^{(1)}",
     r"\frac{\partial \mathcal{L}}{\partial W^{(2)}} = \frac{1}{m} (\Delta^{(2)})^T A^{(1)}"),
    ("avg_bn", r"\frac{\partial \mathcal{L}}{\partial \beta^{(3)}} = \sum_{e,h,w} \delta^{(3)}_{j}",
     r"\frac{\partial \mathcal{L}}{\partial \beta^{(3)}} = \sum_{e,h,w} \hat{u}_{j}"),
]


@pytest.mark.parametrize("net, right, wrong", CASES, ids=[f"{c[0]}-{k}" for k, c in enumerate(CASES)])
def test_right_formula_is_equal_and_the_changed_one_is_not(nets, net, right, wrong):
    v = verify(nets[net], None, right, points=2)
    assert v.status == "equal", v.report()
    w = verify(nets[net], None, wrong, points=2)
    assert w.status == "not equal", w.report()


def test_the_verdict_says_how_a_one_based_position_and_a_channel_letter_were_read(nets):
    pick = lambda part: next(c[1] for c in CASES if part in c[1])      # noqa: E731
    v = verify(nets["conv"], None, pick("9 c + 3 i + j + 1"), points=1)
    assert any("counts from 1" in line and "9c + 3i + j" in line for line in v.names), v.names
    v = verify(nets["bn"], None, pick(r"\partial \gamma^{(2)}_{c}} = \sum_{k=1}^{m}"), points=1)
    assert any(line.startswith("k: one value of channel c") for line in v.names), v.names


def test_feature_map_positions_always_count_from_0(nets):
    # LeNet's 5x5 conv on 28x28: i + q + 1 runs over 1..28 exactly, but a map counts from 0,
    # so this is the off-by-one it looks like, not a position counted from 1
    shifted = (r"\frac{\partial \ell}{\partial W^{(1)}_{f,c,q,r}} = \sum_{i=0}^{23} \sum_{j=0}^{23} \delta^{(1)}_{f,i,j} "
               r"a^{(0)}_{c,i + q + 1,j + r + 1}")
    assert verify(nets["lenet"], None, shifted, points=1).status == "not equal"
    assert verify(nets["lenet"], None, shifted.replace(" + 1", ""), points=1).status == "equal"


def test_n_is_the_batch_size_unless_the_output_count_is_declared(nets, tmp_path):
    # tiny: MSE over one output; avg_bn: three outputs, where 1/n matters
    formula = r"\frac{\partial \ell}{\partial a^{(5)}_{i}} = \frac{2 \left(a^{(5)}_{i} - y_{i}\right)}{n}"
    assert verify(nets["avg_bn"], None, formula, points=2, n="outputs").status == "equal"
    assert verify(nets["avg_bn"], None, formula, points=2).status == "not equal"     # n = m, the batch size
    assert n_meaning("| $n$ | number of outputs per example | scalar |") == "outputs"
    assert n_meaning("where n is the number of outputs") == "outputs"
    assert n_meaning("$m$ examples of $n$ features") == "batch"
    doc = tmp_path / "h.md"
    doc.write_text("| $n$ | number of outputs per example |\n\n```math\n" + formula + "\n```\n", encoding="utf-8")
    assert [e.status for e in verify_file(nets["avg_bn"], doc, points=1)] == ["equal"]
    with pytest.raises(symnet.SymnetError, match="n must be"):
        verify(nets["avg_bn"], None, formula, n="rows")


def test_the_last_layer_L_is_checked_in_a_hand_in_and_l_is_a_rule(nets, tmp_path):
    doc = tmp_path / "h.tex"
    doc.write_text("\\begin{align*}\n\\delta^{(L)} &= p - y \\\\\n"
                   "\\delta^{(l)} &= g'(z^{(l)}) \\odot (W^{(l+1)})^T \\delta^{(l+1)}\n\\end{align*}\n", encoding="utf-8")
    entries = verify_file(nets["mlp"], doc, points=1)
    assert [(e.status, e.target) for e in entries] == [("equal", "delta2"), ("skipped", "")]
    doc.write_text("$$\\check{\\delta}^{(1)}_{f,u,v} = \\delta^{(1)}_{f,u/2,v/2}$$\n"
                   "$$\\frac{\\partial J}{\\partial a^{(0)}_{c,u,v}} = \\sum_{f,q,r} W^{(1)}_{f,c,q,r} "
                   "\\check{\\delta}^{(1)}_{f,u + 1 - q,v + 1 - r}$$\n", encoding="utf-8")
    entries = verify_file(nets["conv"], doc, points=1)
    assert [(e.status, e.target) for e in entries] == [("skipped", ""), ("equal", "dx")], entries


def test_misplaced_new_notation_is_refused_with_how_to_write_it(nets):
    with pytest.raises(FormulaError, match="check"):
        verify(nets["conv"], None, r"\frac{\partial \ell}{\partial W^{(4)}_{k,j}} = \check{\delta}^{(4)}_{k} a^{(3)}_{j}")
    with pytest.raises(FormulaError, match="tilde"):
        verify(nets["mlp"], None, r"\frac{\partial \ell}{\partial W^{(2)}_{k,j}} = \delta^{(2)}_{k} \tilde{a}^{(1)}_{j}")
    with pytest.raises(FormulaError, match="row or (the )?column"):
        verify(nets["conv"], None, r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \sum_{q,r} \bar{a}^{(2)}_{cqr} "
                                   r"\mathbb{1}\left[c = u^{(2)}_{cqr}\right]")
    with pytest.raises(FormulaError, match="d a / d z|loss"):
        verify(nets["mlp"], None, r"\delta^{(1)}_{i} = \frac{\partial a^{(1)}_{i}}{\partial z^{(2)}_{i}}")
    with pytest.raises(FormulaError, match="sum index"):
        verify(nets["mlp"], None, r"\delta^{(1)} = \sum_{l} W^{(2)}")


def test_the_cli_reads_n_as_told(capsys):
    from symnet.cli import main
    spec = str(ROOT / "docs" / "specs" / "avg_bn.toml")
    formula = r"\frac{\partial \ell}{\partial a^{(5)}_{i}} = \frac{2 \left(a^{(5)}_{i} - y_{i}\right)}{n}"
    assert main(["verify", spec, "--points", "1", "--n", "outputs", "--formula", formula]) == 0
    assert main(["verify", spec, "--points", "1", "--formula", formula]) == 1
    assert capsys.readouterr().out.count("verdict:") == 2


def test_average_pooling_with_floors_of_the_window_position():
    net = symnet.Network([1, 6, 6], [symnet.Conv2D(2, 3, activation="tanh"), symnet.AvgPool2D(2), symnet.Flatten(),
                                     symnet.Dense(2)], loss="mse", name="avg")
    lhs = r"\frac{\partial \ell}{\partial a^{(1)}_{c,u,v}} = "
    assert verify(net, None, lhs + r"\frac{1}{4} \bar{a}^{(2)}_{c,\lfloor u/2 \rfloor,\lfloor v/2 \rfloor}",
                  points=2).status == "equal"
    assert verify(net, None, lhs + r"\frac{\bar{a}^{(2)}_{c,\lfloor \frac{u}{2} \rfloor,\lfloor \frac{v}{2} \rfloor}}{2^2}",
                  points=2).status == "equal"
    wrong = verify(net, None, lhs + r"\frac{1}{4} \bar{a}^{(2)}_{c,\frac{u}{2},\frac{v}{2}}", points=2)
    assert wrong.status == "not equal"
    with pytest.raises(FormulaError, match="rfloor"):
        verify(net, None, lhs + r"\bar{a}^{(2)}_{c,\lfloor u/2,v}")
