"""book.toml reading, parameters, and the command line: errors are one line, exit 2, touch nothing."""
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from dpo_teach import cli
from dpo_teach.course import REPO, CourseError, coerce, load_chapters, read_parameters, resolve


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _make_course(root: Path, cells_02=None):
    """A two-chapter course in ``root``: chapter 01 writes a figure; 02 is given by ``cells_02``."""
    (root / "notebooks").mkdir()
    (root / "figures").mkdir()
    (root / "book.toml").write_text(textwrap.dedent("""
        [book]
        title = "t"
        [preprocessor.dpo-teach]
        command = "true"
        [[preprocessor.dpo-teach.chapters]]
        notebook = "notebooks/01_first.ipynb"
        title = "First"
        [[preprocessor.dpo-teach.chapters]]
        notebook = "notebooks/02_second.ipynb"
        title = "Second"
    """))
    params = nbformat.v4.new_code_cell("beta = 0.5  # KL strength\nsteps = 10  # steps\nname = 'x'\nflag = False\nsizes = [1, 2]")
    params.metadata["tags"] = ["parameters"]
    first = nbformat.v4.new_notebook(cells=[
        params,
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nfrom dpo_teach.notebook import save_figure\n"
            "fig, ax = plt.subplots(); ax.plot([0, steps], [0, beta]);\nsave_figure(fig, '01_line.png')\n"
            "print(f'beta={beta} steps={steps} name={name} flag={flag}')"),
    ])
    second = nbformat.v4.new_notebook(cells=cells_02 or [nbformat.v4.new_code_cell("print('two')")])
    for nb, name in ((first, "01_first"), (second, "02_second")):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    return root


@pytest.fixture
def course(tmp_path):
    return _make_course(tmp_path)


def run_cli(root, *args):
    code = f"import sys; from pathlib import Path; from dpo_teach.cli import main; sys.exit(main(sys.argv[1:], Path({str(root)!r})))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_real_book_toml_lists_the_chapters_in_order():
    chapters = load_chapters(REPO)
    assert [c.number for c in chapters] == sorted(c.number for c in chapters)
    assert chapters[0].notebook == Path("notebooks/01_rlhf_objective.ipynb")
    for c in chapters:
        assert (REPO / c.notebook).exists(), f"book.toml lists {c.notebook}, which is missing"


def test_parameters_read_from_the_tagged_cell(course):
    params = read_parameters(course / "notebooks/01_first.ipynb")
    assert [(p.name, p.default, p.comment) for p in params] == [
        ("beta", 0.5, "KL strength"), ("steps", 10, "steps"), ("name", "x", ""), ("flag", False, ""),
        ("sizes", [1, 2], "")]
    assert read_parameters(course / "notebooks/02_second.ipynb") == []


def test_resolve_accepts_numbers_and_names(course):
    chapters = load_chapters(course)
    assert resolve(chapters, ["1"]) == resolve(chapters, ["01"]) == resolve(chapters, ["01_first"]) == chapters[:1]
    assert resolve(chapters, []) == chapters
    with pytest.raises(CourseError, match="unknown chapter 'nosuch'; valid chapters: 01, 02"):
        resolve(chapters, ["nosuch"])


@pytest.mark.parametrize("name,raw,expected", [
    ("beta", "2", 2.0), ("beta", "0.25", 0.25), ("steps", "7", 7), ("name", "hello", "hello"),
    ("flag", "true", True), ("flag", "0", False), ("sizes", "[3, 4, 5]", [3, 4, 5])])
def test_coerce_converts_to_the_default_type(course, name, raw, expected):
    c = load_chapters(course)[0]
    value = coerce(c, read_parameters(course / c.notebook), name, raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name,raw,message", [
    ("steps", "2.5", "expects int"), ("steps", "ten", "expects int"), ("beta", "abc", "expects float"),
    ("flag", "maybe", "expects bool"), ("sizes", "[1.5]", "expects list"), ("sizes", "3", "expects list"),
    ("nosuch", "1", "has no parameter 'nosuch'; valid parameters: beta, steps")])
def test_coerce_rejects_bad_values(course, name, raw, message):
    c = load_chapters(course)[0]
    with pytest.raises(CourseError, match=message):
        coerce(c, read_parameters(course / c.notebook), name, raw)


def test_bad_book_toml(tmp_path):
    (tmp_path / "book.toml").write_text("[book]\ntitle = 't'\n")
    with pytest.raises(CourseError, match="preprocessor.dpo-teach.chapters"):
        load_chapters(tmp_path)
    with pytest.raises(CourseError, match="no book.toml"):
        load_chapters(tmp_path / "nope")


@pytest.mark.parametrize("args,message", [
    (["run", "nosuch-chapter"], "unknown chapter 'nosuch-chapter'; valid chapters: 01, 02"),
    (["run", "01", "-p", "nosuch", "1"], "chapter 01 has no parameter 'nosuch'; valid parameters: beta, steps, name, flag, sizes"),
    (["run", "01", "-p", "steps", "many"], "parameter 'steps' of chapter 01 expects int"),
    (["run", "-p", "beta", "1"], "chapter 02 has no parameter 'beta'"),
    (["run", "01", "-p", "beta"], "expected 2 arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_errors_are_one_line_exit_2_and_touch_nothing(course, args, message):
    before = _digest(course)
    res = run_cli(course, *args)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert _digest(course) == before


def test_cli_list_shows_parameters(course, capsys):
    assert cli.main(["list"], course) == 0
    out = capsys.readouterr().out
    assert "01  First" in out and "notebooks/01_first.ipynb" in out and "-p beta 0.5  (float)  # KL strength" in out


def test_run_with_parameters_writes_elsewhere_and_leaves_canonical_files(course, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    before = _digest(course)
    res = run_cli(course, "run", "01", "-p", "beta", "2", "-p", "flag", "yes", "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert _digest(course) == before
    nb = nbformat.read(out / "01_first.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "beta=2.0 steps=10 name=x flag=True" in text
    assert (out / "figures" / "01_line.png").stat().st_size > 0
    assert "papermill" not in nb.metadata and all("execution" not in c.metadata for c in nb.cells)


def test_run_in_place_is_byte_identical_twice(course):
    assert run_cli(course, "run", "01").returncode == 0
    first = _digest(course)
    assert (course / "figures/01_line.png").exists()
    assert run_cli(course, "run", "01").returncode == 0
    assert _digest(course) == first


def test_failing_chapter_leaves_notebook_and_figures_untouched(tmp_path):
    cells = [nbformat.v4.new_code_cell(
                 "import matplotlib.pyplot as plt\nfrom dpo_teach.notebook import save_figure\n"
                 "fig, ax = plt.subplots()\nsave_figure(fig, '02_partial.png')"),
             nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    course = _make_course(tmp_path, cells)
    (course / "figures/02_partial.png").write_bytes(b"old figure")
    before = _digest(course)
    res = run_cli(course, "run", "02")
    assert res.returncode == 1
    assert "chapter 02 (notebooks/02_second.ipynb) failed in cell 1" in res.stderr and "boom" in res.stderr
    assert _digest(course) == before


def test_stored_notebooks_are_clean():
    for c in load_chapters(REPO):
        nb = json.loads((REPO / c.notebook).read_text())
        assert "papermill" not in nb["metadata"]
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and "".join(cell["source"]).strip():
                assert cell["execution_count"] is not None, f"{c.notebook}: a cell was never executed"
