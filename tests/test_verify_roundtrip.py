"""The round trip: every formula symnet prints for an example network (per
example and batch, every parameter, every error term, the input and every
activation gradient) is read back by verify and judged equal."""
from pathlib import Path

import pytest

import symnet
from symnet.verify import verify
from symnet.verify.engine import _derived_latex, _describe_net

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml")) + sorted((ROOT / "docs" / "specs").glob("*.toml"))

def targets(net, info):
    out = [(k, True) for k in net.param_shapes] + [("x", True)]
    out += [(k, False) for k, v in info.symbols.items() if v.kind == "delta" and k.startswith("delta")]
    out += [(f"a{p.position}", True) for p in net.placed if p.position not in (info.L, info.softmax_position)]
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_printed_formula_reads_back_equal(path):
    net = symnet.load(path)
    info = _describe_net(net)
    checked = 0
    for key, grad in targets(net, info):
        name = key if key == "x" or not grad else "d" + key
        for batch in (False, True):
            tex = _derived_latex(info, key, grad, batch)
            assert tex, f"{path.stem}: no printed formula for {name} (batch={batch})"
            v = verify(net, name, tex, points=2)
            assert v.status == "equal", f"{path.stem} {name} batch={batch}: {tex}\n{v.report()}"
            checked += 1
    assert checked >= 2 * len(net.param_shapes)


def test_a_verdict_on_lenet_takes_well_under_the_budget():
    # The guide promises about 1 s after imports (derivation included); CPU time, generous bound.
    import time
    net = symnet.load(ROOT / "examples" / "lenet.toml")
    start = time.process_time()
    v = verify(net, "W1", r"dW^{(1)} = a^{(0)} \star \delta^{(1)}")
    assert v.status == "equal" and time.process_time() - start < 5.0


def test_the_dropout_rate_p_beside_the_mask_is_the_rate_not_the_softmax_output():
    net = symnet.load(ROOT / "docs" / "specs" / "bn_dropout.toml")     # softmax output p and dropout rate p
    good = r"\delta^{(2)} = \mathrm{ReLU}'(z^{(2)}) \odot \frac{1}{1 - p} \xi \odot (W^{(4)})^T \delta^{(4)}"
    assert verify(net, "delta2", good, points=2).status == "equal"
    assert verify(net, "delta2", good.replace("1 - p", "1 - p^{(3)}"), points=2).status == "equal"
    assert verify(net, "delta2", good.replace("\\frac{1}{1 - p}", "(1 - p)"), points=2).status == "not equal"
