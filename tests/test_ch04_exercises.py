"""Chapter 4's exercise checkers accept the shipped solutions and reject wrong answers."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from dpo_teach.exercises import ch04, load_solutions
from dpo_teach.rankings import ranking_log_prob


def _solutions():
    return load_solutions("ch04")


def test_missing_answers_are_not_errors():
    for check in (ch04.check_ranking_probability, ch04.check_pairwise_marginal, ch04.check_listwise_loss):
        fb = check(None)
        assert not fb and "not answered yet" in repr(fb)


# ---------------------------------------------------------------- exercise 1 ---------------------

def test_ranking_probability_solution_matches_an_independent_implementation():
    scores = [ch04.RANKING_SCORES[k] for k in "abc"]
    ranking = ["abc".index(k) for k in ch04.RANKING]  # c > a > b as indices
    independent = math.exp(ranking_log_prob(scores, ranking))  # dpo_teach.rankings, log space
    assert _solutions()["ranking_probability"] == pytest.approx(independent, rel=1e-12)
    assert ch04.check_ranking_probability(_solutions()["ranking_probability"])
    assert ch04.check_ranking_probability(round(independent, 4))
    assert ch04.check_ranking_probability(np.float64(independent)) and ch04.check_ranking_probability(
        torch.tensor(independent))


@pytest.mark.parametrize("wrong, hint", [
    (1 / (math.e**2 + math.e + 1) ** 2 * math.e**2, "NOT yet placed"),   # full denominator every time
    (math.exp(ranking_log_prob([2.0, 1.0, 0.0], [1, 0, 2])), "reversed"),  # b > a > c
    (1 / 6, "equal"),
    (0.5, "not the probability"),
    (1.5, "not a probability"),
])
def test_ranking_probability_rejects_slips(wrong, hint):
    fb = ch04.check_ranking_probability(wrong)
    assert not fb and hint in fb.message


def test_ranking_probability_rejects_absurd_types():
    assert not ch04.check_ranking_probability("a lot")
    assert not ch04.check_ranking_probability([0.1, 0.2])


# ---------------------------------------------------------------- exercise 2 ---------------------

def test_pairwise_marginal_solution_and_equivalent_forms():
    s = ch04.marginal_symbols()
    assert ch04.check_pairwise_marginal(_solutions()["pairwise_marginal"])
    assert ch04.check_pairwise_marginal(1 / (1 + sp.exp(s.s2 - s.s1)))
    assert ch04.check_pairwise_marginal("exp(s1)/(exp(s1) + exp(s2))")


def test_pairwise_marginal_rejects_wrong_expressions():
    s = ch04.marginal_symbols()
    fb = ch04.check_pairwise_marginal(sp.exp(s.s1) / (sp.exp(s.s1) + sp.exp(s.s2) + sp.exp(s.s3)))
    assert not fb and "does not depend on s3" in fb.message
    fb = ch04.check_pairwise_marginal(sp.exp(s.s2) / (sp.exp(s.s1) + sp.exp(s.s2)))  # the wrong way round
    assert not fb and "not it" in fb.message
    x = sp.Symbol("x")
    assert not ch04.check_pairwise_marginal(x / (1 + x))  # unknown symbol
    assert not ch04.check_pairwise_marginal(object())


# ---------------------------------------------------------------- exercise 3 ---------------------

def _naive_listwise(policy_logps, ref_logps, beta):
    """Eq. 20 with an explicit loop over rows and positions: an independent reference."""
    u = (beta * (policy_logps - ref_logps)).tolist()
    out = []
    for row in u:
        out.append(-sum(row[k] - math.log(sum(math.exp(v) for v in row[k:])) for k in range(len(row))))
    return torch.tensor(out, dtype=torch.float64)


def test_listwise_loss_solution_matches_naive_loop_and_checker_accepts_it():
    sol = _solutions()["listwise_loss"]
    gen = torch.Generator().manual_seed(0)
    pol = -6 * torch.rand(9, 4, generator=gen, dtype=torch.float64)
    ref = -6 * torch.rand(9, 4, generator=gen, dtype=torch.float64)
    assert torch.allclose(sol(pol, ref, 0.3), _naive_listwise(pol, ref, 0.3), atol=1e-12)
    assert ch04.check_listwise_loss(sol)


@pytest.mark.parametrize("wrong, hint", [
    (lambda p, r, b: _solutions()["listwise_loss"](p.flip(-1), r.flip(-1), b), "BEST first"),
    (lambda p, r, b: -(b * (p - r) - torch.logsumexp(b * (p - r), -1, keepdim=True)).sum(-1), "not over all K"),
    (lambda p, r, b: _solutions()["listwise_loss"](p, r, 1.0), "beta is missing"),
    (lambda p, r, b: torch.zeros(3), "shape"),
    (lambda p, r, b: 1 / 0, "raised ZeroDivisionError"),
])
def test_listwise_loss_rejects_wrong_functions(wrong, hint):
    fb = ch04.check_listwise_loss(wrong)
    assert not fb and hint in fb.message


def test_listwise_loss_rejects_non_functions():
    fb = ch04.check_listwise_loss(3.0)
    assert not fb and "expected a function" in fb.message
