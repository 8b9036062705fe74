r"""The book build (dpo_teach.book) and its math preprocessor (dpo_teach.mdbook_preprocessor).

Builds run in a temporary folder with a minimal book.toml and a tiny notebook made here, so
these tests do not depend on the real chapters (tests/test_browser.py builds those).
"""

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dpo_teach.book import MATHJAX_JS, BookError, build_book
from dpo_teach.mdbook_preprocessor import protect_math

REPO = Path(__file__).resolve().parents[1]
# A 1x1 PNG, as a notebook stores it (base64).
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
OPTIMUM = r"\pi^*(y\mid x)=\frac{1}{Z(x)}\pi_{\mathrm{ref}}(y\mid x)\exp\left(\frac{1}{\beta}r(x,y)\right)"


# --- the preprocessor -----------------------------------------------------------------------


def test_math_survives_markdown_characters():
    out = protect_math(r"See $a_1 * b_2 * c$ and $$x^*_{i} \| y$$.")
    assert not re.search(r"[_*\\|{}]", out)  # nothing left for Markdown to interpret
    assert html.unescape(out) == r"See \(a_1 * b_2 * c\) and \[x^*_{i} \| y\]."


def test_multiline_display_math_and_environments():
    out = protect_math("$$\na_1\n- b\n$$\n\n\\begin{align}\nx &= y \\\\\n- z &= w\n\\end{align}\n")
    assert "\n-" not in out  # a line starting with "-" would become a list item
    assert html.unescape(out) == "\\[\na_1\n- b\n\\]\n\n\\begin{align}\nx &= y \\\\\n- z &= w\n\\end{align}\n"


def test_code_is_left_alone():
    text = (
        "Use `$a_b$` here.\n\n"
        "```python\ncost = '$a_b$'  # $x_1$\n```\n\n"
        "````\n```\n$still_code$\n```\n````\n\n"
        "> ```python\n> beta = '$x_y$'\n> ```\n\n"
        "<code>$c_d$</code> <pre>$e_f$</pre>\n"
    )
    assert protect_math(text) == text


def test_dollars_that_are_not_math_stay_dollars():
    for text in [r"It costs \$5.", "Between $5 and $10 a day.", "$a\n\nb$", "Pay $10. Code `$x_1$` stays."]:
        assert protect_math(text) == text
    assert html.unescape(protect_math("$x$ then `$y$`")) == r"\(x\) then `$y$`"


def test_preprocessor_protocol_round_trip():
    cmd = [sys.executable, "-m", "dpo_teach.mdbook_preprocessor"]
    assert subprocess.run([*cmd, "supports", "html"], cwd=REPO).returncode == 0
    assert subprocess.run([*cmd, "supports", "latex"], cwd=REPO).returncode != 0
    inner = {"Chapter": {"name": "b", "content": "$y_2$", "sub_items": []}}
    book = {"items": [{"Chapter": {"name": "a", "content": "$x_1$", "sub_items": [inner]}}, "Separator"]}
    proc = subprocess.run(cmd, cwd=REPO, input=json.dumps([{"renderer": "html"}, book]),
                          capture_output=True, text=True, check=True)
    items = json.loads(proc.stdout)["items"]
    assert html.unescape(items[0]["Chapter"]["content"]) == r"\(x_1\)"
    assert html.unescape(items[0]["Chapter"]["sub_items"][0]["Chapter"]["content"]) == r"\(y_2\)"
    assert items[1] == "Separator"


# --- the build --------------------------------------------------------------------------------


def _notebook(markdown: str = "") -> nbformat.NotebookNode:
    """A stored, 'executed' notebook: math, a parameters cell, a latex and a PNG output."""
    params = new_code_cell("beta = 0.1  # KL weight", execution_count=1)
    params.metadata["tags"] = ["parameters"]
    latex = new_code_cell("show()", execution_count=2, outputs=[
        new_output("display_data", {"text/latex": r"$\displaystyle \mathcal{L}_{\mathrm{DPO}}$",
                                     "text/plain": "L"}),
        new_output("display_data", {"image/png": PNG_1X1, "text/plain": "<Figure>"}),
    ])
    return new_notebook(cells=[
        new_markdown_cell(f"# Tiny\n\n$${OPTIMUM}$$\n\nBradley-Terry: $\\sigma(r_1 - r_2)$.\n\n{markdown}"),
        params, latex,
    ], metadata={"language_info": {"name": "python"}})


