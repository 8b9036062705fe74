"""``python -m dpo_teach``: list, run and build the course (chapter list from book.toml).

    python -m dpo_teach list
    python -m dpo_teach run [CHAPTER ...] [-p NAME VALUE ...] [--output DIR]
    python -m dpo_teach book

Bad input (unknown chapter, unknown parameter, wrong type) gets a one-line error and exit
status 2 before any kernel starts and before any file is touched.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .course import REPO, CourseError, coerce, load_chapters, read_parameters, resolve

DEFAULT_PARAM_OUTPUT = "runs"  # where a run with parameters goes when --output is not given


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage otherwise)
        sub = self.prog.split()[1:]  # "dpo_teach run" -> ["run"]
        sys.stderr.write(f"dpo_teach: error: {message} (see: python -m {' '.join(['dpo_teach', *sub])} --help)\n")
        sys.exit(2)


def _parser():
    p = _Parser(prog="dpo_teach", description="Run and build the dpo-teach course.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="chapters in order, with notebook path and parameters")
    run = sub.add_parser("run", help="execute chapters with papermill")
    run.add_argument("chapters", nargs="*", metavar="CHAPTER", help="number (01) or notebook name; default all")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameter of the chapter's parameters cell")
    run.add_argument("--output", type=Path, help=f"folder for executed notebooks and figures "
                     f"(required for a canonical-safe run; default with -p: {DEFAULT_PARAM_OUTPUT}/)")
    sub.add_parser("book", help="build the mdBook site into book/html")
    return p


def cmd_list(root: Path) -> int:
    for c in load_chapters(root):
        print(f"{c.number}  {c.title}")
        print(f"    notebook: {c.notebook}")
        if not (root / c.notebook).exists():
            print("    (notebook missing)")
            continue
        for prm in read_parameters(root / c.notebook):
            note = f"  # {prm.comment}" if prm.comment else ""
            print(f"    -p {prm.name} {prm.default!r}  ({prm.type_name}){note}")
    return 0


def _plan(root: Path, args):
    """Validate everything first; return [(chapter, parameters)] and the output folder."""
    chapters = resolve(load_chapters(root), args.chapters)
    for c in chapters:
        if not (root / c.notebook).exists():
            raise CourseError(f"chapter {c.number} lists notebook {c.notebook}, which does not exist")
    plan = []
    for c in chapters:
        params = read_parameters(root / c.notebook)
        values = {name: coerce(c, params, name, raw) for name, raw in args.parameter}
        plan.append((c, values))
    output = args.output
    if output is None and args.parameter:
        output = root / DEFAULT_PARAM_OUTPUT
    if output is not None:
        output = Path(output).resolve()
        for c, _ in plan:
            if output / c.notebook.name == (root / c.notebook).resolve():
                raise CourseError(f"--output {args.output} would overwrite the canonical notebook {c.notebook}")
    return plan, output


def cmd_run(root: Path, args) -> int:
    from .runner import ChapterFailed, run_chapter

    plan, output = _plan(root, args)
    total = time.perf_counter()
    for i, (c, values) in enumerate(plan, 1):
        shown = " ".join(f"{k}={v!r}" for k, v in values.items())
        print(f"[{i}/{len(plan)}] {c.number} {c.title}{' (' + shown + ')' if shown else ''} ...", flush=True)
        t0 = time.perf_counter()
        try:
            path = run_chapter(c, values, output, root)
        except ChapterFailed as err:
            print(f"dpo_teach: error: {err}", file=sys.stderr)
            return 1
        where = path.relative_to(root) if path.is_relative_to(root) else path
        print(f"      done in {time.perf_counter() - t0:.1f} s -> {where}", flush=True)
    print(f"{len(plan)} chapter(s) in {time.perf_counter() - total:.1f} s")
    return 0


def cmd_book(root: Path) -> int:
    from .book import BookError, build_book

    try:
        index = build_book(root)
    except BookError as err:
        print(f"dpo_teach: error: {err}", file=sys.stderr)
        return 1
    print(f"book: {index}")
    return 0


def main(argv=None, root: Path = REPO) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(root)
        if args.command == "run":
            return cmd_run(root, args)
        return cmd_book(root)
    except CourseError as err:
        print(f"dpo_teach: error: {err}", file=sys.stderr)
        return 2
