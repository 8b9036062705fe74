"""Chapter 3's exercise checkers accept the shipped solutions and reject wrong answers."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from dpo_teach.exercises import ch03, load_solutions


def _solutions():
    return load_solutions("ch03")


def test_missing_answers_are_not_errors():
    for check in (ch03.check_loss_value, ch03.check_implicit_reward, ch03.check_normalizer):
        fb = check(None)
        assert not fb and "not answered yet" in repr(fb)


# ---------------------------------------------------------------- exercise 1: loss value --------

def test_loss_value_solution_and_naive_formula():
    p = ch03.LOSS_PAIR
    h = (p["policy_chosen"] - p["ref_chosen"]) - (p["policy_rejected"] - p["ref_rejected"])
    naive = -math.log(1 / (1 + math.exp(-p["beta"] * h)))  # -log sigma(beta h), written out
    assert _solutions()["loss_value"] == pytest.approx(naive, abs=1e-12)
    assert ch03.check_loss_value(_solutions()["loss_value"])
    assert ch03.check_loss_value(round(naive, 4))  # "4 decimals are enough"
    assert ch03.check_loss_value(np.float64(naive)) and ch03.check_loss_value(torch.tensor(naive))


@pytest.mark.parametrize("wrong, hint", [
    (math.log(2), "h = 0"),                            # the loss at initialization
    (math.log1p(math.exp(0.5)), "swapped"),            # margin with the wrong sign
    (math.log1p(math.exp(-5.0)), "beta"),              # beta forgotten
    (math.log1p(math.exp(-0.3)), "reference"),         # pi_ref forgotten: h = 3
    (0.5, "not the loss"),                             # beta h itself
])
def test_loss_value_rejects_common_slips(wrong, hint):
    fb = ch03.check_loss_value(wrong)
    assert not fb and hint in fb.message


@pytest.mark.parametrize("bad", ["0.47", [0.47], float("nan"), float("inf")])
def test_loss_value_rejects_non_numbers_without_raising(bad):
    assert not ch03.check_loss_value(bad)


# ---------------------------------------------------------------- exercise 2: implicit reward ---

def test_implicit_reward_solution_matches_an_independent_formula():
    f = _solutions()["implicit_reward"]
    assert ch03.check_implicit_reward(f)
    # independent reference: beta * log(p / q) from probabilities, not from log-probabilities
    p, q = torch.tensor([0.2, 0.5]), torch.tensor([0.4, 0.1])
    assert torch.allclose(f(p.log(), q.log(), 0.3), 0.3 * torch.log(p / q))


def test_implicit_reward_accepts_numpy_results():
    assert ch03.check_implicit_reward(lambda pol, ref, beta: (beta * (pol - ref)).numpy())


@pytest.mark.parametrize("wrong, hint", [
    (lambda pol, ref, beta: pol - ref, "multiply by beta"),
    (lambda pol, ref, beta: beta * (ref - pol), "sign"),
    (lambda pol, ref, beta: beta * (pol - ref).sum(), "elementwise"),
    (lambda pol, ref, beta: beta * pol, "wrong values"),
    (lambda pol, ref, beta: 1 / 0, "ZeroDivisionError"),
    (lambda pol, ref: pol - ref, "TypeError"),
    (0.3, "expected a function"),
])
def test_implicit_reward_rejects_wrong_functions(wrong, hint):
    fb = ch03.check_implicit_reward(wrong)
    assert not fb and hint in fb.message


# ---------------------------------------------------------------- exercise 3: normalizer --------

def test_normalizer_solution_and_equivalent_forms():
    s = ch03.theorem1_symbols()
    assert ch03.check_normalizer(_solutions()["normalizer"])
    assert ch03.check_normalizer(-s.beta * sp.log(s.partition))  # the explicit sum
    assert ch03.check_normalizer("-beta*log(Z)")  # a string
    beta, Z = sp.symbols("beta Z")  # the reader's own symbols, no assumptions: matched by name
    assert ch03.check_normalizer(-beta * sp.log(Z))
    assert ch03.check_normalizer(beta * sp.log(1 / Z))


@pytest.mark.parametrize("make, hint", [
    (lambda s: s.beta * sp.log(s.Z), "sign"),
    (lambda s: -sp.log(s.Z), "beta"),
    (lambda s: -s.beta * s.partition, "logarithm"),
    (lambda s: -s.r[s.y], "depends on the response"),
    (lambda s: -s.beta * sp.log(s.pi_ref[s.y] * s.Z), "depends on the response"),
    (lambda s: -s.beta * sp.log(s.Z) + 1, "Eq. 5"),
    (lambda s: sp.Integer(0), "Eq. 5"),
])
def test_normalizer_rejects_wrong_offsets(make, hint):
    fb = ch03.check_normalizer(make(ch03.theorem1_symbols()))
    assert not fb and hint in fb.message


@pytest.mark.parametrize("bad", [lambda: 0, [1, 2], "beta +", sp.Eq(sp.Symbol("x"), 1)])
def test_normalizer_rejects_non_expressions_without_raising(bad):
    fb = ch03.check_normalizer(bad)
    assert not fb and "expected a SymPy expression" in fb.message


def test_normalizer_numerically_on_a_bandit_problem():
    """The accepted answer is right numerically too: r + g = beta log(pi*/pi_ref) on a random problem."""
    from dpo_teach import bandit

    prob, beta = bandit.make_problem(3, 5, seed=1), 0.4
    g = -beta * bandit.log_partition(prob.ref_probs, prob.reward, beta)[:, None]  # (X, 1)
    pi = bandit.optimal_policy(prob.ref_probs, prob.reward, beta)
    assert np.allclose(prob.reward + g, beta * np.log(pi / prob.ref_probs), atol=1e-12)
