"""Exercise checkers for chapter 1, "From RLHF to the KL-regularized objective"."""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..derivation import StepError, check_step
from . import Feedback, as_number, missing, verdict

R1, R2 = 2.0, 0.5  # the rewards of exercise 1


def check_bt_probability(answer) -> Feedback:
    """Exercise 1: p(y1 > y2) when r(x, y1) = 2.0 and r(x, y2) = 0.5, to 3 decimals."""
    name = "bt_probability"
    value, problem = as_number(name, answer)
    if problem is not None:
        return problem
    right = 1.0 / (1.0 + math.exp(-(R1 - R2)))
    if abs(value - (1 - right)) < 1e-3:
        return Feedback(name, False, "that is p(y2 > y1): the chosen response has the larger reward")
    return verdict(name, abs(value - right) < 1e-3, f"sigma(2.0 - 0.5) = {right:.4f}",
                   f"{value:.4f} is not sigma(r1 - r2); compute 1 / (1 + exp(-(r1 - r2)))")


def check_reward_nll(answer) -> Feedback:
    """Exercise 2: a function nll(r_chosen, r_rejected) -> mean -log sigma(r_w - r_l) (Eq. 2), NumPy arrays."""
    name = "reward_nll"
    if answer is None:
        return missing(name)
    if not callable(answer):
        return Feedback(name, False, f"expected a function of (r_chosen, r_rejected), got {type(answer).__name__}")
    rng = np.random.default_rng(1)
    for scale in (1.0, 5.0):
        rw, rl = rng.normal(scale=scale, size=(2, 50))
        want = float(np.mean(np.logaddexp(0.0, -(rw - rl))))  # -log sigma(u) = log(1 + exp(-u))
        try:
            got = float(answer(rw, rl))
        except Exception as err:  # the reader's code: report, don't crash the notebook
            return Feedback(name, False, f"your function raised {type(err).__name__}: {err}")
        if not abs(got - want) < 1e-6 * max(1.0, abs(want)):
            return Feedback(name, False, f"on random rewards (scale {scale}) expected {want:.6f}, got {got:.6f}")
    return Feedback(name, True, "matches Eq. 2 on 100 random pairs")


def check_shift_invariance(answer) -> Feedback:
    """Exercise 3: a SymPy expression for p(y1 > y2) when f(x) is added to both rewards, simplified
    to depend on r1 and r2 only (symbols r1, r2, f as in the chapter)."""
    name = "shift_invariance"
    if answer is None:
        return missing(name)
    r1, r2, f = sp.symbols("r1 r2 f", real=True)
    try:
        expr = sp.sympify(answer)
    except (sp.SympifyError, TypeError):
        return Feedback(name, False, f"expected a SymPy expression, got {answer!r}")
    if f in expr.free_symbols:
        return Feedback(name, False, "your expression still contains f: simplify it away")
    try:
        check_step(sp.exp(r1 + f) / (sp.exp(r1 + f) + sp.exp(r2 + f)), expr)
    except StepError:
        return Feedback(name, False, f"{sp.sstr(expr)} is not the Bradley-Terry probability of y1 > y2")
    return Feedback(name, True, f"proved: the shifted probability equals {sp.sstr(expr)}")
