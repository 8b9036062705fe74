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
