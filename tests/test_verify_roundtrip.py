"""The round trip: every formula symnet prints for an example network (per
example and batch, every parameter, every error term, the input and every
activation gradient) is read back by verify and judged equal."""
from pathlib import Path

import pytest

import symnet
from symnet.verify import verify
from symnet.verify.engine import _derived_latex, _describe_net

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))


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
