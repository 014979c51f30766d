"""Random specs (layer kinds, sizes including huge ones, strides, paddings,
formulas) through summary, derive and generate: each succeeds or raises a
SymnetError within a few seconds of CPU time, and never leaves a partial
file. Kernels are rendered and written, not compiled, to keep this cheap."""
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from symnet.errors import SymnetError
from symnet.spec import from_dict

BUDGET_S = 20.0      # CPU seconds per spec and step (derive of a small net takes well under 1 s)

def mostly(valid, invalid):
    """Three draws in four from `valid`, so that most specs get past the reader."""
    return st.one_of(valid, valid, valid, invalid)


sizes = mostly(st.integers(1, 12), st.sampled_from([-1, 0, 10**6, 10**9, 2**63]))
formulas = mostly(
    st.sampled_from(["relu", "tanh", "sigmoid", "mish", "x*tanh(x)", "sin(sin(sin(x)))", "log(1+exp(x))",
                     "(x^2+x+1)^1000/(x+1)^999", "x^2/(1+abs(x))"]),
    st.one_of(st.sampled_from(["softmax", "bogus", "step(x)", "x +", "x^0.5", ""]),
              st.text(alphabet="x+-*/^()0123456789.sincotahlgep ", max_size=25)),
)
paddings = mostly(st.sampled_from(["valid", "same", 0, 1]), st.sampled_from(["full", -1, 9]))
small = mostly(st.integers(1, 3), st.sampled_from([0, -1, 50]))

dense = st.fixed_dictionaries({"type": st.just("dense"), "units": sizes}, optional={"activation": formulas})
conv = st.fixed_dictionaries({"type": st.just("conv2d"), "filters": sizes, "kernel": small},
                             optional={"stride": small, "padding": paddings, "activation": formulas})
pool = st.fixed_dictionaries({"type": st.sampled_from(["maxpool2d", "avgpool2d"]), "size": small},
                             optional={"stride": small})
other = st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["flatten", "softmax"])}),
                  st.fixed_dictionaries({"type": st.just("dropout"), "rate": st.floats(-0.5, 1.5)}),
                  st.fixed_dictionaries({"type": st.just("batchnorm")}, optional={"activation": formulas}))
dense_specs = st.fixed_dictionaries({
    "input": mostly(st.lists(st.integers(1, 9), min_size=1, max_size=1), st.sampled_from([[10**9], "four", []])),
    "layers": st.lists(mostly(dense, other), min_size=1, max_size=3),
})
conv_specs = st.fixed_dictionaries({
    "input": mostly(st.lists(st.integers(1, 9), min_size=3, max_size=3), st.just([1, 10**5, 10**5])),
    "layers": st.tuples(st.lists(mostly(conv, pool), min_size=1, max_size=2), st.lists(dense, max_size=1)).map(
        lambda t: t[0] + [{"type": "flatten"}] + t[1]),
})
specs = st.tuples(st.one_of(dense_specs, conv_specs), st.fixed_dictionaries({
    "loss": mostly(st.sampled_from(["mse", "softmax_cross_entropy", "(yhat-y)^2", "hinge"]),
                   st.sampled_from(["bce", "-y*log(yhat)", "step(yhat)", "nonsense("])),
}, optional={"dtype": st.sampled_from(["float32", "float64", "float16"])})).map(lambda t: {**t[0], **t[1]})


def bounded(step, *args):
    """step(*args) -> its value, or None after a SymnetError; within BUDGET_S of CPU time."""
    start = time.process_time()
    try:
        return step(*args)
    except SymnetError:
        return None
    finally:
        assert time.process_time() - start < BUDGET_S, step


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(table=specs)
def test_random_spec_answers_quickly(table, tmp_path):
    from symnet.codegen.generate import write
    from symnet.derive import derive

    net = bounded(from_dict, table)
    if net is None:
        return event("refused by the spec reader")
    if bounded(net.summary) is None or bounded(derive, net) is None:
        return event("refused by summary or derive")
    out = tmp_path / "kernels"
    before = set(out.glob("*")) if out.exists() else set()
    path = bounded(write, net, out)
    after = set(out.glob("*")) if out.exists() else set()
    assert not [p for p in after if p.name.endswith(".tmp")]            # never a partial file
    event("kernel refused" if path is None else "kernel written")
    if path is None:
        assert after == before
    else:
        text = path.read_text()
        assert "def _loss_and_grads(" in text and "_api.loss_and_grads" in text
