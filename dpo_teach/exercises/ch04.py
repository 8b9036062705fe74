r"""Exercise checkers for chapter 4, "Rankings: the Plackett-Luce model and listwise DPO".

Three exercises:

- :func:`check_ranking_probability`: the Plackett-Luce probability (Eq. 18 of Rafailov et al. 2023,
  arXiv 2305.18290) of one ranking of three responses, as a number;
- :func:`check_pairwise_marginal`: the probability that one response is ranked above another in a full
  Plackett-Luce ranking of three, as a SymPy expression, proved with :func:`dpo_teach.derivation.check_step`;
- :func:`check_listwise_loss`: a function computing the listwise DPO loss (Eq. 20), compared with
  :func:`dpo_teach.losses.plackett_luce_loss` on random inputs.

Every checker returns a :class:`~dpo_teach.exercises.Feedback` and never raises on a wrong answer.
"""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import sympy as sp
import torch

from dpo_teach.derivation import StepError, check_numeric, check_step
from dpo_teach.exercises import Feedback, as_number, missing
from dpo_teach.losses import plackett_luce_loss

__all__ = ["RANKING_SCORES", "RANKING", "check_ranking_probability", "marginal_symbols",
           "check_pairwise_marginal", "check_listwise_loss"]

# Exercise 1: scores of the responses a, b, c and the ranking c > a > b (best first, as indices).
RANKING_SCORES = {"a": 2.0, "b": 1.0, "c": 0.0}
RANKING = ("c", "a", "b")
_PROB_TOL = 5e-4  # "4 decimals are enough"


def _pl_prob(scores, order):
    """Eq. 18 for a ranking ``order`` (best first) of items with ``scores`` (a dict)."""
    p, rest = 1.0, list(order)
    for item in order:
        p *= math.exp(scores[item]) / sum(math.exp(scores[j]) for j in rest)
        rest.remove(item)
    return p


def check_ranking_probability(answer) -> Feedback:
    """Exercise 1: the Plackett-Luce probability of c > a > b with the scores of :data:`RANKING_SCORES`."""
    name = "ranking_probability"
    value, problem = as_number(name, answer)
    if problem is not None:
        return problem
    if not 0 <= value <= 1:
        return Feedback(name, False, f"{value} is not a probability: expected a number in [0, 1]")
    s = RANKING_SCORES
    right = _pl_prob(s, RANKING)
    if abs(value - right) <= _PROB_TOL:
        return Feedback(name, True, f"{right:.4f} = e^0/(e^2 + e^1 + e^0) * e^2/(e^2 + e^1): pick c among all "
                                    "three, then a among the two left")
    exp = {k: math.exp(v) for k, v in s.items()}
    total = sum(exp.values())
    slips = [
        (exp["c"] / total * exp["a"] / total,
         "each factor divides by the sum over the responses NOT yet placed, not over all of them"),
        (_pl_prob(s, RANKING[::-1]), "that is the probability of the reversed ranking b > a > c; the first "
                                     "factor picks the best response"),
        (1 / (1 + math.exp(2)) * 1 / (1 + math.exp(1)) * 1 / (1 + math.exp(-1)),
         "a product of Bradley-Terry probabilities of the three pairs is not Plackett-Luce (the pairs are "
         "not independent)"),
        (exp["c"] / total, "that is only the first factor (c is best); the ranking also says a > b"),
        (1 / 6, "1/6 holds only when all scores are equal"),
    ]
    for wrong, hint in slips:
        if abs(value - wrong) <= _PROB_TOL:
            return Feedback(name, False, f"{value:.4f} is not it: {hint}")
    return Feedback(name, False, f"{value:.4f} is not the probability; multiply, best first, exp(score) of the "
                                 "response placed over the sum of exp(score) of the responses not yet placed")


# ------------------------------------------------------------ exercise 2 ----------------------

def marginal_symbols():
    """The symbols of exercise 2: real scores ``s1, s2, s3`` of three responses."""
    s1, s2, s3 = sp.symbols("s1 s2 s3", real=True)
    return SimpleNamespace(s1=s1, s2=s2, s3=s3)


def _marginal_sum(s):
    """P(item 1 above item 2) in a Plackett-Luce ranking of three: Eq. 18 summed over the 3 such rankings."""
    scores = [s.s1, s.s2, s.s3]
    total = sp.Integer(0)
    for order in itertools.permutations(range(3)):
        if order.index(0) < order.index(1):
            p = sp.Integer(1)
            for k in range(3):
                p *= sp.exp(scores[order[k]]) / sum(sp.exp(scores[i]) for i in order[k:])
            total += p
    return total


