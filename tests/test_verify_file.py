"""symnet verify SPEC --file: every equation of a hand-in, one verdict each,
a summary, the worst exit code, and the same as JSON."""
import json
from pathlib import Path

import pytest

from symnet.cli import main
from symnet.verify.handin import equations

SPEC = str(Path(__file__).parent.parent / "examples" / "tiny.toml")

TEX = r"""\documentclass{article}
\begin{document}
Backprop for the tiny network.
\begin{align*}
\delta^{(3)} &= 2(a^{(3)} - y) \\
\delta^{(2)} &= (W^{(3)})^T \delta^{(3)} \odot (1 - (a^{(2)})^2) \label{eq:d2} \\
\frac{\partial L}{\partial W^{[2]}} &= \frac{1}{m} dZ^{[2]} A^{[1]T},
\end{align*}
and by hand $dW_1 = -\delta^{(1)} x^T$.
\end{document}
"""

MD = """# Hand-in

$$
\\delta^{(3)} = 2(a^{(3)} - y)
$$

The weights: $dW_3 = \\delta^{(3)} (a^{(2)})^T$ and the bias $db_3 = \\delta^{(3)}$.
"""

TXT = """# one equation per line
delta3 = 2 (a3 - y)
dW3 = delta3 a2^T
q2 = W2
"""


def test_equations_of_each_format():
    tex = equations(TEX, ".tex")
    assert [line for line, _ in tex] == [5, 6, 7, 9]
    assert tex[1][1] == r"\delta^{(2)}  = (W^{(3)})^T \delta^{(3)} \odot (1 - (a^{(2)})^2)"
    assert [t for _, t in equations(MD, ".md")] == [r"\delta^{(3)} = 2(a^{(3)} - y)",
                                                   r"dW_3 = \delta^{(3)} (a^{(2)})^T", r"db_3 = \delta^{(3)}"]
    assert [line for line, _ in equations(TXT, ".txt")] == [2, 3, 4]


def run(tmp_path, capsys, name, text, *extra):
    path = tmp_path / name
    path.write_text(text)
    code = main(["verify", SPEC, "--file", str(path), *extra])
    return code, capsys.readouterr().out


def test_tex_hand_in(tmp_path, capsys):
    code, out = run(tmp_path, capsys, "h.tex", TEX)
    assert code == 1
    assert "line 5: equal (delta3)" in out and "line 9: not equal (dW1)" in out
    assert "note:    the sign is flipped" in out and out.rstrip().endswith("3 of 4 right")


def test_markdown_all_right(tmp_path, capsys):
    code, out = run(tmp_path, capsys, "h.md", MD)
    assert code == 0 and out.rstrip().endswith("3 of 3 right")


def test_unknown_left_side_is_reported_not_skipped(tmp_path, capsys):
    code, out = run(tmp_path, capsys, "h.txt", TXT)
    assert code == 2
    assert "line 4: error" in out and "unknown name 'q2'" in out and out.rstrip().endswith("2 of 3 right")


def test_json(tmp_path, capsys):
    code, out = run(tmp_path, capsys, "h.tex", TEX, "--json")
    data = json.loads(out)
    assert code == data["exit_code"] == 1
    assert data["summary"] == {"right": 3, "total": 4, "skipped": 0, "text": "3 of 4 right"}
    wrong = data["equations"][3]
    assert wrong["line"] == 9 and wrong["status"] == "not equal" and wrong["note"] == "the sign is flipped"
    assert not wrong["ok"] and data["equations"][2]["layout"].startswith("one example per column")


def test_single_formula_json(capsys):
    assert main(["verify", SPEC, "--formula", "dW3 = -delta3 a2^T", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "not equal" and data["note"] == "the sign is flipped"
    assert data["counterexample"]["seed"] == [0, 0] or data["counterexample"]["seed"][0] == 0


@pytest.mark.parametrize("text,words", [("", "no equations"), ("dW3 = delta3 a2^T", None)])
def test_file_errors(tmp_path, capsys, text, words):
    path = tmp_path / "h.txt"
    path.write_text(text)
    if words is None:
        assert main(["verify", SPEC, "--file", str(path), "--target", "W3"]) == 2
        assert "--file takes each equation's target" in capsys.readouterr().err
    else:
        assert main(["verify", SPEC, "--file", str(path)]) == 2
        assert words in capsys.readouterr().err
