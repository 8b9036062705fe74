"""Exercise checkers for chapter 2, "The optimal policy in closed form"."""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..bandit import make_problem, optimal_policy
from ..derivation import is_zero
from . import Feedback, as_number, missing, verdict

# Exercise 3: one prompt, two responses.
SAMPLES_REF = (0.9, 0.1)     # pi_ref(y1), pi_ref(y2)
SAMPLES_REWARD = (0.0, 2.0)  # r(y1), r(y2)
SAMPLES_BETA = 0.5
SAMPLES_TARGET = 0.01        # wanted relative root-mean-square error of Z_hat


def _by_name(expr, symbols):
    """Replace the reader's symbols by ours when the names match (their assumptions may differ)."""
    return expr.xreplace({s: symbols[s.name] for s in expr.free_symbols if s.name in symbols})


def check_lagrange_multiplier(answer) -> Feedback:
    r"""Exercise 1: the multiplier lambda at the stationary point of
    L = sum_y pi_y (r_y - beta log(pi_y / pi_ref_y)) + lambda (sum_y pi_y - 1), in terms of beta and Z."""
    name = "lagrange_multiplier"
    if answer is None:
        return missing(name)
    beta, Z = sp.symbols("beta Z", positive=True)
    try:
        # locals: a bare "beta" in a string would otherwise parse as SymPy's beta function
        expr = _by_name(sp.sympify(answer, locals={"beta": beta, "Z": Z}), {"beta": beta, "Z": Z})
    except (sp.SympifyError, TypeError, AttributeError):
        return Feedback(name, False, f"expected a SymPy expression in beta and Z, got {answer!r}")
    extra = expr.free_symbols - {beta, Z}
    if extra:
        return Feedback(name, False, f"the answer should depend on beta and Z only; it also contains "
                                     f"{', '.join(sorted(s.name for s in extra))}")
    right = beta - beta * sp.log(Z)
    if is_zero(expr - right):
        return Feedback(name, True, "lambda = beta (1 - log Z): proved equal to the solution")
    if is_zero(expr + beta * sp.log(Z)):
        return Feedback(name, False, "close: d/dpi (pi log pi) = log pi + 1, and the +1 gives an extra beta")
    return Feedback(name, False, f"{sp.sstr(expr)} is not it: solve dL/dpi_y = 0 for pi_y, then "
                                 "choose lambda so that the pi_y sum to 1")


def check_optimal_policy(answer) -> Feedback:
    """Exercise 2: a function (ref_probs, reward, beta) -> pi* of shape (X, Y) that stays finite for
    tiny beta (no overflow), compared with bandit.optimal_policy on random problems."""
    name = "optimal_policy"
    if answer is None:
        return missing(name)
    if not callable(answer):
        return Feedback(name, False, f"expected a function of (ref_probs, reward, beta), got {type(answer).__name__}")
    cases = [(0, 1.0, 1.0), (1, 0.3, 1.0), (2, 5.0, 1.0), (3, 0.01, 10.0), (4, 0.001, 5.0)]  # seed, beta, scale
    for seed, beta, scale in cases:
        prob = make_problem(3, 5, seed=seed, reward_scale=scale)
        want = optimal_policy(prob.ref_probs, prob.reward, beta)  # (3, 5)
        try:
            with np.errstate(all="ignore"):
                got = np.asarray(answer(prob.ref_probs.copy(), prob.reward.copy(), beta), dtype=np.float64)
        except Exception as err:  # the reader's code: report, don't crash the notebook
            return Feedback(name, False, f"your function raised {type(err).__name__}: {err}")
        if got.shape != want.shape:
            return Feedback(name, False, f"expected shape {want.shape}, got {got.shape}")
        if not np.all(np.isfinite(got)):
            return Feedback(name, False, f"non-finite values at beta = {beta} (rewards up to "
                                         f"{np.abs(prob.reward).max():.1f}): exp(r/beta) overflowed; "
                                         "subtract the row maximum of log pi_ref + r/beta first")
        err = np.abs(got - want).max()
        if not err < 1e-9:
            return Feedback(name, False, f"at beta = {beta} the largest difference from pi* is {err:.3g}")
    return Feedback(name, True, f"matches pi* on {len(cases)} random problems, beta from 0.001 to 5")


def samples_needed_exact() -> float:
    """The exact (real) n at which the relative RMS error of the plain estimate reaches the target."""
    ref, r, b = np.array(SAMPLES_REF), np.array(SAMPLES_REWARD), SAMPLES_BETA
    z = float(np.sum(ref * np.exp(r / b)))
    z_half = float(np.sum(ref * np.exp(2 * r / b)))  # Z at beta / 2 = E[exp(r/beta)^2]
    return (z_half / z**2 - 1) / SAMPLES_TARGET**2


def check_samples_needed(answer) -> Feedback:
    """Exercise 3: the number of samples n for a 1% relative RMS error of the Monte Carlo estimate."""
    name = "samples_needed"
    value, problem = as_number(name, answer)
    if problem is not None:
        return problem
    n = samples_needed_exact()
    if abs(value - math.sqrt(n)) < 0.01 * math.sqrt(n):
        return Feedback(name, False, "that is sqrt(n): the error falls like 1/sqrt(n), so square it")
    return verdict(name, abs(value - n) <= max(1.0, 0.01 * n), f"about {math.ceil(n)} samples",
                   f"{value:.0f} is not it: n = (sigma_1 / 0.01)^2 with sigma_1^2 = Z(beta/2) / Z(beta)^2 - 1")