def check_pairwise_marginal(answer) -> Feedback:
    """Exercise 2: P(response 1 is ranked above response 2) under Plackett-Luce with three responses."""
    name = "pairwise_marginal"
    if answer is None:
        return missing(name)
    s = marginal_symbols()
    try:
        expr = sp.sympify(answer, locals={"s1": s.s1, "s2": s.s2, "s3": s.s3}) if isinstance(answer, str) \
            else sp.sympify(answer)
    except (sp.SympifyError, TypeError, SyntaxError):
        return Feedback(name, False, "expected a SymPy expression in s1, s2, s3 (or a string such as "
                                     "'exp(s1)/(exp(s1) + exp(s2))')")
    if not isinstance(expr, sp.Expr):
        return Feedback(name, False, f"expected a SymPy expression, got {type(expr).__name__}")
    unknown = expr.free_symbols - {s.s1, s.s2, s.s3}
    if unknown:
        return Feedback(name, False, f"use the symbols of ch04.marginal_symbols() (real s1, s2, s3); "
                                     f"unknown: {sorted(map(str, unknown))}")
    truth = _marginal_sum(s)
    try:
        proof = check_step(truth, expr)
        return Feedback(name, True, f"{proof}: the sum over the three rankings with 1 above 2 is the Bradley-Terry "
                                    "probability; the third response drops out")
    except StepError:
        pass
    try:
        check_numeric(truth, expr, points=10)
        return Feedback(name, True, "equal at 10 random points (checked numerically; the checker could not prove "
                                    "it symbolically in this form)")
    except StepError:
        pass
    except (TypeError, ValueError):
        return Feedback(name, False, "could not evaluate the expression at numbers; use exp, +, /, ...")
    if s.s3 in expr.free_symbols:
        return Feedback(name, False, "not it; hint: the answer does not depend on s3 (add Gumbel noise to each "
                                     "score: 1 is above 2 when s1 + g1 > s2 + g2, whatever response 3 does)")
    return Feedback(name, False, "not it; sum Eq. 18 over the rankings in which 1 comes before 2 "
                                 "(1>2>3, 1>3>2, 3>1>2) and simplify")


# ------------------------------------------------------------ exercise 3 ----------------------

def _random_inputs(gen, B, K):
    policy = -8 * torch.rand(B, K, generator=gen, dtype=torch.float64)  # (B, K)
    ref = -8 * torch.rand(B, K, generator=gen, dtype=torch.float64)  # (B, K)
    return policy, ref


def _full_softmax_loss(policy, ref, beta):
    u = beta * (policy - ref)
    return -(u - torch.logsumexp(u, dim=-1, keepdim=True)).sum(dim=-1)


def check_listwise_loss(answer) -> Feedback:
    """Exercise 3: a function ``listwise_loss(policy_logps, ref_logps, beta) -> losses`` of shape (B,)."""
    name = "listwise_loss"
    if answer is None:
        return missing(name)
    if not callable(answer):
        return Feedback(name, False, f"expected a function listwise_loss(policy_logps, ref_logps, beta), "
                                     f"got {type(answer).__name__}")
    gen = torch.Generator().manual_seed(4)
    wrongs = {"reversed": 0, "full": 0, "beta": 0}
    for K in (2, 3, 4, 5):
        for beta in (0.1, 1.0, 2.5):
            policy, ref = _random_inputs(gen, 7, K)
            try:
                out = answer(policy.clone(), ref.clone(), beta)
                if isinstance(out, tuple):
                    out = out[0]
                got = torch.as_tensor(out, dtype=torch.float64).detach()
            except Exception as err:  # the learner's code may raise anything
                return Feedback(name, False, f"your function raised {type(err).__name__}: {err}")
            if got.shape != (7,):
                return Feedback(name, False, f"expected one loss per row, shape (7,) for inputs (7, {K}); "
                                             f"got shape {tuple(got.shape)}")
            right = plackett_luce_loss(policy, ref, beta)[0]
            if torch.allclose(got, right, atol=1e-8, rtol=0):
                continue
            wrongs["reversed"] += torch.allclose(got, plackett_luce_loss(policy.flip(-1), ref.flip(-1), beta)[0],
                                                 atol=1e-8)
            wrongs["full"] += torch.allclose(got, _full_softmax_loss(policy, ref, beta), atol=1e-8)
            wrongs["beta"] += torch.allclose(got, plackett_luce_loss(policy, ref, 1.0)[0], atol=1e-8)
            hint = ("columns are in ranked order, BEST first: column 0 is picked first" if wrongs["reversed"] else
                    "each factor normalizes over the responses not yet placed (j >= k), not over all K"
                    if wrongs["full"] else "beta is missing: the scores are beta * (log pi_theta - log pi_ref)"
                    if wrongs["beta"] else "compare with -sum_k [u_k - log sum_{j>=k} exp(u_j)], u = beta (policy - ref)")
            return Feedback(name, False, f"wrong losses for K = {K}, beta = {beta}: {hint}")
    return Feedback(name, True, "matches plackett_luce_loss for K = 2..5 and three values of beta")
