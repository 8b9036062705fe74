"""Exercise checkers, one module per chapter (``dpo_teach.exercises.ch01`` ...).

A chapter's exercise cell leaves ``answer = None`` for the reader to fill, then calls a checker.
A checker returns a :class:`Feedback` (printed as one line) and never raises on a wrong or missing
answer, so the notebook still runs top to bottom. Solutions live in ``solutions/`` at the
repository root; tests show that each checker accepts the solution and rejects wrong answers.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``ok`` is True only for a correct answer."""

    exercise: str
    ok: bool
    message: str

    def __bool__(self):
        return self.ok

    def __repr__(self):
        mark = "correct" if self.ok else ("not answered yet" if self.message == _MISSING else "not yet")
        return f"[{self.exercise}] {mark}: {self.message}"


_MISSING = "replace None with your answer and run the cell again"


def missing(exercise: str) -> Feedback:
    return Feedback(exercise, False, _MISSING)


def verdict(exercise: str, ok: bool, right: str, wrong: str) -> Feedback:
    return Feedback(exercise, bool(ok), right if ok else wrong)


def as_number(exercise: str, answer):
    """Read an answer that should be a finite number: ``(value, None)``, or ``(None, Feedback)``
    saying it is missing (``None``) or what was wrong with it."""
    import math

    if answer is None:
        return None, missing(exercise)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None, Feedback(exercise, False, f"expected a number, got {answer!r}")
    if not math.isfinite(value):
        return None, Feedback(exercise, False, f"expected a finite number, got {value}")
    return value, None


def load_solutions(chapter: str) -> dict:
    """The ``SOLUTIONS`` dict of ``solutions/<chapter>.py`` (e.g. ``"ch02"``), for tests and instructors."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "solutions" / f"{chapter}.py"
    if not path.exists():
        raise ValueError(f"no solutions file {path}; expected one of solutions/ch01.py, solutions/ch02.py, ...")
    spec = importlib.util.spec_from_file_location(f"dpo_teach_solutions_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SOLUTIONS


def known_slip(exercise: str, value: float, slips, tol: float):
    """Feedback naming the first common slip ``(wrong_value, hint)`` that ``value`` matches, or None."""
    for wrong, hint in slips:
        if abs(value - wrong) <= tol:
            return Feedback(exercise, False, f"{value:.4f} is not it: {hint}")
    return None
