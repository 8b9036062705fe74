"""The set-up files agree: environment.yml pins what requirements.txt pins; .ci/run runs make test."""
import re

from dpo_teach.course import REPO


def _pins(text, pattern):
    return dict(re.findall(pattern, text, flags=re.M))


def test_environment_yml_pins_match_requirements():
    reqs = _pins((REPO / "requirements.txt").read_text(), r"^([A-Za-z0-9_.\-]+)==(\S+)$")
    env = _pins((REPO / "environment.yml").read_text(), r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)$")
    assert len(env) >= 10
    assert {k: reqs.get(k) for k in env} == env
    assert reqs["torch"] == "2.13.0"
    for needed in ("jupyterlab", "sympy", "numpy", "torch", "matplotlib", "nbval", "papermill"):
        assert needed in env


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci/run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make course" in readme


def test_readme_chapter_map_matches_book_toml():
    from dpo_teach.course import load_chapters

    readme = (REPO / "README.md").read_text()
    for c in load_chapters(REPO):
        assert f"| {c.number} | {c.title} |" in readme, f"README's chapter map lacks chapter {c.number}"
