"""The course's chapter list (from book.toml) and each chapter's parameters (from its notebook).

book.toml is the single source: mdBook reads its [book]/[build]/[output] tables, and the chapter
list sits in [preprocessor.dpo-teach], a table mdBook accepts and hands to our preprocessor.
Parameters are the literal assignments in the notebook cell tagged ``parameters`` (papermill's
convention), so ``list`` shows exactly what ``run -p NAME VALUE`` may override.
"""
from __future__ import annotations

import ast
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class CourseError(ValueError):
    """Bad input to the course runner: unknown chapter, unknown parameter, wrong type."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: object  # a Python literal: int, float, bool or str
    comment: str

    @property
    def type_name(self) -> str:
        return type(self.default).__name__


@dataclass(frozen=True)
class Chapter:
    number: str     # "01"
    notebook: Path  # relative to the repository root, e.g. notebooks/01_rlhf_objective.ipynb
    title: str

    @property
    def stem(self) -> str:
        return self.notebook.stem


def load_chapters(root: Path = REPO) -> list[Chapter]:
    """Chapters in reading order from ``root/book.toml``."""
    path = Path(root) / "book.toml"
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise CourseError(f"no book.toml in {root}") from None
    except tomllib.TOMLDecodeError as err:
        raise CourseError(f"{path}: invalid TOML ({err})") from None
    entries = config.get("preprocessor", {}).get("dpo-teach", {}).get("chapters")
    if not isinstance(entries, list) or not entries:
        raise CourseError(f"{path}: expected a [[preprocessor.dpo-teach.chapters]] list of chapters")
    chapters = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"notebook", "title"} <= entry.keys():
            raise CourseError(f"{path}: chapter entry {i} needs 'notebook' and 'title', got {entry!r}")
        nb = Path(entry["notebook"])
        number = nb.stem.split("_", 1)[0]
        if not number.isdigit():
            raise CourseError(f"{path}: notebook names start with a chapter number (NN_name.ipynb), got {nb.name!r}")
        chapters.append(Chapter(number, nb, entry["title"]))
    return chapters


def resolve(chapters: list[Chapter], names: list[str]) -> list[Chapter]:
    """Chapters named by number ("1", "01"), stem ("01_rlhf_objective") or path; all if none."""
    if not names:
        return list(chapters)
    out = []
    for name in names:
        key = Path(name).stem
        found = [c for c in chapters if key in (c.stem, c.number) or (key.isdigit() and int(key) == int(c.number))]
        if not found:
            valid = ", ".join(c.number for c in chapters)
            raise CourseError(f"unknown chapter {name!r}; valid chapters: {valid} (or their notebook names)")
        out.extend(c for c in found if c not in out)
    return out


def parameters_cell(nb: dict):
    """Return the source of the cell tagged ``parameters``, or None."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    return None


def read_parameters(notebook: Path) -> list[Parameter]:
    """The chapter's parameters with defaults and comments, in the order they are assigned."""
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CourseError(f"notebook {notebook} does not exist") from None
    src = parameters_cell(nb)
    if src is None:
        return []
    lines = src.splitlines()
    params = []
    for node in ast.parse(src).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line else ""
        params.append(Parameter(node.targets[0].id, value, comment))
    return params


def coerce(chapter: Chapter, params: list[Parameter], name: str, raw: str):
    """Turn the command-line string ``raw`` into a value of the parameter's type, or raise CourseError."""
    by_name = {p.name: p for p in params}
    if name not in by_name:
        valid = ", ".join(by_name) or "(none: this chapter has no parameters cell)"
        raise CourseError(f"chapter {chapter.number} has no parameter {name!r}; valid parameters: {valid}")
    default = by_name[name].default
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    expected = type(default).__name__
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    elif isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else raw
    elif isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)) and value:
        kinds = {type(v) for v in default} or {int, float}
        if all(type(v) in kinds or (float in kinds and type(v) is int) for v in value):
            return type(default)(value)
    raise CourseError(f"parameter {name!r} of chapter {chapter.number} expects {expected} "
                      f"(default {default!r}), got {raw!r}")
