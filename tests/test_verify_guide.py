"""Every `symnet verify` console example in docs/verify.md prints what the guide
shows and exits as it says (run in-process, so the drift test stays fast)."""
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from symnet.cli import main

GUIDE = Path(__file__).parent.parent / "docs" / "verify.md"
EXAMPLES = [(mt.group(1), mt.group(2), int(mt.group(3))) for block in re.findall(
    r"```console\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    for mt in re.finditer(r"^\$ (symnet verify .*?)\n(.*?)^# exit (\d+)\n", block, re.S | re.M)]


def test_the_guide_has_worked_examples_of_every_kind():
    text = " ".join(cmd for cmd, _, _ in EXAMPLES)
    assert len(EXAMPLES) >= 40
    for spec in ("conv_pool", "avg_bn", "bn_dropout", "--file", "--evaluation"):
        assert spec in text


@pytest.mark.parametrize("command, shown, code", EXAMPLES, ids=[f"example{k}" for k in range(len(EXAMPLES))])
def test_a_guide_example_prints_what_the_guide_shows(command, shown, code, monkeypatch):
    monkeypatch.chdir(GUIDE.parent.parent)      # the guide's paths are relative to the repository
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main(shlex.split(command)[1:])
        except SystemExit as exc:
            rc = exc.code
    assert (out.getvalue().strip(), rc) == (shown.strip(), code)