def _make_book(root: Path, nb: nbformat.NotebookNode | None = None, html_extra: str = "") -> Path:
    (root / "notebooks").mkdir(parents=True)
    if nb is not None:
        nbformat.write(nb, root / "notebooks" / "01_tiny.ipynb")
    (root / "book.toml").write_text(f"""
[book]
title = "tiny"
src = "book/src"

[build]
build-dir = "book/html"
create-missing = false

[output.html]
additional-js = {json.dumps(list(MATHJAX_JS))}
{html_extra}

[preprocessor.dpo-teach]
command = "python -m dpo_teach.mdbook_preprocessor"

[[preprocessor.dpo-teach.chapters]]
notebook = "notebooks/01_tiny.ipynb"
title = "A tiny chapter"
""")
    return root


def test_build_renders_math_outputs_and_parameters(tmp_path):
    root = _make_book(tmp_path, _notebook("A saved figure: ![fig](../figures/f.png)"))
    (root / "figures").mkdir()
    (root / "figures" / "f.png").write_bytes(b"\x89PNG fake")
    index = build_book(root, quiet=True)
    assert index == root / "book" / "html" / "index.html" and index.is_file()
    page = (root / "book" / "html" / "01_tiny.html").read_text()
    text = html.unescape(page)
    assert "\\[" + OPTIMUM + "\\]" in text  # TeX intact: no <em> from the underscores
    assert r"\(\sigma(r_1 - r_2)\)" in text
    assert r"\[\displaystyle \mathcal{L}_{\mathrm{DPO}}\]" in text  # text/latex output, as a display
    assert "<em>" not in page
    assert "Parameters" in page and "beta = 0.1" in text and "dpo_teach run 01 -p beta VALUE --output out/" in text
    images = re.findall(r'<img src="([^"]+)"', page)
    assert "figures/f.png" in images and all((index.parent / src).is_file() for src in images)
    assert len(set(images)) == 2  # the extracted PNG output and the copied figure
    front = (root / "book" / "html" / "index.html").read_text()
    assert 'href="01_tiny.html"' in front and "make lab" in front and "make test" in front
    # Offline: every script and stylesheet is a local file, MathJax among them.
    refs = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)
    assert refs and not [r for r in refs if re.match(r"(https?:)?//", r)]
    assert any(re.search(r"tex-svg-full-\w+\.js$", r) for r in refs)


def test_missing_notebook_names_the_chapter(tmp_path):
    root = _make_book(tmp_path, nb=None)
    with pytest.raises(BookError, match=r"'A tiny chapter' \(notebooks/01_tiny.ipynb\)"):
        build_book(root, quiet=True)
    proc = subprocess.run([sys.executable, "-m", "dpo_teach.book", str(root)], capture_output=True, text=True)
    assert proc.returncode == 1 and "notebooks/01_tiny.ipynb" in proc.stderr


def test_missing_image_fails(tmp_path):
    root = _make_book(tmp_path, _notebook("![gone](../figures/not_there.png)"))
    with pytest.raises(BookError, match=r"A tiny chapter.*not_there\.png"):
        build_book(root, quiet=True)


def test_network_image_fails(tmp_path):
    root = _make_book(tmp_path, _notebook('<img src="https://example.org/a.png">'))
    with pytest.raises(BookError, match="offline"):
        build_book(root, quiet=True)


def test_mdbook_error_in_log_fails(tmp_path):
    # mdBook 0.5 logs ERROR for an unknown [output.html] key, exits 0 and drops the HTML config.
    root = _make_book(tmp_path, _notebook(), html_extra="no-such-option = true")
    with pytest.raises(BookError, match="ERROR"):
        build_book(root, quiet=True)


def test_cdn_mathjax_is_refused(tmp_path):
    root = _make_book(tmp_path, _notebook(), html_extra="mathjax-support = true")
    with pytest.raises(BookError, match="mathjax-support"):
        build_book(root, quiet=True)


def test_src_folder_with_foreign_files_is_not_deleted(tmp_path):
    root = _make_book(tmp_path, _notebook())
    (root / "book" / "src").mkdir(parents=True)
    (root / "book" / "src" / "mine.md").write_text("hand-written")
    with pytest.raises(BookError, match="not generated"):
        build_book(root, quiet=True)
    assert (root / "book" / "src" / "mine.md").read_text() == "hand-written"
