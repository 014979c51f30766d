"""The HTML document in a real headless browser: it loads with no console
errors, no TeX is left unrendered (every equation is MathML), and a screenshot
is not blank. Skipped, with the reason, where no chromium is installed
(Debian: apt-get install chromium)."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import symnet
from symnet.render import to_html

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = {}
    for name in ("logistic", "lenet"):
        d = symnet.derive(symnet.load(ROOT / "examples" / f"{name}.toml"))
        path = tmp_path_factory.mktemp("html") / f"{name}.html"
        path.write_text(to_html(d), encoding="utf-8")
        out[name] = path
    return out


def _text(dom: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S))


def test_page_is_self_contained_mathml(pages):
    page = pages["logistic"].read_text()
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/1998/Math/MathML", "")
    assert "https://" not in page
    assert page.count("<math") > 50
    text = _text(page)
    assert not re.search(r"\\[A-Za-z]+", text), re.search(r".{30}\\[A-Za-z]+.{30}", text)
    assert "$" not in text
    assert "A worked numeric example" in page and "central difference" in page     # small dense network


def test_indicator_is_a_double_struck_one(pages):
    """LeNet's ReLU derivative and max pooling print the indicator \\mathbb{1}: as the character
    U+1D7D9, since browsers ignore mathvariant on <mn> (it showed a plain 1)."""
    page = pages["lenet"].read_text()
    assert 'mathvariant="double-struck"' not in page
    assert page.count("<mn>&#x1D7D9;</mn>") >= 3


def test_repr_html_for_notebooks():
    d = symnet.derive(symnet.load(ROOT / "examples" / "mlp.toml"))
    frag = d._repr_html_()
    assert frag.startswith('<div class="symnet-derivation">') and "<math" in frag and "<body" not in frag
    assert not re.search(r"\\[A-Za-z]+", _text(frag))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium); "
                                             "the browser check of the HTML document did not run")
@pytest.mark.parametrize("name", ["logistic", "lenet"])
def test_page_in_headless_chromium(pages, name):
    matplotlib_image = pytest.importorskip("matplotlib.image")
    url = pages[name].resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    dom = run.stdout
    assert dom.count("<math") > 50
    text = _text(dom)
    assert not re.search(r"\\[A-Za-z]+", text)            # no unrendered TeX reached the page
    shot = pages[name].with_suffix(".png")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                        "--window-size=1000,1400", url], capture_output=True, timeout=120, check=True)
    pixels = matplotlib_image.imread(shot)[..., :3]
    ink = (pixels.mean(axis=2) < 0.5).mean()
    assert ink > 0.005, f"the screenshot is blank ({ink:.2%} dark pixels)"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium); "
                                             "the browser check of the HTML document did not run")
def test_no_display_equation_scrolls_vertically(pages, tmp_path):
    # A display block whose content is a pixel taller than the box shows a scrollbar beside
    # the equation (it takes width: offsetWidth > clientWidth); a probe script (in a copy of
    # the page) counts such blocks after layout.
    probe = ("<script>window.addEventListener('load', () => { const n = [...document.querySelectorAll('.eq')]"
             ".filter(e => e.offsetWidth - e.clientWidth > 0).length; document.body.setAttribute('data-vscroll', n);"
             " document.body.setAttribute('data-eqs', document.querySelectorAll('.eq').length); });</script>")
    copy = tmp_path / "lenet_probe.html"
    copy.write_text(pages["lenet"].read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1400",
                              "--dump-dom", copy.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    eqs = int(re.search(r'data-eqs="(\d+)"', run.stdout).group(1))
    assert eqs > 50 and 'data-vscroll="0"' in run.stdout, re.search(r'data-vscroll="\d+"', run.stdout)
