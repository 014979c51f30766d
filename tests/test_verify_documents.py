"""Every equation of each example's derivation document (regenerated, not the
committed file) that names a gradient target is read back by `verify --file`
and judged equal; definitions, forward steps, the loss, update rules and
activation derivatives are skipped as "not a gradient target". Every other
equation must read back equal; the counts are cached (verify_documents/NAME)."""
import time
from pathlib import Path

import pytest

import symnet
from symnet.verify.handin import verify_file

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml")) + sorted((ROOT / "docs" / "specs").glob("*.toml"))

@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_gradient_equation_of_the_document_reads_back_equal(path, tmp_path, request):
    net = symnet.load(path)
    doc = tmp_path / f"{path.stem}.md"
    doc.write_text(symnet.derive(net).to_markdown(), encoding="utf-8")
    start = time.process_time()
    entries = verify_file(net, doc, points=1)
    seconds = time.process_time() - start
    checked = [e for e in entries if e.status != "skipped"]
    # ~0.1 s a verdict after the derivation; a generous CPU-time bound
    assert seconds < 1.0 * len(checked) + 5, f"{path.stem}: {seconds:.1f} s for {len(checked)} equations"
    for e in checked:
        assert e.ok, f"{path.stem} line {e.line}: {e.status}: {e.text}\n{e.message}"
    assert len(checked) >= 20
    request.config.cache.set(f"verify_documents/{path.stem}", [len(checked), len(entries)])


def test_skipped_equations_say_why_and_gradients_are_not_skipped(tmp_path):
    net = symnet.load(ROOT / "examples" / "mlp.toml")
    doc = tmp_path / "mlp.md"
    doc.write_text(symnet.derive(net).to_markdown(), encoding="utf-8")
    entries = verify_file(net, doc, points=1)
    skipped = {e.text: e.message for e in entries if e.status == "skipped"}
    assert skipped[r"z^{(1)} = W^{(1)} a^{(0)} + b^{(1)}"].startswith("not a gradient target: a definition")
    assert any(t.startswith(r"\theta \leftarrow") for t in skipped)
    assert any("the loss" in m for m in skipped.values())
    assert not any(t.startswith((r"\frac{\partial \ell}{\partial W^{(1", r"\delta^{(1)} =")) for t in skipped)
    grads = [e for e in entries if e.status != "skipped"]
    # the chain-rule step d ell / d a . d a / d z is a gradient equation, not a skipped step
    assert not any(t.startswith(r"\delta^{(2)}_{i} = \frac{\partial \ell}") for t in skipped)
    assert any(e.target == "dW1" and e.ok for e in grads) and any(e.target == "delta1" and e.ok for e in grads)


def test_an_aligned_block_is_one_equation_and_a_wrong_gradient_in_a_document_fails(tmp_path):
    net = symnet.load(ROOT / "examples" / "mlp.toml")
    doc = tmp_path / "h.md"
    doc.write_text("Text with $a = b$ inline.\n\n```math\n\\begin{aligned} & \\frac{\\partial \\ell}{\\partial W^{(2)}} \\\\\n"
                   "& = \\delta^{(2)} \\left(a^{(1)}\\right)^{T} \\end{aligned}\n```\n\n```math\n"
                   "\\frac{\\partial \\ell}{\\partial b^{(2)}} = 2 \\delta^{(2)}\n```\n", encoding="utf-8")
    entries = verify_file(net, doc, points=1)
    assert [(e.line, e.status, e.target) for e in entries] == [(4, "equal", "dW2"), (9, "not equal", "db2")]


def test_batch_norms_summed_loss_gradients_are_checked_not_skipped(tmp_path):
    net = symnet.load(ROOT / "docs" / "specs" / "bn_dropout.toml")
    doc = tmp_path / "bn.md"
    doc.write_text(symnet.derive(net).to_markdown(), encoding="utf-8")
    entries = verify_file(net, doc, points=1)
    summed = [e for e in entries if e.text.startswith(r"\frac{\partial \mathcal{L}}{\partial \gamma^{(2)}")]
    assert summed and all(e.status == "equal" and e.target == "dgamma2" for e in summed)
